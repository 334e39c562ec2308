//! Who's who on a real community (the deterministic in-process network):
//! an organisation the stewards removed is still credited for what it
//! published, and marked as a former member.

mod sim;

use convene_model::{Body, EntryInput, Learning};
use sim::Net;

fn falls_lesson(title: &str) -> EntryInput {
    EntryInput {
        body: Body::Learning(Learning {
            title: title.into(),
            summary: "Community calls cut falls-related admissions.".into(),
            ..Learning::default()
        }),
        visibility: None,
        status: None,
    }
}

#[test]
fn a_removed_member_is_credited_and_marked_former_member() {
    let mut net = Net::new();
    let steward = net.add("Steward Trust");
    let council = net.add("Member Council");
    net.node_mut(steward).create_community("Boost").unwrap();
    net.invite_and_admit(council, steward);
    net.node_mut(council)
        .publish(falls_lesson("Community calls"))
        .unwrap();
    net.node_mut(steward)
        .publish(falls_lesson("Falls pathway"))
        .unwrap();
    net.sync(council, steward);

    let who = net.node(steward).who("falls", 10).unwrap();
    let council_row = who
        .organisations
        .iter()
        .find(|o| o.name == "Member Council")
        .expect("the council is credited while a member");
    assert_eq!(council_row.standing, Some("member"));

    let council_org = net.node(council).org();
    net.node_mut(steward).remove_member(council_org).unwrap();
    let who = net.node(steward).who("falls", 10).unwrap();
    let council_row = who
        .organisations
        .iter()
        .find(|o| o.name == "Member Council")
        .expect("what it published before still counts");
    assert_eq!(council_row.standing, Some("former member"));
    assert_eq!(council_row.reasons[0].entries[0].title, "Community calls");
    let steward_row = who
        .organisations
        .iter()
        .find(|o| o.name == "Steward Trust")
        .unwrap();
    assert_eq!(steward_row.standing, Some("member"));
}
