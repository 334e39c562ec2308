//! Attachments on one node: the document records the file, the bytes are
//! stored once by BLAKE3 hash, nothing is half-written or left behind by a
//! refusal, and erasure removes bytes no other entry uses.

use std::path::{Path, PathBuf};

use convene_model::{Body, EntryInput, Learning, Project};
use convene_node::blobs::{BlobError, BlobStore};
use convene_node::{Edit, FileLimits, InitOptions, Node, NodeError};

fn init(home: &Path, org: &str) -> Node {
    Node::init(
        home,
        &InitOptions {
            org: org.into(),
            sector: "nhs-trust".into(),
            place: None,
        },
    )
    .unwrap()
}

fn learning(title: &str) -> EntryInput {
    EntryInput {
        body: Body::Learning(Learning {
            title: title.into(),
            summary: "A summary.".into(),
            ..Learning::default()
        }),
        visibility: None,
        status: None,
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Every regular file under `dir`, recursively, but for the hash trees
/// (`.obao`) kept beside stored content, which hold hashes, not content.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else if p.extension().is_none_or(|x| x != "obao") {
            out.push(p);
        }
    }
    out
}

/// Whether any file under `dir` contains `needle`.
fn home_contains(dir: &Path, needle: &[u8]) -> bool {
    files_under(dir)
        .iter()
        .any(|p| std::fs::read(p).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle)))
}

#[test]
fn a_file_is_recorded_in_the_document_and_stored_once_by_hash() {
    let home = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    let mut node = init(home.path(), "Gateshead Health");
    let a = node.publish(learning("Peer visits")).unwrap();
    let b = node
        .publish(EntryInput {
            body: Body::Project(Project {
                title: "Handover delays".into(),
                ..Project::default()
            }),
            visibility: None,
            status: None,
        })
        .unwrap();
    let content = b"evaluation report, final version".repeat(5000);
    let path = write(src.path(), "Evaluation report.pdf", &content);
    let limits = FileLimits::default();

    let att = node.attach(a, &path, None, &limits).unwrap();
    assert_eq!(att.name, "Evaluation report.pdf");
    assert_eq!(att.size, content.len() as u64);
    assert_eq!(att.media_type, "application/pdf");
    assert_eq!(att.hash, blake3::hash(&content).to_hex().to_string());
    let blob = home
        .path()
        .join("files")
        .join(&att.hash[..2])
        .join(&att.hash[2..]);
    assert_eq!(std::fs::read(&blob).unwrap(), content);
    // Its hash tree is made as it is stored, not on a member's first fetch.
    let tree = blob.with_extension("obao");
    assert!(tree.is_file(), "no hash tree beside the stored file");

    // The same bytes on another entry, under another name: still one copy.
    node.attach(b, &path, Some("../slides/report copy.pdf"), &limits)
        .unwrap();
    let listed = node.attachments(b).unwrap();
    assert_eq!(listed[0].attachment.name, "report copy.pdf");
    assert!(listed[0].held);
    assert_eq!(files_under(&home.path().join("files")).len(), 1);

    // The document carries it: it survives reopening, and `show --json` has it.
    drop(node);
    let node = Node::open(home.path()).unwrap();
    let entry = node.get(a).unwrap();
    assert_eq!(entry.to_json()["attachments"][0]["hash"], att.hash);

    // Written out whole, never over an existing file unless asked.
    let out = src.path().join("out.pdf");
    node.save_attachment(a, "Evaluation report.pdf", &out, false)
        .unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), content);
    let err = node
        .save_attachment(a, "Evaluation report.pdf", &out, false)
        .unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
    let err = node.save_attachment(a, "nope.pdf", &out, true).unwrap_err();
    assert!(
        err.to_string()
            .contains("no file named \"nope.pdf\" (its files: Evaluation report.pdf)"),
        "{err}"
    );

    // Bytes damaged on disk are refused, not handed out, and moved aside:
    // the node no longer counts the file as held, so it is fetched again,
    // and what is left of it is kept for whoever wants to recover it.
    std::fs::write(&blob, b"tampered").unwrap();
    let out2 = src.path().join("out2.pdf");
    let err = node
        .save_attachment(a, "Evaluation report.pdf", &out2, false)
        .unwrap_err();
    let NodeError::Files(BlobError::Damaged {
        hash,
        aside: Some(aside),
    }) = &err
    else {
        panic!("{err}");
    };
    assert_eq!(*hash, att.hash);
    assert!(err.to_string().contains("moved aside"), "{err}");
    assert_eq!(std::fs::read(aside).unwrap(), b"tampered");
    assert!(!out2.exists());
    assert!(!blob.exists() && !tree.exists(), "the damaged copy stayed");
    assert!(!node.attachments(a).unwrap()[0].held);
    assert_eq!(
        files_under(src.path()).len(),
        2,
        "no temporary file is left"
    );
}

#[test]
fn refusals_leave_nothing_behind() {
    let home = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    let mut node = init(home.path(), "Gateshead Health");
    let id = node.publish(learning("Peer visits")).unwrap();
    let small = FileLimits {
        max_file: 10,
        ..FileLimits::default()
    };
    let big = write(src.path(), "big.bin", &[7u8; 11]);
    let err = node.attach(id, &big, None, &small).unwrap_err();
    assert!(
        err.to_string().contains("larger than the 10-byte limit"),
        "{err}"
    );
    let exact = write(src.path(), "exact.bin", &[7u8; 10]);
    node.attach(id, &exact, None, &small).unwrap();
    let err = node.attach(id, &exact, None, &small).unwrap_err();
    assert!(matches!(err, NodeError::DuplicateFile { .. }), "{err}");
    let err = node
        .attach(id, &src.path().join("missing.pdf"), None, &small)
        .unwrap_err();
    assert!(err.to_string().starts_with("cannot read"), "{err}");
    assert_eq!(node.attachments(id).unwrap().len(), 1);
    assert_eq!(files_under(&home.path().join("files")).len(), 1);

    // An organisation's profile has no files; retracted entries take no more.
    let contact = node.org().0;
    let other = write(src.path(), "other.bin", b"other");
    let err = node
        .attach(contact, &other, None, &FileLimits::default())
        .unwrap_err();
    assert!(matches!(err, NodeError::NoFiles(_)), "{err}");
    node.retract(id).unwrap();
    let err = node
        .attach(id, &other, None, &FileLimits::default())
        .unwrap_err();
    assert!(matches!(err, NodeError::Retracted(_)), "{err}");
    assert_eq!(files_under(&home.path().join("files")).len(), 1);

    // A hash mismatch on a verified put keeps nothing, not even a temp file.
    let store = BlobStore::new(home.path());
    let err = store
        .put(&mut &b"hello"[..], 100, Some(&"00".repeat(32)))
        .unwrap_err();
    assert!(matches!(err, BlobError::HashMismatch { .. }), "{err}");
    assert_eq!(files_under(&home.path().join("files")).len(), 1);
}

#[test]
fn only_the_owner_and_co_editors_may_attach() {
    let a_dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    let mut a = init(a_dir.path(), "Gateshead Health");
    let mut b = init(b_dir.path(), "Gateshead Council");
    let id = a.publish(learning("Peer visits")).unwrap();
    b.apply(a.store().all_changes().unwrap()).unwrap();
    a.apply(b.store().all_changes().unwrap()).unwrap();
    let file = write(src.path(), "poster.png", b"poster bytes");
    let err = b
        .attach(id, &file, None, &FileLimits::default())
        .unwrap_err();
    assert!(matches!(err, NodeError::NotOwner { .. }), "{err}");
    assert!(files_under(&b_dir.path().join("files")).is_empty());

    a.edit(id, Edit::AddEditor(b.org())).unwrap();
    b.apply(a.store().all_changes().unwrap()).unwrap();
    b.attach(id, &file, None, &FileLimits::default()).unwrap();
    // The co-editor's change is accepted by the owner like any edit.
    let report = a.apply(b.store().all_changes().unwrap()).unwrap();
    assert!(report.rejected.is_empty(), "{report:?}");
    let files = a.attachments(id).unwrap();
    assert_eq!(files[0].attachment.name, "poster.png");
    assert!(
        !files[0].held,
        "the bytes have not travelled (no transfer yet)"
    );
}

#[test]
fn erasing_an_entry_removes_bytes_no_other_entry_uses() {
    let home = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    let mut node = init(home.path(), "Gateshead Health");
    let first = node.publish(learning("First")).unwrap();
    let second = node.publish(learning("Second")).unwrap();
    let shared = b"SHARED-MARKER-3f9a: the summit slides".to_vec();
    let own = b"PRIVATE-MARKER-7c21: a story withdrawn".to_vec();
    let limits = FileLimits::default();
    let shared_path = write(src.path(), "slides.pptx", &shared);
    let own_path = write(src.path(), "story.docx", &own);
    node.attach(first, &shared_path, None, &limits).unwrap();
    node.attach(first, &own_path, None, &limits).unwrap();
    node.attach(second, &shared_path, None, &limits).unwrap();
    std::fs::remove_dir_all(src.path()).unwrap();
    assert!(home_contains(home.path(), b"PRIVATE-MARKER-7c21"));

    node.erase(first, "withdrawn").unwrap();
    assert!(!home_contains(home.path(), b"PRIVATE-MARKER-7c21"));
    assert!(
        home_contains(home.path(), b"SHARED-MARKER-3f9a"),
        "the second entry still uses the slides"
    );
    assert!(node.attachments(second).unwrap()[0].held);

    node.erase(second, "withdrawn").unwrap();
    assert!(!home_contains(home.path(), b"SHARED-MARKER-3f9a"));
}

#[test]
fn a_received_tombstone_removes_the_files_too() {
    let a_dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    let mut a = init(a_dir.path(), "Gateshead Health");
    let mut b = init(b_dir.path(), "Gateshead Council");
    let id = a.publish(learning("Withdrawn story")).unwrap();
    let file = write(src.path(), "story.docx", b"RECEIVED-MARKER-51e0");
    a.attach(id, &file, None, &FileLimits::default()).unwrap();
    b.apply(a.store().all_changes().unwrap()).unwrap();
    // B holds the bytes (by bundle or transfer; here straight from the file).
    let hash = a.attachments(id).unwrap()[0].attachment.hash.clone();
    b.blobs()
        .put(
            &mut std::fs::File::open(&file).unwrap(),
            1 << 20,
            Some(&hash),
        )
        .unwrap();
    assert!(b.attachments(id).unwrap()[0].held);

    a.erase(id, "withdrawn").unwrap();
    let tombstones = vec![a.store().tombstone(id).unwrap().unwrap().tombstone];
    let report = b.apply_with_tombstones(Vec::new(), tombstones).unwrap();
    assert_eq!(report.erased, vec![id]);
    assert!(!home_contains(b_dir.path(), b"RECEIVED-MARKER-51e0"));
}

/// `convene get` and the web app's Fetch button each add a hash to the
/// daemon's list of files asked for. Read and rewritten outside one
/// transaction, two at once lost one of the requests; now every request
/// from every process survives.
#[test]
fn requests_for_files_made_at_the_same_moment_are_all_kept() {
    use convene_node::daemon::files::{META_WANTED, set_wanted};
    let dir = tempfile::tempdir().unwrap();
    drop(init(dir.path(), "Gateshead Council"));
    let threads: Vec<_> = (0..4u8)
        .map(|t| {
            let home = dir.path().to_path_buf();
            std::thread::spawn(move || {
                let mut node = Node::open(&home).unwrap();
                for i in 0..25u8 {
                    let hash = format!("{t:02x}{i:02x}").repeat(16);
                    set_wanted(&mut node, &hash, true).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let node = Node::open(dir.path()).unwrap();
    let list: Vec<String> =
        serde_json::from_str(&node.store().meta(META_WANTED).unwrap().unwrap()).unwrap();
    assert_eq!(list.len(), 100, "{list:?}");
    let mut node = node;
    set_wanted(&mut node, &list[0], false).unwrap();
    let after: Vec<String> =
        serde_json::from_str(&node.store().meta(META_WANTED).unwrap().unwrap()).unwrap();
    assert_eq!(after.len(), 99);
    assert!(!after.contains(&list[0]));
}

/// The daemon's index of which entries use which files reads (loads and
/// hydrates) only the entries that have files: every other entry a node
/// stores or receives costs it no read. Before the `file` terms, each new
/// entry was read once more by every node, a sixth of a 20-node mesh's CPU
/// per publish.
#[test]
fn the_file_index_reads_only_the_entries_that_have_files() {
    use convene_node::daemon::files::FileIndex;
    use convene_node::sync::NodeReplica;

    let home = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    let mut node = init(home.path(), "Gateshead Health");
    for i in 0..30 {
        node.publish(learning(&format!("Entry without files {i}")))
            .unwrap();
    }
    let with = node.publish(learning("Evaluation")).unwrap();
    let path = write(src.path(), "report.pdf", b"the evaluation report");
    let att = node
        .attach(with, &path, None, &FileLimits::default())
        .unwrap();

    let replica = NodeReplica::new(node).unwrap();
    let mut index = FileIndex::default();
    assert!(index.refresh(&replica));
    assert_eq!(index.entries_read(), 1, "read entries without files");
    assert_eq!(index.files_of(with), vec![att.clone()]);
    // Nothing changed: nothing is read again.
    assert!(index.refresh(&replica));
    assert_eq!(index.entries_read(), 1);
}

/// The index follows the sync catalogue: what it has folded in, no more
/// (an entry stored since is indexed once the catalogue has it, not
/// dropped for being unknown); an edited entry is read again, an erased
/// one's files leave it; nothing else is read.
#[test]
fn the_file_index_follows_the_catalogue_through_edits_and_erasures() {
    use convene_node::daemon::files::FileIndex;
    use convene_node::sync::{NodeReplica, Replica};

    let home = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    let node = init(home.path(), "Gateshead Health");
    let mut replica = NodeReplica::new(node).unwrap();
    let mut index = FileIndex::default();
    assert!(index.refresh(&replica));

    let node = replica.node_mut();
    let id = node.publish(learning("Evaluation")).unwrap();
    let path = write(src.path(), "report.pdf", b"the evaluation report");
    let att = node
        .attach(id, &path, None, &FileLimits::default())
        .unwrap();
    // Stored, but not in the catalogue yet: not indexed yet.
    assert!(index.refresh(&replica));
    assert_eq!(index.files_of(id), vec![]);
    replica.refresh().unwrap();
    assert!(index.refresh(&replica));
    assert_eq!(index.files_of(id), vec![att.clone()]);

    // Nothing new: nothing read. An edit: read once more.
    assert!(index.refresh(&replica));
    assert_eq!(index.entries_read(), 1);
    let title = Edit::Set(vec![("title".into(), "Evaluation, final".into())]);
    replica.node_mut().edit(id, title).unwrap();
    replica.refresh().unwrap();
    assert!(index.refresh(&replica));
    assert_eq!(index.files_of(id), vec![att]);
    assert_eq!(index.entries_read(), 2);

    replica.node_mut().erase(id, "withdrawn").unwrap();
    replica.refresh().unwrap();
    assert!(index.refresh(&replica));
    assert_eq!(index.files_of(id), vec![]);
    assert_eq!(index.entries_read(), 2);
}

/// A running daemon learns of other processes' writes by the arrival
/// number (`changes.seq`) of what was stored since it last looked. An
/// erasure deletes the erased entry's changes, often the newest rows: if
/// their numbers were handed out again, what a CLI published next would
/// carry numbers the daemon had already looked past, and it would never
/// announce, push or offer it (found by hand: after `retract --erase`, a
/// member's next publish and attachments reached no one until its daemon
/// restarted).
#[test]
fn what_is_published_after_an_erasure_reaches_the_catalogue() {
    use convene_node::sync::{NodeReplica, Replica};

    let home = tempfile::tempdir().unwrap();
    let node = init(home.path(), "Gateshead Health");
    let mut replica = NodeReplica::new(node).unwrap();
    // The daemon's handle, and a second one on the same store, as a CLI
    // command opens it.
    let mut cli = Node::open(home.path()).unwrap();
    let first = cli.publish(learning("Evaluation")).unwrap();
    cli.edit(
        first,
        Edit::Set(vec![("title".into(), "Evaluation, final".into())]),
    )
    .unwrap();
    replica.refresh().unwrap();
    assert!(
        replica
            .catalogue()
            .iter()
            .any(|(d, _)| d == first.as_bytes())
    );
    let seen = replica.catalogue_seq();

    cli.erase(first, "withdrawn").unwrap();
    replica.refresh().unwrap();
    let next = cli.publish(learning("Community calls")).unwrap();
    let changed = replica.refresh().unwrap();
    assert!(
        changed.iter().any(|(doc, _)| doc == next.as_bytes()),
        "the entry published after the erasure was not folded in (the catalogue had looked up to {seen}, now {})",
        replica.catalogue_seq()
    );
    assert!(
        replica
            .catalogue()
            .iter()
            .any(|(d, _)| d == next.as_bytes())
    );
    assert!(replica.catalogue_seq() > seen);
}

fn with_files(node: &Node) -> Vec<convene_model::DocumentId> {
    node.store()
        .docs_with_files()
        .unwrap()
        .into_iter()
        .collect()
}

/// A store written before files were indexed as terms (schema 8) gets
/// them when it is next opened, so the daemon still finds the files of
/// entries stored before the upgrade.
#[test]
fn files_of_entries_stored_before_the_upgrade_are_indexed_when_the_store_opens() {
    let home = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    let mut node = init(home.path(), "Gateshead Health");
    let id = node.publish(learning("Evaluation")).unwrap();
    node.publish(learning("No files")).unwrap();
    let path = write(src.path(), "report.pdf", b"the evaluation report");
    node.attach(id, &path, None, &FileLimits::default())
        .unwrap();
    assert_eq!(with_files(&node), vec![id]);
    drop(node);

    // As an older release left it: no `file` terms, schema version 8.
    let db = home.path().join("convene.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute("DELETE FROM terms WHERE field = 'file'", [])
        .unwrap();
    conn.pragma_update(None, "user_version", 8).unwrap();
    drop(conn);

    let node = Node::open(home.path()).unwrap();
    assert_eq!(with_files(&node), vec![id]);
}

/// Held bytes leave the store through one checked reader: a sound file
/// comes out whole; a damaged one gives every piece but the last, then
/// fails and is moved aside (so a reader passing pieces on never hands on
/// the whole of it); one cut short while it is read fails without being
/// moved (a failed read is not damage).
#[test]
fn held_bytes_are_handed_on_only_through_their_check() {
    let home = tempfile::tempdir().unwrap();
    let blobs = BlobStore::new(home.path());
    let content: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let stored = blobs.put(&mut content.as_slice(), u64::MAX, None).unwrap();
    let path = blobs.path(&stored.hash).unwrap();

    let mut sound = blobs.open_checked(&stored.hash).unwrap();
    assert_eq!(sound.size(), content.len() as u64);
    let mut out = Vec::new();
    sound.copy_to(&mut out, |e| panic!("{e}")).unwrap();
    assert_eq!(out, content);

    // One byte changed near the start: the pieces read before the end
    // come out, the last does not.
    let mut damaged = content.clone();
    damaged[10] ^= 1;
    std::fs::write(&path, &damaged).unwrap();
    let mut reader = blobs.open_checked(&stored.hash).unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut given = 0usize;
    let err = loop {
        match reader.next_piece(&mut buf) {
            Ok([]) => panic!("a damaged file was read to its end"),
            Ok(piece) => given += piece.len(),
            Err(e) => break e,
        }
    };
    assert!(given < content.len(), "the last piece was given");
    assert!(given >= content.len() - buf.len(), "pieces were withheld");
    let BlobError::Damaged {
        aside: Some(aside), ..
    } = &err
    else {
        panic!("{err}");
    };
    assert_eq!(std::fs::read(aside).unwrap(), damaged);
    assert!(!blobs.has(&stored.hash));

    // Held again, then cut short after it was opened: a failed read,
    // nothing moved.
    blobs.put(&mut content.as_slice(), u64::MAX, None).unwrap();
    let mut reader = blobs.open_checked(&stored.hash).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(1000)
        .unwrap();
    let err = reader
        .copy_to(&mut std::io::sink(), |e| panic!("{e}"))
        .unwrap_err();
    assert!(matches!(err, BlobError::Io { .. }), "{err}");
    assert!(err.to_string().contains("ended before"), "{err}");
    assert!(blobs.has(&stored.hash), "a failed read moved the copy");

    // Cut to nothing (as a crash can leave a file) before it is opened:
    // refused and moved aside too, though there is no piece to withhold.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    let err = blobs.open_checked(&stored.hash).unwrap_err();
    assert!(
        matches!(err, BlobError::Damaged { aside: Some(_), .. }),
        "{err}"
    );
    assert!(!blobs.has(&stored.hash));
    // A file whose content is empty is held, and handed out, as it is.
    let empty = blobs.put(&mut std::io::empty(), u64::MAX, None).unwrap();
    let mut out = Vec::new();
    let n = blobs
        .open_checked(&empty.hash)
        .unwrap()
        .copy_to(&mut out, |e| panic!("{e}"))
        .unwrap();
    assert_eq!((n, out.len()), (0, 0));
}
