//! The node's store as an organisation relies on it: data survives a
//! reopen, concurrent writers never lose each other's changes, every change
//! is signed, bad files are refused with a clear error.

use std::path::Path;
use std::sync::{Arc, Barrier};

use convene_model::DocumentId;
use convene_model::{Body, DataPoint, EntryInput, Kind, Learning, Measure, Project, Status};
use convene_node::{
    DB_FILE, Edit, Filter, Identity, InitOptions, KEY_FILE, Node, NodeError, SignedChange,
    StoreError,
};

fn init(home: &Path, org: &str) -> Node {
    Node::init(
        home,
        &InitOptions {
            org: org.into(),
            sector: "nhs-trust".into(),
            place: Some("Gateshead".into()),
        },
    )
    .unwrap()
}

fn learning(title: &str, body: &str) -> EntryInput {
    EntryInput {
        body: Body::Learning(Learning {
            title: title.into(),
            summary: "A summary.".into(),
            body: body.into(),
            ..Learning::default()
        }),
        visibility: None,
        status: None,
    }
}

fn project() -> EntryInput {
    EntryInput {
        body: Body::Project(Project {
            title: "Ambulance handover delays".into(),
            measures: vec![Measure {
                name: "Minutes lost".into(),
                ..Measure::default()
            }],
            ..Project::default()
        }),
        visibility: None,
        status: None,
    }
}

#[test]
fn entries_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let mut node = init(dir.path(), "Gateshead Health");
        node.publish(learning("Peer visits", "Visits between areas."))
            .unwrap()
    };
    let node = Node::open(dir.path()).unwrap();
    assert_eq!(node.get(id).unwrap().body.title(), "Peer visits");
    assert_eq!(node.resolve(&id.to_string()[..6]).unwrap(), id);
    let kinds: Vec<Kind> = node
        .list(&Filter::default())
        .unwrap()
        .iter()
        .map(|l| l.kind)
        .collect();
    assert_eq!(
        kinds.len(),
        2,
        "the learning entry and the organisation profile"
    );
    assert!(kinds.contains(&Kind::Organisation));
}

#[test]
fn two_connections_writing_one_document_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let id = init(dir.path(), "Gateshead Health")
        .publish(project())
        .unwrap();
    const WRITES: usize = 20;
    let barrier = Arc::new(Barrier::new(2));
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let home = dir.path().to_path_buf();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut node = Node::open(&home).unwrap();
                barrier.wait();
                for i in 0..WRITES {
                    node.edit(
                        id,
                        Edit::AddDataPoint {
                            measure: "Minutes lost".into(),
                            point: DataPoint {
                                date: format!("2024-{:02}-01", 1 + i % 12),
                                value: (w * 1000 + i) as f64,
                                note: format!("writer {w}"),
                                denominator: None,
                            },
                        },
                    )
                    .unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let node = Node::open(dir.path()).unwrap();
    let Body::Project(p) = node.get(id).unwrap().body else {
        panic!("not a project")
    };
    let mut values: Vec<i64> = p.measures[0].data.iter().map(|d| d.value as i64).collect();
    values.sort();
    let mut expected: Vec<i64> = (0..WRITES as i64)
        .chain((0..WRITES as i64).map(|i| 1000 + i))
        .collect();
    expected.sort();
    assert_eq!(
        values, expected,
        "every data point from both writers is there"
    );
    assert_eq!(node.history(id).unwrap().len(), 1 + 2 * WRITES);
}

#[test]
fn every_stored_change_is_signed_by_this_node() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = init(dir.path(), "Gateshead Health");
    let id = node
        .publish(learning("Community calls", "Falls admissions fell 6%."))
        .unwrap();
    node.edit(
        id,
        Edit::Set(vec![("title".into(), "Community response".into())]),
    )
    .unwrap();
    let changes = node.store().changes(id).unwrap();
    assert_eq!(changes.len(), 2);
    for c in &changes {
        c.change.verify().expect("signature verifies");
        assert_eq!(c.change.signer_id(), Some(node.node_id()));
    }
    let mut forged = changes[1].change.clone();
    forged.signature[0] ^= 0xff;
    assert!(forged.verify().is_err());
}

#[test]
fn received_changes_are_verified_before_they_are_stored() {
    let a_dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let mut a = init(a_dir.path(), "Gateshead Health");
    let mut b = init(b_dir.path(), "Newcastle City Council");
    let id = a.publish(learning("Peer visits", "Visits.")).unwrap();
    let mut changes: Vec<_> = a
        .store()
        .changes(id)
        .unwrap()
        .into_iter()
        .map(|c| c.change)
        .collect();

    let mut forged = changes[0].clone();
    forged.signature[3] ^= 1;
    let report = b.apply(vec![forged]).unwrap();
    assert_eq!(report.applied, 0);
    assert_eq!(report.rejected.len(), 1);
    assert_eq!(report.rejected[0].reason, "signature does not verify");
    assert!(matches!(b.get(id), Err(NodeError::UnknownId(_))));

    // Without the owner's profile the entry cannot be judged yet: it waits.
    let report = b.apply(changes.clone()).unwrap();
    assert_eq!(
        (report.applied, report.waiting, report.rejected.len()),
        (0, 1, 0)
    );
    assert!(b.get(id).is_err());
    // The profile arrives: the waiting change is applied with it.
    let report = b.apply(a.store().all_changes().unwrap()).unwrap();
    assert_eq!(
        (report.applied, report.rejected.len()),
        (2, 0),
        "{report:?}"
    );
    assert_eq!(b.get(id).unwrap().body.title(), "Peer visits");
    let report = b.apply(changes.split_off(0)).unwrap();
    assert_eq!(
        (report.applied, report.already_had),
        (0, 1),
        "applying twice changes nothing"
    );

    // B may not edit A's entry.
    let err = b
        .edit(id, Edit::Set(vec![("title".into(), "Mine now".into())]))
        .unwrap_err();
    assert!(matches!(err, NodeError::NotOwner { .. }), "{err}");
}

/// A change to `id` made and signed by `by`, skipping every local check
/// (what a hostile or modified node could send).
#[test]
fn entries_waiting_for_their_owner_are_tried_again_only_when_it_arrives() {
    let dirs: Vec<_> = (0..7).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut here = init(dirs[0].path(), "Sunderland Carers Centre");
    let mut owner = init(dirs[1].path(), "Gateshead Health");
    let mut ids = std::collections::BTreeSet::new();
    for i in 0..20 {
        ids.insert(
            owner
                .publish(learning(&format!("Lesson {i}"), "What we learned."))
                .unwrap(),
        );
    }
    let all = owner.store().all_changes().unwrap();
    let (entries, profile): (Vec<_>, Vec<_>) = all.into_iter().partition(|c| ids.contains(&c.doc));

    // Twenty entries of an organisation this node has not heard of: they
    // wait, once each.
    let report = here.apply(entries).unwrap();
    assert_eq!((report.applied, report.waiting), (0, 20), "{report:?}");
    // Other organisations' profiles arrive, one at a time: what waits for
    // Gateshead Health is not tried again for each.
    for (n, dir) in dirs[2..].iter().enumerate() {
        let other = init(dir.path(), &format!("Other Trust {n}"));
        let report = here.apply(other.store().all_changes().unwrap()).unwrap();
        assert_eq!((report.applied, report.waiting), (1, 0), "{report:?}");
    }
    let lessons = Filter {
        kind: Some(Kind::Learning),
        ..Filter::default()
    };
    assert_eq!(here.list(&lessons).unwrap().len(), 0);
    // The owner's profile arrives: every waiting entry goes in with it.
    let report = here.apply(profile).unwrap();
    assert_eq!((report.applied, report.waiting), (21, 0), "{report:?}");
    assert_eq!(here.list(&lessons).unwrap().len(), 20);
    // Nothing is left waiting: applying again changes nothing.
    let report = here.apply(Vec::new()).unwrap();
    assert_eq!((report.applied, report.waiting), (0, 0));
}

fn forge(by: &Node, id: DocumentId, field: &str, value: &str) -> SignedChange {
    use automerge::transaction::Transactable;
    let mut state = by.store().load(id).unwrap().unwrap();
    state.set_actor(automerge::ActorId::from(
        by.identity().public_bytes().as_slice(),
    ));
    let mut tx = state.transaction();
    tx.put(automerge::ROOT, field, value).unwrap();
    let (hash, _) = tx.commit();
    let change = automerge::ReadDoc::get_change_by_hash(&state, &hash.unwrap()).unwrap();
    SignedChange::sign(by.identity(), id, &change)
}

#[test]
fn a_member_cannot_change_another_organisations_entry() {
    let a_dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let c_dir = tempfile::tempdir().unwrap();
    let mut a = init(a_dir.path(), "Gateshead Health");
    let mut b = init(b_dir.path(), "Newcastle City Council");
    let mut c = init(c_dir.path(), "Sunderland Carers");
    let id = a.publish(learning("Peer visits", "Visits.")).unwrap();
    for n in [&mut b, &mut c] {
        n.apply(a.store().all_changes().unwrap()).unwrap();
    }
    let c_profile = c.store().all_changes().unwrap();
    a.apply(c_profile.clone()).unwrap();
    b.apply(c_profile).unwrap();

    // C forges a title change and an ownership change of A's entry.
    for (field, value) in [("title", "Ours now"), ("owner", &c.org().to_string())] {
        let forged = forge(&c, id, field, value);
        for n in [&mut a, &mut b] {
            let report = n.apply(vec![forged.clone()]).unwrap();
            assert_eq!(report.applied, 0, "{field}");
            assert_eq!(report.rejected.len(), 1, "{field}");
            assert!(
                report.rejected[0]
                    .reason
                    .contains("may not change learning"),
                "{}",
                report.rejected[0].reason
            );
            assert_eq!(n.get(id).unwrap().body.title(), "Peer visits");
            assert!(
                n.store()
                    .changes(id)
                    .unwrap()
                    .iter()
                    .all(|s| s.change.hash != forged.hash),
                "not stored"
            );
        }
    }
    let log = a.store().log(true).unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].event, "rejected");
    assert_eq!(
        log[0].signer.as_deref(),
        Some(c.node_id().to_string().as_str())
    );

    // The owner itself cannot change an entry's owner either.
    let moved = forge(&a, id, "owner", &b.org().to_string());
    let report = b.apply(vec![moved]).unwrap();
    assert_eq!(report.rejected.len(), 1);
    assert!(
        report.rejected[0].reason.contains("never change"),
        "{:?}",
        report.rejected
    );

    // Nor can anyone but its own nodes write an organisation's profile.
    let hijack = forge(&c, a.org().0, "name", "Hijacked");
    let report = b.apply(vec![hijack]).unwrap();
    assert_eq!(report.rejected.len(), 1);
    assert_eq!(b.org_name(&a.org()).unwrap(), "Gateshead Health");
}

#[test]
fn concurrent_edits_by_two_nodes_of_one_organisation_merge() {
    let a_dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let mut a = init(a_dir.path(), "Gateshead Health");
    let mut b = Node::init_joining(b_dir.path(), a.org()).unwrap();
    assert_ne!(a.node_id(), b.node_id());
    // The organisation's first node lists the second in its profile.
    a.authorize_node(b.node_id()).unwrap();
    b.apply(a.store().all_changes().unwrap()).unwrap();
    let id = a
        .publish(learning("Peer visits", "Peer visits reduced delays."))
        .unwrap();
    let all = |n: &Node| -> Vec<_> {
        n.store()
            .changes(id)
            .unwrap()
            .into_iter()
            .map(|c| c.change)
            .collect()
    };
    b.apply(all(&a)).unwrap();
    // Both nodes edit the same entry while apart.
    a.edit(
        id,
        Edit::Set(vec![(
            "body".into(),
            "Peer visits between areas reduced delays.".into(),
        )]),
    )
    .unwrap();
    b.edit(
        id,
        Edit::Set(vec![(
            "body".into(),
            "Peer visits reduced handover delays.".into(),
        )]),
    )
    .unwrap();
    b.edit(id, Edit::Set(vec![("tags".into(), "ambulance".into())]))
        .unwrap();
    a.apply(all(&b)).unwrap();
    b.apply(all(&a)).unwrap();
    for n in [&a, &b] {
        let Body::Learning(l) = n.get(id).unwrap().body else {
            panic!("not learning")
        };
        assert_eq!(
            l.body.as_str(),
            "Peer visits between areas reduced handover delays."
        );
        assert_eq!(l.tags, vec!["ambulance"]);
    }
    assert_eq!(all(&a).len(), 4);
    assert_eq!(all(&b).len(), 4);
    assert_eq!(a.store().log(true).unwrap(), vec![], "nothing was rejected");
}

#[test]
fn init_twice_refuses_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let node = init(dir.path(), "Gateshead Health");
    let id = node.node_id();
    drop(node);
    let key = std::fs::read(dir.path().join(KEY_FILE)).unwrap();
    let err = Node::init(
        dir.path(),
        &InitOptions {
            org: "Other".into(),
            sector: "council".into(),
            place: None,
        },
    )
    .unwrap_err();
    assert!(matches!(err, NodeError::AlreadyInitialised { .. }), "{err}");
    assert!(err.to_string().contains(&id.to_string()));
    assert_eq!(std::fs::read(dir.path().join(KEY_FILE)).unwrap(), key);
}

#[test]
fn a_failed_init_leaves_no_files() {
    let dir = tempfile::tempdir().unwrap();
    let err = Node::init(
        dir.path(),
        &InitOptions {
            org: "Gateshead Health".into(),
            sector: "hospitl".into(),
            place: None,
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("did you mean hospice"), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn damaged_and_read_only_databases_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(init(dir.path(), "Gateshead Health"));
    let db = dir.path().join(DB_FILE);

    let mut perms = std::fs::metadata(&db).unwrap().permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(&db, perms.clone()).unwrap();
    let err = Node::open(dir.path()).unwrap_err();
    assert!(
        matches!(err, NodeError::Store(StoreError::ReadOnly(_))),
        "{err}"
    );
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&db, perms).unwrap();

    for f in ["convene.db-wal", "convene.db-shm"] {
        let _ = std::fs::remove_file(dir.path().join(f));
    }
    std::fs::write(&db, b"this is not a database, it is a shopping list").unwrap();
    let err = Node::open(dir.path()).unwrap_err();
    assert!(
        matches!(err, NodeError::Store(StoreError::Corrupt { .. })),
        "{err}"
    );
}

#[test]
fn search_ranks_titles_first_and_skips_retracted() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = init(dir.path(), "Gateshead Health");
    let in_body = node
        .publish(learning(
            "Community calls",
            "Falls were fewer after handover changes.",
        ))
        .unwrap();
    let in_title = node
        .publish(learning(
            "Ambulance handover standard",
            "A standard operating model.",
        ))
        .unwrap();
    let hits = node.search("handover", 10).unwrap().unwrap();
    let ids: Vec<_> = hits.iter().map(|h| h.listed.id).collect();
    assert_eq!(ids, vec![in_title, in_body]);
    assert!(hits[0].snippet.contains("[handover]") || hits[0].snippet.contains("[Handover]"));
    assert_eq!(node.search("hand*", 10).unwrap().unwrap().len(), 2);
    node.retract(in_title).unwrap();
    let hits = node.search("handover", 10).unwrap().unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(node.get(in_title).unwrap().meta.status, Status::Retracted);
    assert!(node.search("()", 10).unwrap().is_none());
}

#[test]
fn co_editors_named_by_the_owner_may_edit() {
    let a_dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let mut a = init(a_dir.path(), "Gateshead Health");
    let mut b = init(b_dir.path(), "Gateshead Council");
    let id = a.publish(project()).unwrap();
    b.apply(a.store().all_changes().unwrap()).unwrap();
    a.apply(b.store().all_changes().unwrap()).unwrap();
    assert!(matches!(
        b.edit(id, Edit::Set(vec![("aim".into(), "x".into())])),
        Err(NodeError::NotOwner { .. })
    ));

    a.edit(id, Edit::AddEditor(b.org())).unwrap();
    b.apply(a.store().all_changes().unwrap()).unwrap();
    b.edit(
        id,
        Edit::Set(vec![("aim".into(), "Fewer minutes lost".into())]),
    )
    .unwrap();
    // An editor cannot hand editing on to others.
    assert!(matches!(
        b.edit(id, Edit::AddEditor(b.org())),
        Err(NodeError::NotOwner { .. })
    ));
    let report = a
        .apply(
            b.store()
                .changes(id)
                .unwrap()
                .into_iter()
                .map(|c| c.change)
                .collect(),
        )
        .unwrap();
    assert_eq!((report.applied, report.rejected.len()), (1, 0));
    let Body::Project(p) = a.get(id).unwrap().body else {
        panic!()
    };
    assert_eq!(p.aim, "Fewer minutes lost");
}

#[test]
fn no_one_can_make_a_document_under_an_id_that_is_not_theirs() {
    use convene_model::{Entry, Meta, Organisation, Status, Timestamp, Visibility};
    let a_dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let m_dir = tempfile::tempdir().unwrap();
    let a = init(a_dir.path(), "Gateshead Health");
    let mut b = init(b_dir.path(), "Gateshead Council");
    let m = init(m_dir.path(), "Mallory");
    // Mallory makes a profile under A's organisation id, listing its own
    // node, and gets it to B before A's real profile.
    let squat = Entry {
        id: a.org().0,
        meta: Meta {
            kind: convene_model::Kind::Organisation,
            schema: 1,
            owner: a.org(),
            visibility: Visibility::Community,
            editors: vec![],
            created: Timestamp(0),
            updated: Timestamp(0),
            status: Status::Published,
        },
        body: Body::Organisation(Organisation {
            name: "Gateshead Health".into(),
            sector: "nhs-trust".into(),
            nodes: vec![m.node_id().to_string()],
            ..Organisation::default()
        }),
    };
    let mut doc = automerge::Automerge::new();
    doc.set_actor(automerge::ActorId::from(
        m.identity().public_bytes().as_slice(),
    ));
    let mut tx = doc.transaction();
    squat.write(&mut tx).unwrap();
    let (hash, _) = tx.commit();
    let change = automerge::ReadDoc::get_change_by_hash(&doc, &hash.unwrap()).unwrap();
    let forged = SignedChange::sign(m.identity(), a.org().0, &change);
    let report = b.apply(vec![forged]).unwrap();
    assert_eq!(report.rejected.len(), 1);
    assert!(
        report.rejected[0]
            .reason
            .contains("does not match its first change"),
        "{:?}",
        report.rejected
    );
    // The real profile is then accepted.
    let report = b.apply(a.store().all_changes().unwrap()).unwrap();
    assert_eq!((report.applied, report.rejected.len()), (1, 0));
    assert_eq!(b.org_name(&a.org()).unwrap(), "Gateshead Health");
}

fn file_contains(path: &std::path::Path, needle: &[u8]) -> bool {
    std::fs::read(path)
        .map(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
        .unwrap_or(false)
}

#[test]
fn erased_contacts_are_gone_from_the_files_and_stay_out() {
    use convene_model::{Channel, Consent, Contact};
    let a_dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let mut a = init(a_dir.path(), "Gateshead Health");
    let mut b = init(b_dir.path(), "Gateshead Council");
    let name = "Zebediah Quillfeather";
    let id = a
        .publish(EntryInput {
            body: Body::Contact(Contact {
                name: name.into(),
                role: "Lived-experience partner".into(),
                channels: vec![Channel {
                    channel: "email".into(),
                    value: "zebediah.q@example.org".into(),
                    visibility: None,
                }],
                consent: Some(Consent {
                    given_by: name.into(),
                    ..Consent::default()
                }),
                ..Contact::default()
            }),
            visibility: None,
            status: None,
        })
        .unwrap();
    let all_of_a = a.store().all_changes().unwrap();
    b.apply(all_of_a.clone()).unwrap();
    assert_eq!(b.search("Zebediah", 5).unwrap().unwrap().len(), 1);

    // Before erasure the name is there to find (so the search below can fail).
    for dir in [a_dir.path(), b_dir.path()] {
        assert!(
            ["convene.db", "convene.db-wal"]
                .iter()
                .any(|f| file_contains(&dir.join(f), b"zebediah")),
            "the search words are in the files before erasure"
        );
    }
    // Only the owner may erase.
    assert!(matches!(b.erase(id, "no"), Err(NodeError::NotOwner { .. })));
    a.erase(id, "withdrawn at the person's request").unwrap();
    let tombstone = a.store().tombstone(id).unwrap().unwrap().tombstone;
    let report = b.apply_with_tombstones(vec![], vec![tombstone]).unwrap();
    assert_eq!(report.erased, vec![id]);

    for (node, dir) in [(&a, a_dir.path()), (&b, b_dir.path())] {
        assert!(matches!(node.get(id), Err(NodeError::Erased(_))));
        assert!(node.search("Zebediah", 5).unwrap().unwrap().is_empty());
        for file in ["convene.db", "convene.db-wal"] {
            for needle in [
                name.as_bytes(),
                b"zebediah",
                b"Quillfeather",
                b"quillfeather",
            ] {
                assert!(
                    !file_contains(&dir.join(file), needle),
                    "{file} still holds {:?}",
                    String::from_utf8_lossy(needle)
                );
            }
        }
        let log = node.store().log(false).unwrap();
        assert!(
            log.iter()
                .any(|e| e.event == "erased" && e.doc.as_deref() == Some(&*id.to_string()))
        );
    }
    // The entry is refused if it arrives again.
    let report = b.apply(all_of_a).unwrap();
    assert_eq!(report.applied, 0);
    assert_eq!(report.refused_erased, 1);
    assert!(matches!(b.get(id), Err(NodeError::Erased(_))));
}

#[test]
fn a_tombstone_from_someone_else_is_rejected() {
    let a_dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let m_dir = tempfile::tempdir().unwrap();
    let mut a = init(a_dir.path(), "Gateshead Health");
    let mut b = init(b_dir.path(), "Gateshead Council");
    let m = init(m_dir.path(), "Mallory");
    let id = a.publish(learning("Keep me", "Please.")).unwrap();
    b.apply(a.store().all_changes().unwrap()).unwrap();
    b.apply(m.store().all_changes().unwrap()).unwrap();
    let forged = convene_node::trust::Tombstone::sign(m.identity(), id, 1, "erase it");
    let report = b.apply_with_tombstones(vec![], vec![forged]).unwrap();
    assert!(report.erased.is_empty());
    assert_eq!(b.get(id).unwrap().body.title(), "Keep me");
    let log = b.store().log(true).unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].event, "rejected-erasure");
    let _ = a;
}

#[test]
fn one_sender_cannot_fill_the_waiting_room_for_the_others() {
    use convene_node::store::PendingLimits;
    let a_dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let mut a = init(a_dir.path(), "Gateshead Health");
    let mut b = init(b_dir.path(), "Newcastle City Council");
    b.store_mut().set_pending_limits(PendingLimits {
        changes: 30,
        bytes: 1 << 20,
        changes_per_sender: 10,
        bytes_per_sender: 1 << 20,
    });
    // Changes whose documents' first changes are missing must wait.
    let waiting = |a: &mut Node, n: usize| -> Vec<SignedChange> {
        let mut out = Vec::new();
        for i in 0..n {
            let id = a
                .publish(learning(&format!("Lesson {i}"), "Body."))
                .unwrap();
            a.edit(
                id,
                Edit::Set(vec![("impact".into(), format!("Impact {i}"))]),
            )
            .unwrap();
            out.push(a.store().changes(id).unwrap().pop().unwrap().change);
        }
        out
    };
    let flooder = Identity::generate().node_id();
    let member = Identity::generate().node_id();
    let flood = waiting(&mut a, 25);
    let report = b.apply_from(&flooder, flood, Vec::new()).unwrap();
    assert_eq!(report.waiting, 10, "the flooder's share is full");
    assert_eq!(report.rejected.len(), 15);
    assert_eq!(b.store().pending_count().unwrap(), 10);
    // Another peer's out-of-order changes still find room.
    let own = waiting(&mut a, 3);
    let report = b.apply_from(&member, own, Vec::new()).unwrap();
    assert_eq!(report.waiting, 3, "{:?}", report.rejected);
    assert!(report.rejected.is_empty());

    // The bytes count as well as the number of changes.
    b.store_mut().set_pending_limits(PendingLimits {
        changes: 1000,
        bytes: 1 << 20,
        changes_per_sender: 1000,
        bytes_per_sender: 2000,
    });
    let big = Identity::generate().node_id();
    let report = b.apply_from(&big, waiting(&mut a, 40), Vec::new()).unwrap();
    assert!(
        report.waiting > 0 && report.waiting < 40,
        "{}",
        report.waiting
    );
    assert_eq!(report.waiting + report.rejected.len(), 40);
}
