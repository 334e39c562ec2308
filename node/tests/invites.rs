//! Attacks on membership, replayed on the deterministic in-process
//! network (real nodes, real signatures, messages encoded as on the wire):
//! an edited invite code, a used invite replayed from a node whose clock is
//! two hours behind, and a flood of join claims from fresh node ids.

mod sim;

use convene_node::community::InviteCode;
use convene_node::{Node, SignedChange};
use sim::Net;

const HOUR: i64 = 3_600_000;

/// Security events in `node`'s log of kind `event`.
fn security_events(node: &Node, event: &str) -> usize {
    node.store()
        .log(true)
        .unwrap()
        .iter()
        .filter(|e| e.event == event)
        .count()
}

/// Claim documents `node` holds.
fn claims(node: &Node) -> usize {
    node.store().docs_of_kind("join").unwrap().len()
}

/// A change by `node` to its own join claim that dates it `by_ms` earlier:
/// what a node whose clock is behind would have written.
fn backdate_claim(node: &Node, by_ms: i64) -> SignedChange {
    use automerge::transaction::Transactable;
    let id = node.store().docs_of_kind("join").unwrap()[0];
    let mut state = node.store().load(id).unwrap().unwrap();
    state.set_actor(automerge::ActorId::from(
        node.identity().public_bytes().as_slice(),
    ));
    let created: i64 = match automerge::ReadDoc::get(&state, automerge::ROOT, "created")
        .unwrap()
        .unwrap()
        .0
    {
        automerge::Value::Scalar(s) => match s.as_ref() {
            automerge::ScalarValue::Timestamp(t) | automerge::ScalarValue::Int(t) => *t,
            other => panic!("created is {other:?}"),
        },
        other => panic!("created is {other:?}"),
    };
    let mut tx = state.transaction();
    tx.put(
        automerge::ROOT,
        "created",
        automerge::ScalarValue::Timestamp(created - by_ms),
    )
    .unwrap();
    let (hash, _) = tx.commit();
    let change = automerge::ReadDoc::get_change_by_hash(&state, &hash.unwrap()).unwrap();
    SignedChange::sign(node.identity(), id, &change)
}

/// A steward, a member council, and a community called Boost.
fn community() -> (Net, usize, usize) {
    let mut net = Net::new();
    let steward = net.add("Steward Trust");
    let council = net.add("Member Council");
    net.node_mut(steward).create_community("Boost").unwrap();
    net.invite_and_admit(council, steward);
    (net, steward, council)
}

#[test]
fn an_invite_code_edited_to_name_the_steward_organisation_is_refused_and_logged() {
    let (mut net, steward, council) = community();
    let attacker = net.add("Attacker Ltd");
    let steward_org = net.node(steward).org();
    let mut code = net
        .node_mut(steward)
        .invite(HOUR, false, None, vec![])
        .unwrap();
    // The holder edits the code's organisation to the steward's.
    code.org = Some(*steward_org.0.as_bytes());
    let code = InviteCode::decode(&code.encode()).unwrap();
    net.node_mut(attacker).accept_invite(&code).unwrap();
    net.link(attacker, steward);
    let claims_before = claims(net.node(steward));
    assert_eq!(net.join(attacker, steward), Err("not admitted".to_string()));
    let attacker_id = net.ids[attacker].to_string();
    let m = net.node(steward).membership().unwrap();
    assert!(!m.is_member_node(&attacker_id));
    assert!(!m.is_steward_node(&attacker_id));
    assert_eq!(
        m.members[&steward_org.to_string()].nodes.len(),
        1,
        "the steward organisation gained no node"
    );
    assert_eq!(claims(net.node(steward)), claims_before, "nothing stored");
    assert_eq!(security_events(net.node(steward), "forged-claim"), 1);
    // Its session is refused, and it cannot write as the steward.
    net.sync(attacker, steward);
    let posted = net.publish(steward, "Only for members");
    net.run();
    assert!(net.node(attacker).get(posted).is_err());
    assert!(net.node(council).get(posted).is_ok());
}

/// The community, a new invite the council has heard of, its holder and
/// a node that will replay it.
fn invite_with_two_claimants() -> (Net, usize, usize, usize, usize, InviteCode) {
    let (mut net, steward, council) = community();
    let holder = net.add("Holder Group");
    let replayer = net.add("Replayer Ltd");
    let code = net
        .node_mut(steward)
        .invite(HOUR, false, None, vec![])
        .unwrap();
    net.run(); // the council learns of the invite
    (net, steward, council, holder, replayer, code)
}

#[test]
fn a_used_invite_replayed_with_a_claim_dated_two_hours_earlier_does_not_win() {
    let (mut net, steward, council, holder, replayer, code) = invite_with_two_claimants();
    // The holder joins through the steward, whose node confirms its claim.
    net.node_mut(holder).accept_invite(&code).unwrap();
    net.admit(holder, steward);
    let holder_id = net.ids[holder].to_string();
    let charter = net.node(steward).membership().unwrap();
    assert!(charter.is_member_node(&holder_id));
    assert!(charter.unconfirmed.is_empty(), "the steward confirmed it");
    net.run();
    // The replay, dated two hours before the holder's claim, through the
    // council and through the steward.
    net.node_mut(replayer).accept_invite(&code).unwrap();
    let backdated = backdate_claim(net.node(replayer), 2 * HOUR);
    net.node_mut(replayer).apply(vec![backdated]).unwrap();
    for via in [council, steward] {
        net.link(replayer, via);
        assert_eq!(net.join(replayer, via), Err("not admitted".into()));
    }
    let replayer_id = net.ids[replayer].to_string();
    for n in [steward, council] {
        assert_eq!(
            security_events(net.node(n), "replayed-claim"),
            1,
            "node {n}: the leaked code shows"
        );
        let m = net.node(n).membership().unwrap();
        assert!(m.is_member_node(&holder_id), "node {n}: the holder stays");
        assert!(!m.is_member_node(&replayer_id), "node {n}");
    }
    // The holder still syncs.
    let posted = net.publish(holder, "Still here");
    net.sync(holder, steward);
    assert!(net.node(steward).get(posted).is_ok());
}

#[test]
fn two_claims_on_an_unconfirmed_invite_admit_neither_until_a_steward_confirms_one() {
    let (mut net, steward, council, holder, replayer, code) = invite_with_two_claimants();
    // The steward is away: the holder joins through the council.
    net.disconnect(steward, council);
    net.node_mut(holder).accept_invite(&code).unwrap();
    net.admit(holder, council);
    let holder_id = net.ids[holder].to_string();
    assert!(
        net.node(council)
            .membership()
            .unwrap()
            .is_member_node(&holder_id)
    );
    // A leaked copy of the code, claimed from a clock two hours behind.
    net.node_mut(replayer).accept_invite(&code).unwrap();
    let backdated = backdate_claim(net.node(replayer), 2 * HOUR);
    net.node_mut(replayer).apply(vec![backdated]).unwrap();
    net.link(replayer, council);
    assert_eq!(net.join(replayer, council), Err("not admitted".into()));
    let replayer_id = net.ids[replayer].to_string();
    let m = net.node(council).membership().unwrap();
    assert!(!m.is_member_node(&replayer_id), "no clock decides");
    assert!(!m.is_member_node(&holder_id), "contested: neither");
    assert_eq!(m.conflicts.len(), 1);
    assert_eq!(security_events(net.node(council), "invite-conflict"), 1);
    // The steward comes back, sees the conflict and confirms the holder.
    net.connect(steward, council);
    net.run();
    assert_eq!(net.node(steward).membership().unwrap().conflicts.len(), 1);
    let prefix = &holder_id[..20];
    assert_eq!(
        net.node_mut(steward).confirm_node(prefix).unwrap(),
        holder_id
    );
    net.sync(council, steward);
    for n in [steward, council] {
        let m = net.node(n).membership().unwrap();
        assert!(m.is_member_node(&holder_id), "node {n}");
        assert!(!m.is_member_node(&replayer_id), "node {n}");
        assert!(m.conflicts.is_empty(), "node {n}");
    }
}

#[test]
fn a_flood_of_claims_from_fresh_node_ids_without_the_secret_stores_nothing() {
    let (mut net, steward, council) = community();
    // The invite id is public to members (it is in the charter); the
    // secret is not.
    let code = net
        .node_mut(steward)
        .invite(HOUR, false, None, vec![])
        .unwrap();
    net.run();
    let log_before = net.node(council).store().log(false).unwrap().len();
    let claims_before = claims(net.node(council));
    for i in 0..12 {
        let stranger = net.add(&format!("Stranger {i}"));
        let mut guess = code.clone();
        guess.secret = rand_secret(i);
        net.node_mut(stranger).accept_invite(&guess).unwrap();
        net.link(stranger, council);
        assert_eq!(net.join(stranger, council), Err("not admitted".into()));
    }
    assert_eq!(claims(net.node(council)), claims_before, "no claim stored");
    assert_eq!(net.node(council).store().pending_count().unwrap(), 0);
    assert_eq!(
        net.node(council).store().log(false).unwrap().len(),
        log_before,
        "nothing written to the log either"
    );
    // Strangers are told nothing about the community.
    assert!(
        net.events
            .iter()
            .all(|(_, e)| !format!("{e:?}").contains("Boost"))
    );
}

fn rand_secret(i: u8) -> [u8; 16] {
    let mut s = [0u8; 16];
    s[0] = i;
    s[15] = 0xa5;
    s
}

#[test]
fn a_removed_members_node_is_told_only_that_it_is_not_admitted() {
    let (mut net, steward, council) = community();
    let council_org = net.node(council).org();
    net.node_mut(steward).remove_member(council_org).unwrap();
    net.run();
    net.events.clear();
    net.sync(council, steward);
    let said: Vec<String> = net.events.iter().map(|(_, e)| format!("{e:?}")).collect();
    assert!(said.iter().any(|e| e.contains("not admitted")), "{said:#?}");
    assert!(
        said.iter()
            .all(|e| !e.contains("Boost") && !e.contains("removed") && !e.contains("no longer")),
        "{said:#?}"
    );
}

#[test]
fn a_claim_that_arrives_before_the_charter_naming_its_invite_waits_and_then_counts() {
    let (mut net, steward, council) = community();
    net.disconnect(steward, council);
    let newcomer = net.add("Late Group");
    net.invite_and_admit(newcomer, steward);
    // The council hears of the claim before the charter with its invite.
    let claim = net.node(newcomer).join_changes().unwrap();
    let report = net.node_mut(council).apply(claim).unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert!(report.waiting > 0);
    let community = net.node(steward).membership().unwrap().community;
    let charter: Vec<SignedChange> = net
        .node(steward)
        .store()
        .changes(community)
        .unwrap()
        .into_iter()
        .map(|c| c.change)
        .collect();
    net.node_mut(council).apply(charter).unwrap();
    let newcomer_id = net.ids[newcomer].to_string();
    assert!(
        net.node(council)
            .membership()
            .unwrap()
            .is_member_node(&newcomer_id)
    );
}
