//! Measures similar work on the labelled set in `examples/similar/pairs.json`
//! (or the JSON file given as the first argument): publishes the corpus into
//! a fresh node in a temporary folder, matches every draft, and prints
//! precision at 5, hit rate at 5 and mean reciprocal rank for `similar` and
//! for the baselines measured in the same run.
//!
//! ```sh
//! cargo run --release -p convene-node --example similar_eval
//! # other weights for BM25, word share and vocabulary share:
//! cargo run --release -p convene-node --example similar_eval -- --weights 0.5,0.3,0.2
//! # the same among 10,000 more entries mixed from the corpus (timing at scale):
//! cargo run --release -p convene-node --example similar_eval -- --pad 10000
//! ```

use std::process::ExitCode;

use convene_node::similar::{Weights, eval};
use convene_node::{InitOptions, Node};

const DEFAULT_SET: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../examples/similar/pairs.json"
);

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut path = DEFAULT_SET.to_string();
    let mut weights = Weights::FULL;
    let mut pad = 0usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--weights" {
            let w = args.next().unwrap_or_default();
            let parts: Vec<f64> = w
                .split(',')
                .map(|p| p.trim().parse::<f64>())
                .collect::<Result<_, _>>()
                .map_err(|e| format!("--weights {w:?}: {e}"))?;
            let [bm25, words, vocab] = parts[..] else {
                return Err(format!("--weights {w:?}: expected three numbers").into());
            };
            weights = Weights { bm25, words, vocab };
        } else if arg == "--pad" {
            let n = args.next().unwrap_or_default();
            pad = n.parse().map_err(|e| format!("--pad {n:?}: {e}"))?;
        } else {
            path = arg;
        }
    }
    let set = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let home = tempfile::tempdir()?;
    let mut node = Node::init(
        home.path(),
        &InitOptions {
            org: "Evaluation Trust".into(),
            sector: "nhs-trust".into(),
            place: None,
        },
    )?;
    if pad > 0 {
        let started = std::time::Instant::now();
        eval::pad(&mut node, &set, pad)?;
        println!(
            "published {pad} filler entries in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    let started = std::time::Instant::now();
    let report = eval::run_with(&mut node, &set, weights)?;
    print!("{}", report.table());
    println!("(measured in {:.1} s)", started.elapsed().as_secs_f64());
    Ok(())
}
