//! `convene import-csv`: arbitrary bytes as a spreadsheet of each kind.
//! Reading must never panic; rows it accepts must publish (every row is
//! checked before anything is written, so accepted rows are valid entries).

#![no_main]

use std::cell::RefCell;

use convene_model::Kind;
use convene_node::tabular;
use convene_node::{InitOptions, Node};
use libfuzzer_sys::fuzz_target;

thread_local! {
    static NODE: RefCell<(tempfile::TempDir, Node)> = RefCell::new({
        let dir = tempfile::tempdir().unwrap();
        let node = Node::init(
            dir.path(),
            &InitOptions { org: "Fuzz Council".into(), sector: "council".into(), place: None },
        )
        .unwrap();
        (dir, node)
    });
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, csv)) = data.split_first() else {
        return;
    };
    let kind = match which % 3 {
        0 => Kind::Learning,
        1 => Kind::Project,
        _ => Kind::Contact,
    };
    NODE.with(|cell| {
        let (_, node) = &mut *cell.borrow_mut();
        let vocab = node.vocab().clone();
        if let Ok(rows) = tabular::read_rows(kind, csv, &vocab)
            && !rows.is_empty()
            && rows.len() <= 16
        {
            let n = rows.len();
            let ids = node
                .publish_batch(rows)
                .expect("rows that passed the checks publish");
            assert_eq!(ids.len(), n);
        }
    });
});
