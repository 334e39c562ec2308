//! The model's behaviour as the node relies on it: validation messages,
//! documents round-tripping, unknown fields surviving, prose merging.

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ReadDoc};
use convene_model::*;

fn meta(kind: Kind) -> Meta {
    Meta {
        kind,
        schema: SCHEMA,
        owner: OrgId(DocumentId::from_bytes([1; 16])),
        visibility: Visibility::Community,
        editors: vec![],
        created: Timestamp(1_700_000_000_000),
        updated: Timestamp(1_700_000_000_000),
        status: Status::Published,
    }
}

fn learning() -> Learning {
    Learning {
        title: "NHS 111 online and call answering".into(),
        summary: "Extra call handling capacity online cut waiting.".into(),
        impact: "44 per cent reduction in call answering time".into(),
        priorities: vec!["Discharge and safe transfers of care".into()],
        methods: vec!["pdsa".into()],
        tags: vec!["111".into(), " urgent care ".into(), "111".into()],
        ..Learning::default()
    }
}

#[test]
fn check_normalises_labels_and_aliases_to_slugs() {
    let mut body = Body::Learning(learning());
    body.check(&Vocabularies::default()).unwrap();
    let Body::Learning(l) = body else {
        unreachable!()
    };
    assert_eq!(l.priorities, vec!["discharge-and-safe-transfers-of-care"]);
    assert_eq!(l.methods, vec!["model-for-improvement"]);
    assert_eq!(
        l.tags,
        vec!["111", "urgent care"],
        "trimmed and deduplicated"
    );
    assert_eq!(l.licence, "OGL-UK-3.0");
}

#[test]
fn check_reports_every_problem_with_its_field() {
    let mut p = Project {
        title: "  ".into(),
        stage: Some("testing".into()),
        measures: vec![
            Measure {
                name: "Length of stay".into(),
                data: vec![DataPoint {
                    date: "31/01/2024".into(),
                    value: 7.0,
                    note: String::new(),
                    denominator: None,
                }],
                ..Measure::default()
            },
            Measure {
                name: "length of stay".into(),
                ..Measure::default()
            },
        ],
        ..Project::default()
    };
    p.priorities = vec!["mental healt".into()];
    let err = Body::Project(p)
        .check(&Vocabularies::default())
        .unwrap_err();
    let fields: Vec<&str> = err.0.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(
        fields,
        vec![
            "title",
            "stage",
            "priorities",
            "measures[0].data[0].date",
            "measures[1].name"
        ],
        "{err}"
    );
    let text = err.to_string();
    assert!(text.contains("title: is required"), "{text}");
    assert!(
        text.contains("\"31/01/2024\" is not a date (expected YYYY-MM-DD)"),
        "{text}"
    );
    assert!(text.contains("did you mean"), "{text}");
}

#[test]
fn contacts_need_consent_and_a_real_email() {
    let mut c = Contact {
        name: "Asha Patel".into(),
        channels: vec![Channel {
            channel: "Email".into(),
            value: "asha.example".into(),
            visibility: None,
        }],
        ..Contact::default()
    };
    let err = Body::Contact(c.clone())
        .check(&Vocabularies::default())
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("channels[0].value: \"asha.example\" is not an email address"),
        "{text}"
    );
    assert!(text.contains("consent: is required"), "{text}");
    c.channels[0].value = "asha@example.org".into();
    c.consent = Some(Consent {
        given_by: "Asha Patel".into(),
        ..Consent::default()
    });
    Body::Contact(c).check(&Vocabularies::default()).unwrap();
}

#[test]
fn entries_round_trip_through_documents_and_keep_unknown_fields() {
    let entry = Entry {
        id: DocumentId::from_bytes([9; 16]),
        meta: meta(Kind::Learning),
        body: Body::Learning(learning()),
    };
    let mut doc = AutoCommit::new();
    entry.write(&mut doc).unwrap();
    // A newer version adds a field this version does not know.
    doc.put(automerge::ROOT, "future_field", "kept").unwrap();
    let mut read = Entry::from_doc(entry.id, &doc).unwrap();
    assert_eq!(read, entry);
    if let Body::Learning(l) = &mut read.body {
        l.title = "Renamed".into();
    }
    read.write(&mut doc).unwrap();
    let (value, _) = doc.get(automerge::ROOT, "future_field").unwrap().unwrap();
    assert_eq!(value.as_str(), Some("kept"));
    assert_eq!(
        Entry::from_doc(entry.id, &doc).unwrap().body.title(),
        "Renamed"
    );
}

#[test]
fn concurrent_prose_edits_merge_by_character() {
    let mut l = learning();
    l.body = "Peer visits reduced delays.".into();
    let entry = Entry {
        id: DocumentId::from_bytes([3; 16]),
        meta: meta(Kind::Learning),
        body: Body::Learning(l),
    };
    let mut a = AutoCommit::new();
    entry.write(&mut a).unwrap();
    let mut b = a.fork();
    let edit = |doc: &mut AutoCommit, text: &str| {
        let mut e = Entry::from_doc(entry.id, doc).unwrap();
        let Body::Learning(l) = &mut e.body else {
            unreachable!()
        };
        l.body = text.into();
        e.write(doc).unwrap();
    };
    edit(&mut a, "Peer visits between areas reduced delays.");
    edit(&mut b, "Peer visits reduced handover delays.");
    a.merge(&mut b).unwrap();
    let merged = Entry::from_doc(entry.id, &a).unwrap();
    let Body::Learning(l) = merged.body else {
        unreachable!()
    };
    assert_eq!(
        l.body.as_str(),
        "Peer visits between areas reduced handover delays."
    );
}

#[test]
fn json_input_reads_show_output_and_rejects_typos() {
    let entry = Entry {
        id: DocumentId::from_bytes([5; 16]),
        meta: meta(Kind::Learning),
        body: Body::Learning(learning()),
    };
    let json = entry.to_json();
    assert_eq!(json["kind"], "learning");
    assert_eq!(json["visibility"], "community");
    let input = EntryInput::from_json(Kind::Learning, json.clone()).unwrap();
    assert_eq!(input.body, entry.body);
    let err = EntryInput::from_json(Kind::Project, json).unwrap_err();
    assert!(matches!(err, InputError::KindMismatch { .. }), "{err}");
    let err = EntryInput::from_json(Kind::Learning, serde_json::json!({"titel": "x"})).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("unknown field \"titel\" for a learning entry"),
        "{err}"
    );
}

#[test]
fn set_field_follows_the_field_type() {
    let mut body = Body::Project(Project {
        title: "Safe transfer of care".into(),
        measures: vec![Measure {
            name: "Length of stay".into(),
            ..Measure::default()
        }],
        ..Project::default()
    });
    body.set_field("title", "2024").unwrap();
    body.set_field("tags", "discharge, flow").unwrap();
    body.set_field("measures[0].baseline", "8.5").unwrap();
    body.set_field("measures[0].unit", "days").unwrap();
    let Body::Project(p) = &body else {
        unreachable!()
    };
    assert_eq!(p.title, "2024");
    assert_eq!(p.tags, vec!["discharge", "flow"]);
    assert_eq!(p.measures[0].baseline, Some(8.5));
    assert_eq!(p.measures[0].unit, "days");
    let err = body.set_field("measures[3].unit", "x").unwrap_err();
    assert!(err.to_string().contains("index 3 is out of range"), "{err}");
    let err = body.set_field("measures[0].baseline", "lots").unwrap_err();
    assert!(
        err.to_string().starts_with("measures[0].baseline:"),
        "{err}"
    );
    assert!(matches!(
        body.set_field("colour", "red"),
        Err(InputError::UnknownField { .. })
    ));
}
