//! Bundles preserve every entry exactly (property test), and carry
//! erasures.

use convene_model::{Body, EntryInput, Learning};
use convene_node::bundle::{self, Since};
use convene_node::{InitOptions, Node, NodeError};
use proptest::prelude::*;

/// A published learning entry with a title and a one-letter summary.
fn learning(title: &str) -> EntryInput {
    EntryInput {
        body: Body::Learning(Learning {
            title: title.into(),
            summary: "s".into(),
            ..Learning::default()
        }),
        visibility: None,
        status: None,
    }
}

fn init(home: &std::path::Path, org: &str) -> Node {
    Node::init(
        home,
        &InitOptions {
            org: org.into(),
            sector: "vcse".into(),
            place: None,
        },
    )
    .unwrap()
}

fn text() -> impl Strategy<Value = String> {
    // Printable text, including non-ASCII, never empty after trimming.
    "[A-Za-zÀ-ÿ0-9 ,.'’-]{0,40}[A-Za-z]"
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn export_then_import_preserves_every_entry(
        entries in proptest::collection::vec((text(), text(), proptest::collection::vec(text(), 0..4), any::<bool>()), 1..8),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), text()), 0..4),
    ) {
        let a_dir = tempfile::tempdir().unwrap();
        let b_dir = tempfile::tempdir().unwrap();
        let mut a = init(a_dir.path(), "Exporter");
        let mut b = init(b_dir.path(), "Importer");
        let mut ids = Vec::new();
        let mut drafts = std::collections::BTreeSet::new();
        for (title, body, tags, draft) in entries {
            let id = a.publish(EntryInput {
                body: Body::Learning(Learning {
                    title,
                    summary: "Summary.".into(),
                    body: body.as_str().into(),
                    tags,
                    ..Learning::default()
                }),
                visibility: None,
                status: draft.then_some(convene_model::Status::Draft),
            }).unwrap();
            ids.push(id);
            if draft {
                drafts.insert(id);
            }
        }
        for (which, title) in edits {
            let id = *which.get(&ids);
            a.edit(id, convene_node::Edit::Set(vec![("title".into(), title)])).unwrap();
        }
        let exported = a.export_bundle(None, &Since::Everything).unwrap();
        let bytes = bundle::encode(&exported);
        let decoded = bundle::decode(&bytes).unwrap();
        prop_assert_eq!(&decoded, &exported);
        let report = b.import_bundle(decoded.clone()).unwrap();
        prop_assert!(report.rejected.is_empty(), "{:?}", report.rejected);
        for id in &ids {
            if drafts.contains(id) {
                // Drafts never leave their node.
                prop_assert!(b.get(*id).is_err());
            } else {
                prop_assert_eq!(b.get(*id).unwrap(), a.get(*id).unwrap());
            }
        }
        let again = b.import_bundle(decoded).unwrap();
        prop_assert_eq!(again.applied, 0);
    }
}

#[test]
fn publishing_and_importing_in_bulk_report_progress_to_the_end() {
    let a_dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let mut a = init(a_dir.path(), "Exporter");
    let mut b = init(b_dir.path(), "Importer");
    let inputs: Vec<EntryInput> = (0..25).map(|i| learning(&format!("Lesson {i}"))).collect();
    let mut published = Vec::new();
    a.publish_batch_with(inputs, &mut |done, total| published.push((done, total)))
        .unwrap();
    assert_eq!(published, (1..=25).map(|i| (i, 25)).collect::<Vec<_>>());

    let mut imported = Vec::new();
    let report = b
        .import_bundle_with(
            a.export_bundle(None, &Since::Everything).unwrap(),
            &mut |done, total| imported.push((done, total)),
        )
        .unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    // 25 entries and the exporter's organisation profile, one by one.
    assert_eq!(imported, (1..=26).map(|i| (i, 26)).collect::<Vec<_>>());
}

#[test]
fn a_bundle_carries_an_erasure() {
    let a_dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let mut a = init(a_dir.path(), "Owner");
    let mut b = init(b_dir.path(), "Carrier");
    let id = a.publish(learning("Withdrawn later")).unwrap();
    let first = a.export_bundle(None, &Since::Everything).unwrap();
    b.import_bundle(first.clone()).unwrap();
    assert!(b.get(id).is_ok());
    a.erase(id, "withdrawn").unwrap();
    let second = a
        .export_bundle(None, &Since::Bundle(bundle::hashes(&first)))
        .unwrap();
    assert_eq!(second.tombstones.len(), 1);
    let report = b.import_bundle(second).unwrap();
    assert_eq!(report.erased, vec![id]);
    assert!(matches!(b.get(id), Err(NodeError::Erased(_))));
    // The old bundle does not bring it back.
    let report = b.import_bundle(first).unwrap();
    assert_eq!(report.applied, 0);
    assert!(matches!(b.get(id), Err(NodeError::Erased(_))));
}

#[test]
fn a_bundle_for_an_organisation_holds_only_what_it_may_see() {
    use convene_model::Visibility;
    let a_dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let c_dir = tempfile::tempdir().unwrap();
    let mut a = init(a_dir.path(), "Owner");
    let b = init(b_dir.path(), "Partner");
    let c = init(c_dir.path(), "Other");
    for n in [&b, &c] {
        a.import_bundle(n.export_bundle(None, &Since::Everything).unwrap())
            .unwrap();
    }
    let mut publish = |title: &str, visibility: Visibility| {
        a.publish(EntryInput {
            body: Body::Learning(Learning {
                title: title.into(),
                summary: "s".into(),
                ..Learning::default()
            }),
            visibility: Some(visibility),
            status: None,
        })
        .unwrap()
    };
    let shared = publish("For the partner", Visibility::Orgs(vec![b.org()]));
    let internal = publish("Internal", Visibility::Organisation);
    let open = publish("For everyone", Visibility::Community);
    let docs = |body: &bundle::Body| bundle::documents(body);
    let for_b = a.export_bundle(Some(b.org()), &Since::Everything).unwrap();
    let for_c = a.export_bundle(Some(c.org()), &Since::Everything).unwrap();
    let for_all = a.export_bundle(None, &Since::Everything).unwrap();
    assert!(docs(&for_b).contains(&shared) && docs(&for_b).contains(&open));
    assert!(!docs(&for_c).contains(&shared) && docs(&for_c).contains(&open));
    assert!(!docs(&for_all).contains(&shared));
    for body in [&for_b, &for_c, &for_all] {
        assert!(!docs(body).contains(&internal));
    }
}

/// Found by fuzzing (`fuzz/corpus/bundle/regression-invalid-actor-index`):
/// a change that decodes and hashes correctly but refers to an actor the
/// document does not have made automerge panic inside `apply_changes`.
/// Signed by a member, it would have stopped every node it reached; now it
/// is rejected and the node goes on.
#[test]
fn a_malformed_but_signed_change_is_rejected_not_a_panic() {
    let bytes = include_bytes!("../../fuzz/corpus/bundle/regression-invalid-actor-index");
    let body: bundle::Body = postcard::from_bytes(bytes).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut node = init(dir.path(), "Fuzzed");
    node.publish(EntryInput {
        body: Body::Learning(Learning {
            title: "Seed".into(),
            summary: "An entry for the fuzzer to change.".into(),
            ..Learning::default()
        }),
        visibility: None,
        status: None,
    })
    .unwrap();
    // As the fuzz target does: re-signed by the node itself, so the
    // signature and the permission checks pass.
    let mut resigned = body.clone();
    resigned.changes = body
        .changes
        .iter()
        .filter_map(|c| {
            // The fuzzer left checksums stale (automerge does not check them
            // when it decodes a change; Convene does): set them right.
            let mut bytes = c.bytes.clone();
            convene_node::trust::columns::forge::fix_checksum(&mut bytes);
            let change = automerge::Change::try_from(bytes.as_slice()).ok()?;
            let doc = convene_model::DocumentId::from_bytes(c.doc);
            let signed = convene_node::SignedChange::sign(node.identity(), doc, &change);
            Some(convene_node::sync::wire::WireChange::from(&signed))
        })
        .collect();
    assert!(!resigned.changes.is_empty());
    let _ = node.import_bundle(body);
    let report = node.import_bundle(resigned).unwrap();
    assert!(
        report
            .rejected
            .iter()
            .any(|r| r.reason.contains("malformed change")),
        "{report:?}"
    );
    assert_eq!(node.store().integrity_check().unwrap(), "ok");
}

/// A bundle file is read as a stream and applied in batches; one bad
/// signature anywhere in it refuses all of it before anything is applied.
#[test]
fn a_bundle_file_is_applied_in_batches_and_one_bad_signature_refuses_it_all() {
    let a_dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let c_dir = tempfile::tempdir().unwrap();
    let mut a = init(a_dir.path(), "Exporter");
    let mut b = init(b_dir.path(), "Importer");
    let mut c = init(c_dir.path(), "Other importer");
    let n = 2 * bundle::BATCH_CHANGES + 50;
    let inputs = (0..n).map(|i| learning(&format!("Lesson {i}"))).collect();
    a.publish_batch(inputs).unwrap();
    let body = a.export_bundle(None, &Since::Everything).unwrap();
    let path = a_dir.path().join("all.bundle");
    std::fs::write(&path, bundle::encode(&body)).unwrap();

    let mut stages = Vec::new();
    let imported = b
        .import_bundle_from(|| std::fs::File::open(&path), &mut |stage, done, total| {
            stages.push((stage, done, total))
        })
        .unwrap();
    assert_eq!(imported.header.changes, n as u64 + 1);
    assert_eq!(imported.report.applied, n + 1);
    assert_eq!(imported.rejected, 0);
    assert_eq!(imported.report.changed.len(), n + 1);
    assert_eq!(stages.first(), Some(&(bundle::Stage::Checking, 0, 0)));
    let last = (bundle::Stage::Applying, n as u64 + 1, n as u64 + 1);
    assert_eq!(stages.last(), Some(&last));
    assert!(b.list(&Default::default()).unwrap().len() > n);

    // The last change's signature altered: nothing at all is applied.
    let mut tampered = body.clone();
    tampered.changes.last_mut().unwrap().signature[0] ^= 1;
    let path = a_dir.path().join("tampered.bundle");
    std::fs::write(&path, bundle::encode(&tampered)).unwrap();
    let err = c
        .import_bundle_from(|| std::fs::File::open(&path), &mut |_, _, _| {})
        .unwrap_err();
    assert!(
        matches!(err, NodeError::Bundle(bundle::BundleError::Tampered(1))),
        "{err}"
    );
    assert_eq!(
        c.list(&Default::default()).unwrap().len(),
        1,
        "its own profile"
    );
}

/// Anyone can make a bundle: one carrying short changes whose columns
/// declare more operations than any honest change (signed with the maker's
/// own key) is refused before any is decoded, with its own message.
#[test]
fn a_bundle_of_changes_declaring_years_of_rows_is_refused_unread() {
    let a_dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let a = init(a_dir.path(), "Maker");
    let mut b = init(b_dir.path(), "Importer");
    let mut body = a.export_bundle(None, &Since::Everything).unwrap();
    let forge = convene_node::trust::columns::forge::nulls;
    for (i, rows) in [1u64 << 40, 1 << 20, 1 << 19].into_iter().enumerate() {
        let (bytes, hash) = forge(rows, 0);
        let doc = convene_model::DocumentId::from_bytes([i as u8 + 1; 16]);
        let signed = convene_node::SignedChange::sign_raw(a.identity(), doc, bytes, hash);
        body.changes
            .push(convene_node::sync::wire::WireChange::from(&signed));
    }
    let path = a_dir.path().join("bomb.bundle");
    std::fs::write(&path, bundle::encode(&body)).unwrap();
    let started = std::time::Instant::now();
    let err = b
        .import_bundle_from(|| std::fs::File::open(&path), &mut |_, _, _| {})
        .unwrap_err();
    // The first is larger than any change may be; of the other two, the
    // second is beyond what the bundle's bytes allow with the first.
    assert!(
        matches!(err, NodeError::Bundle(bundle::BundleError::Oversized(2))),
        "{err}"
    );
    assert!(err.to_string().contains("nothing was imported"));
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    assert_eq!(
        b.list(&Default::default()).unwrap().len(),
        1,
        "its own profile"
    );
}

/// A bundle written by an earlier Convene (version 1, one postcard body)
/// still imports, read from memory as the fuzz target reads it.
#[test]
fn a_version_1_bundle_still_imports() {
    let a_dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let mut a = init(a_dir.path(), "Old exporter");
    let mut b = init(b_dir.path(), "New importer");
    let id = a.publish(learning("From an older node")).unwrap();
    let body = a.export_bundle(None, &Since::Everything).unwrap();
    let raw = postcard::to_stdvec(&body).unwrap();
    let data = bundle::craft(1, |z| z.write_all(&raw)).unwrap();
    assert_eq!(data[15], 1, "version 1");
    let imported = b
        .import_bundle_from(|| Ok(&data[..]), &mut |_, _, _| {})
        .unwrap();
    assert_eq!(imported.report.applied, 2, "{imported:?}");
    assert_eq!(b.get(id).unwrap(), a.get(id).unwrap());
}

/// A bundle whose organisation profile comes after that organisation's
/// entries (an older exporter, or a profile edited after them): the
/// entries wait for the profile and are applied when it arrives, in the
/// same import, and the import does not say they are still waiting. An
/// export today puts profiles first.
#[test]
fn entries_before_their_profile_in_a_bundle_are_applied_and_not_reported_waiting() {
    let a_dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let c_dir = tempfile::tempdir().unwrap();
    let mut a = init(a_dir.path(), "Exporter");
    let mut b = init(b_dir.path(), "Importer");
    let mut c = init(c_dir.path(), "Second importer");
    // More than a batch, so that the profile can come in a later batch
    // than the entries that wait for it.
    let n = bundle::BATCH_CHANGES + 5;
    let inputs = (0..n).map(|i| learning(&format!("Lesson {i}"))).collect();
    a.publish_batch(inputs).unwrap();
    let profile = a.org().0;
    a.edit(
        profile,
        convene_node::Edit::Set(vec![("website".into(), "https://example.org".into())]),
    )
    .unwrap();

    let body = a.export_bundle(None, &Since::Everything).unwrap();
    let is_profile = |c: &convene_node::sync::wire::WireChange| c.doc == *profile.as_bytes();
    let first_other = body.changes.iter().position(|c| !is_profile(c)).unwrap();
    assert!(
        body.changes[first_other..].iter().all(|c| !is_profile(c)),
        "every change of the profile (its edit too) comes before the entries"
    );
    let report = c.import_bundle(body.clone()).unwrap();
    assert_eq!((report.applied, report.waiting), (n + 2, 0));

    // An older exporter's order: the entries first, the profile last.
    let mut reordered = body;
    reordered.changes.sort_by_key(is_profile);
    assert!(is_profile(reordered.changes.last().unwrap()));
    let path = a_dir.path().join("profile-last.bundle");
    std::fs::write(&path, bundle::encode(&reordered)).unwrap();
    let imported = b
        .import_bundle_from(|| std::fs::File::open(&path), &mut |_, _, _| {})
        .unwrap();
    assert_eq!(imported.report.applied, n + 2);
    assert_eq!(
        imported.report.waiting, 0,
        "all were applied when the profile came"
    );
    assert_eq!(b.store().pending_count().unwrap(), 0);
    assert_eq!(
        b.list(&Default::default()).unwrap().len(),
        n + 2,
        "the entries and two profiles"
    );
}

/// Changes applied together are taken organisation profiles first,
/// whatever order they come in: an entry is not set aside to wait for a
/// profile that is in the same batch.
#[test]
fn a_batch_applies_its_organisation_profiles_before_their_entries() {
    let a_dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let mut a = init(a_dir.path(), "Author");
    let mut b = init(b_dir.path(), "Receiver");
    let inputs = (0..20).map(|i| learning(&format!("Lesson {i}"))).collect();
    a.publish_batch(inputs).unwrap();
    let mut changes: Vec<_> = a
        .store()
        .all_changes_received()
        .unwrap()
        .into_iter()
        .map(|(c, _)| c)
        .collect();
    changes.reverse();
    let report = b.apply(changes).unwrap();
    assert_eq!((report.applied, report.waiting), (21, 0));
}

/// What an import reports as waiting is what of *its* bundle still waits,
/// not what the clock says was set aside since it started: changes a
/// previous import left waiting, stamped an hour ahead (the machine's
/// clock was ahead then and has been put right since), are not counted.
#[test]
fn an_import_reports_only_its_own_changes_as_waiting_whatever_the_clock_did() {
    let a_dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let c_dir = tempfile::tempdir().unwrap();
    let mut a = init(a_dir.path(), "Early exporter");
    let mut b = init(b_dir.path(), "Importer");
    let mut c = init(c_dir.path(), "Later exporter");
    let inputs = (0..3).map(|i| learning(&format!("Lesson {i}"))).collect();
    a.publish_batch(inputs).unwrap();
    c.publish(learning("Lesson from the later exporter"))
        .unwrap();

    // The first bundle lacks its organisation's profile: its entries wait.
    let profile = *a.org().0.as_bytes();
    let mut first = a.export_bundle(None, &Since::Everything).unwrap();
    first.changes.retain(|c| c.doc != profile);
    let report = b.import_bundle(first).unwrap();
    assert_eq!((report.applied, report.waiting), (0, 3));
    let db = rusqlite::Connection::open(b_dir.path().join(convene_node::DB_FILE)).unwrap();
    let moved = db
        .execute("UPDATE pending SET received = received + 3600000", [])
        .unwrap();
    assert_eq!(moved, 3);
    drop(db);

    // The second bundle is complete: nothing of it waits.
    let second = c.export_bundle(None, &Since::Everything).unwrap();
    let report = b.import_bundle(second).unwrap();
    assert_eq!(report.applied, 2, "the later exporter's profile and entry");
    assert_eq!(
        report.waiting, 0,
        "the first bundle's changes are not this one's"
    );
    assert_eq!(b.store().pending_count().unwrap(), 3, "they still wait");
}

/// A community's whole history in one bundle imports, however its changes
/// fall into the importer's batches: here long texts written early and
/// cleared much later, so that the batch with the clearing changes
/// declares far more operations (one per character deleted) than its own
/// few bytes allow, and the allowance the earlier batches' bytes left
/// unused carries it.
#[test]
fn long_texts_cleared_long_after_they_were_written_import() {
    let a_dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let mut a = init(a_dir.path(), "Exporter");
    let mut b = init(b_dir.path(), "Importer");
    let long = |seed: usize| -> String {
        let words = ["discharge ", "huddle ", "frailty ", "handover ", "falls "];
        let mut s = String::new();
        let mut i = seed;
        while s.len() < convene_model::check::MAX_PROSE - 16 {
            s.push_str(words[i % words.len()]);
            i += 1;
        }
        s
    };
    let mut long_ids = Vec::new();
    for i in 0..4 {
        long_ids.push(
            a.publish(EntryInput {
                body: Body::Learning(Learning {
                    title: format!("Long report {i}"),
                    summary: long(i).as_str().into(),
                    body: long(i + 1).as_str().into(),
                    evidence: long(i + 2).as_str().into(),
                    ..Learning::default()
                }),
                visibility: None,
                status: None,
            })
            .unwrap(),
        );
    }
    // Enough later entries that the clearing lands in another batch.
    let inputs = (0..bundle::BATCH_CHANGES)
        .map(|i| learning(&format!("Lesson {i}")))
        .collect();
    a.publish_batch(inputs).unwrap();
    for id in &long_ids {
        a.edit(
            *id,
            convene_node::Edit::Set(vec![
                ("summary".into(), "Short now.".into()),
                ("body".into(), String::new()),
                ("evidence".into(), String::new()),
            ]),
        )
        .unwrap();
    }
    let body = a.export_bundle(None, &Since::Everything).unwrap();
    let path = a_dir.path().join("all.bundle");
    std::fs::write(&path, bundle::encode(&body)).unwrap();
    let imported = b
        .import_bundle_from(|| std::fs::File::open(&path), &mut |_, _, _| {})
        .unwrap();
    assert_eq!(imported.rejected, 0);
    for id in &long_ids {
        let entry = b.get(*id).unwrap();
        let Body::Learning(l) = entry.body else {
            panic!("not a learning entry")
        };
        assert_eq!(l.summary.as_str(), "Short now.");
        assert!(l.body.as_str().is_empty());
    }
}
