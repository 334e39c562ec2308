//! Membership: which organisations and nodes belong to the community,
//! computed from the charter, the join claims a node holds and the
//! organisation profiles that consent to new nodes.
//!
//! Authority comes from signatures, never from what a claimant says about
//! itself (see [`check_claim`]):
//!
//! - An invite is fixed by the steward who issues it: either for a **new
//!   organisation**, whose id must then be derived from the claiming
//!   node's own key (so a code edited to name an existing organisation is
//!   refused), or for **one named existing organisation**, which must
//!   consent by listing the new node in its profile (a change only that
//!   organisation's current nodes can sign).
//! - An invite admits **one node**. When a steward's node sees a valid
//!   claim it confirms it in the charter ([`Invite::confirmed`]); from then
//!   on every other claim on that invite is void everywhere. Two valid
//!   claims by different nodes on an unconfirmed invite admit neither
//!   (a conflict, logged as a security event) until a steward confirms one.
//!   No timestamp takes part: a claim's clock is its author's to set.
//! - Invites issued by an organisation that was since removed are void
//!   unless a steward had confirmed them; a removed member stays removed
//!   whatever claims say.

use std::collections::{BTreeMap, BTreeSet};

use convene_model::{Body, Charter, Claim, DocumentId, Entry, Invite, Kind, Timestamp};

use super::NodeId;

/// One member organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberInfo {
    pub org: String,
    pub name: String,
    pub nodes: BTreeSet<String>,
    pub steward: bool,
    pub joined: Timestamp,
    pub removed: Option<Timestamp>,
}

/// The community as this node knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub community: DocumentId,
    pub name: String,
    pub members: BTreeMap<String, MemberInfo>,
    /// Unconfirmed invites claimed by more than one node (invite id →
    /// claiming nodes): none of them is admitted until a steward confirms
    /// one.
    pub conflicts: BTreeMap<String, BTreeSet<String>>,
    /// Invites with exactly one valid claim that no steward has confirmed
    /// yet (invite id → node): a steward's node confirms them.
    pub unconfirmed: BTreeMap<String, String>,
}

/// Hex of bytes (invite ids, secrets).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// blake3 of an invite secret, hex.
pub fn secret_hash(secret: &[u8]) -> String {
    hex(blake3::hash(secret).as_bytes())
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Why a join claim does not count.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimFault {
    #[error("the claim is for another community")]
    OtherCommunity,
    #[error("the community never issued this invite")]
    UnknownInvite,
    #[error("the claim does not hold the invite's secret")]
    WrongSecret,
    #[error("the invite was issued by an organisation that has since been removed")]
    IssuerRemoved,
    #[error(
        "the claim names organisation {claimed}, but the invite is for a new organisation, whose id comes from the node's own key: the invite code was edited"
    )]
    ForgedNewOrg { claimed: String },
    #[error(
        "the claim names organisation {claimed}, but the invite is for organisation {invited}: the invite code was edited"
    )]
    ForgedOrg { claimed: String, invited: String },
    #[error("organisation {org} has not listed node {node} in its profile (its consent)")]
    NoConsent { org: String, node: String },
    #[error("a steward confirmed another node's claim on this invite")]
    Void,
    #[error("the claiming node's id holds no Ed25519 key")]
    BadNode,
}

impl ClaimFault {
    /// Whether the claimant proved it holds the invite's secret and then
    /// lied about what the invite is for: a security event.
    pub fn is_forgery(&self) -> bool {
        matches!(self, Self::ForgedNewOrg { .. } | Self::ForgedOrg { .. })
    }

    /// The security event a claim that proved the invite's secret is
    /// logged as, if it is one: an edited code, or a used code replayed
    /// (the code has leaked). Claims that proved nothing are not logged:
    /// a stranger's guesses cost no disk.
    pub fn security_event(&self) -> Option<&'static str> {
        match self {
            _ if self.is_forgery() => Some("forged-claim"),
            Self::Void => Some("replayed-claim"),
            _ => None,
        }
    }
}

/// Whether `claim` is a valid claim on its invite in `charter` (whose id
/// is `community`). `profiles` gives, for an existing organisation, the
/// nodes its profile lists. Expiry is not checked here: it is checked by
/// the member that first receives the claim, against its own clock.
pub fn check_claim<'c>(
    community: DocumentId,
    charter: &'c Charter,
    claim: &Claim,
    profiles: &dyn Fn(&str) -> BTreeSet<String>,
) -> Result<&'c Invite, ClaimFault> {
    if claim.community != community.to_string() {
        return Err(ClaimFault::OtherCommunity);
    }
    let invite = charter
        .invites
        .get(&claim.invite)
        .ok_or(ClaimFault::UnknownInvite)?;
    if unhex(&claim.secret).is_none_or(|s| secret_hash(&s) != invite.secret_hash) {
        return Err(ClaimFault::WrongSecret);
    }
    if let Some(confirmed) = &invite.confirmed {
        return if *confirmed == claim.node {
            Ok(invite)
        } else {
            Err(ClaimFault::Void)
        };
    }
    if charter
        .members
        .get(&invite.issued_by)
        .is_some_and(|m| m.removed.is_some())
    {
        return Err(ClaimFault::IssuerRemoved);
    }
    match &invite.org {
        None => {
            let key = claim
                .node
                .parse::<NodeId>()
                .ok()
                .and_then(|n| n.public_bytes())
                .ok_or(ClaimFault::BadNode)?;
            if super::org_id(&key).to_string() != claim.org {
                return Err(ClaimFault::ForgedNewOrg {
                    claimed: claim.org.clone(),
                });
            }
        }
        Some(org) => {
            if *org != claim.org {
                return Err(ClaimFault::ForgedOrg {
                    claimed: claim.org.clone(),
                    invited: org.clone(),
                });
            }
            if !profiles(org).contains(&claim.node) {
                return Err(ClaimFault::NoConsent {
                    org: org.clone(),
                    node: claim.node.clone(),
                });
            }
        }
    }
    Ok(invite)
}

impl Membership {
    /// Membership from a charter and the claims known (each with its
    /// entry's id and creation time, which is shown, never trusted).
    /// `profiles` gives the nodes an organisation's profile lists.
    pub fn compute(
        community: DocumentId,
        charter: &Charter,
        claims: &[(DocumentId, Timestamp, Claim)],
        profiles: &dyn Fn(&str) -> BTreeSet<String>,
    ) -> Self {
        let stewards: BTreeSet<&String> = charter.stewards.iter().collect();
        let mut members: BTreeMap<String, MemberInfo> = charter
            .members
            .iter()
            .map(|(org, m)| {
                (
                    org.clone(),
                    MemberInfo {
                        org: org.clone(),
                        name: m.name.clone(),
                        nodes: m.nodes.iter().cloned().collect(),
                        steward: stewards.contains(org),
                        joined: m.joined,
                        removed: m.removed,
                    },
                )
            })
            .collect();
        // Valid claims by invite, then by claiming node (a node may have
        // made more than one claim document for the same invite).
        let mut by_invite: BTreeMap<&str, BTreeMap<&str, (&Timestamp, &Claim)>> = BTreeMap::new();
        for (_, at, claim) in claims {
            if check_claim(community, charter, claim, profiles).is_ok() {
                by_invite
                    .entry(claim.invite.as_str())
                    .or_default()
                    .entry(claim.node.as_str())
                    .or_insert((at, claim));
            }
        }
        let mut conflicts = BTreeMap::new();
        let mut unconfirmed = BTreeMap::new();
        for (invite_id, nodes) in by_invite {
            let invite = &charter.invites[invite_id];
            let (at, claim) = match (invite.confirmed.as_deref(), nodes.len()) {
                // check_claim let through only the confirmed node's claims.
                (Some(_), _) | (None, 1) => *nodes.values().next().expect("one claim"),
                (None, _) => {
                    conflicts.insert(
                        invite_id.to_string(),
                        nodes.keys().map(|n| n.to_string()).collect(),
                    );
                    continue;
                }
            };
            if invite.confirmed.is_none() {
                unconfirmed.insert(invite_id.to_string(), claim.node.clone());
            }
            let m = members
                .entry(claim.org.clone())
                .or_insert_with(|| MemberInfo {
                    org: claim.org.clone(),
                    name: claim.org_name.clone(),
                    nodes: BTreeSet::new(),
                    steward: false,
                    joined: *at,
                    removed: None,
                });
            // The organisation's name and joining date come from the claim
            // that founded it, not from a later node's.
            if invite.org.is_none() {
                m.name.clone_from(&claim.org_name);
                m.joined = *at;
            }
            m.nodes.insert(claim.node.clone());
            m.steward |= invite.steward && m.removed.is_none();
        }
        Self {
            community,
            name: charter.name.clone(),
            members,
            conflicts,
            unconfirmed,
        }
    }

    /// The member organisation a node belongs to, removed or not.
    pub fn org_of(&self, node: &str) -> Option<&MemberInfo> {
        self.members.values().find(|m| m.nodes.contains(node))
    }

    /// Whether `node` belongs to a current (not removed) member.
    pub fn is_member_node(&self, node: &str) -> bool {
        self.org_of(node).is_some_and(|m| m.removed.is_none())
    }

    /// Whether `node` belongs to a current steward.
    pub fn is_steward_node(&self, node: &str) -> bool {
        self.org_of(node)
            .is_some_and(|m| m.removed.is_none() && m.steward)
    }

    /// Whether `node` is one of `org`'s nodes per the charter and claims.
    pub fn is_node_of(&self, node: &str, org: &str) -> bool {
        self.members
            .get(org)
            .is_some_and(|m| m.nodes.contains(node))
    }

    /// Whether `org` was a member and was removed.
    pub fn is_removed(&self, org: &str) -> bool {
        self.members.get(org).is_some_and(|m| m.removed.is_some())
    }
}

/// Reads the pieces membership is computed from.
pub trait DocSource {
    fn community(&self) -> Option<DocumentId>;
    fn entry(&self, doc: DocumentId) -> Option<Entry>;
    fn docs_of_kind(&self, kind: Kind) -> Vec<DocumentId>;
    /// A digest of everything membership is computed from (the community
    /// and every charter, claim and profile with its heads) and where to
    /// keep the membership computed for it, if the source keeps one.
    fn cached(&self) -> Option<([u8; 32], &MembershipCache)> {
        None
    }
}

/// The last membership computed, with the digest of what it was computed
/// from ([`DocSource::cached`]): computing it loads every charter, claim
/// and profile and checks every claim, which a node receiving one entry
/// from each of twenty members should not do twenty times.
#[derive(Debug, Default)]
pub struct MembershipCache(std::cell::RefCell<Option<([u8; 32], Option<Membership>)>>);

/// The nodes organisation `org`'s profile lists, as `source` has it.
pub fn profile_nodes(source: &dyn DocSource, org: &str) -> BTreeSet<String> {
    match org.parse().ok().and_then(|id| source.entry(id)) {
        Some(Entry {
            body: Body::Organisation(o),
            ..
        }) => o.nodes.into_iter().collect(),
        _ => BTreeSet::new(),
    }
}

/// This node's community: its id and charter, if it is in one and has the
/// charter.
pub fn charter(source: &dyn DocSource) -> Option<(DocumentId, Charter)> {
    let community = source.community()?;
    match source.entry(community) {
        Some(Entry {
            body: Body::Charter(c),
            ..
        }) => Some((community, c)),
        _ => None,
    }
}

/// The membership of the community this node belongs to, if any.
pub fn load(source: &dyn DocSource) -> Option<Membership> {
    // Outside a community there is nothing to compute, nor to digest.
    source.community()?;
    let Some((key, cache)) = source.cached() else {
        return compute(source);
    };
    if let Some((k, m)) = &*cache.0.borrow()
        && *k == key
    {
        return m.clone();
    }
    let m = compute(source);
    *cache.0.borrow_mut() = Some((key, m.clone()));
    m
}

fn compute(source: &dyn DocSource) -> Option<Membership> {
    let (community, charter) = charter(source)?;
    let claims: Vec<(DocumentId, Timestamp, Claim)> = source
        .docs_of_kind(Kind::Join)
        .into_iter()
        .filter_map(|id| match source.entry(id) {
            Some(Entry {
                body: Body::Join(c),
                meta,
                ..
            }) => Some((id, meta.created, c)),
            _ => None,
        })
        .collect();
    let profiles = |org: &str| profile_nodes(source, org);
    Some(Membership::compute(community, &charter, &claims, &profiles))
}

/// Both a store and an open write transaction can say what membership is
/// computed from.
macro_rules! doc_source {
    ($ty:ty) => {
        impl DocSource for $ty {
            fn community(&self) -> Option<DocumentId> {
                self.meta(COMMUNITY_META).ok().flatten()?.parse().ok()
            }

            fn entry(&self, doc: DocumentId) -> Option<Entry> {
                let state = self.load(doc).ok().flatten()?;
                Entry::from_doc(doc, &state).ok()
            }

            fn docs_of_kind(&self, kind: Kind) -> Vec<DocumentId> {
                self.docs_of_kind(kind.as_str()).unwrap_or_default()
            }

            fn cached(&self) -> Option<([u8; 32], &MembershipCache)> {
                let key = self.authority_digest(COMMUNITY_META).ok()?;
                Some((key, self.membership_cache()))
            }
        }
    };
}

doc_source!(crate::store::Store);
doc_source!(crate::store::Writer<'_>);

/// `meta` key holding the id of the community (its charter) this node is in.
pub const COMMUNITY_META: &str = "community";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::Identity;
    use convene_model::{Invite, Member};

    const HOUR: i64 = 3_600_000;

    fn community() -> DocumentId {
        DocumentId::from_bytes([9; 16])
    }

    fn charter() -> Charter {
        Charter {
            name: "Boost".into(),
            stewards: vec!["S".into()],
            members: [(
                "S".to_string(),
                Member {
                    name: "Steward Trust".into(),
                    nodes: vec!["n-s".into()],
                    joined: Timestamp(1),
                    removed: None,
                },
            )]
            .into(),
            invites: [(
                "i1".to_string(),
                Invite {
                    secret_hash: secret_hash(b"secret"),
                    expires: Timestamp(100 * HOUR),
                    issued_by: "S".into(),
                    ..Invite::default()
                },
            )]
            .into(),
        }
    }

    /// A fresh node's claim on invite i1 for a new organisation, its id
    /// derived from the node's key as `join` makes it.
    fn claim(secret: &[u8]) -> (String, Claim) {
        let node = Identity::generate().node_id();
        let org = crate::trust::org_id(&node.public_bytes().unwrap()).to_string();
        let c = Claim {
            community: community().to_string(),
            invite: "i1".into(),
            secret: hex(secret),
            org: org.clone(),
            org_name: "Newcomer".into(),
            node: node.to_string(),
        };
        (node.to_string(), c)
    }

    fn at(n: u8, t: i64, c: &Claim) -> (DocumentId, Timestamp, Claim) {
        (DocumentId::from_bytes([n; 16]), Timestamp(t), c.clone())
    }

    fn no_profiles(_: &str) -> BTreeSet<String> {
        BTreeSet::new()
    }

    #[test]
    fn one_valid_claim_admits_its_node_and_a_wrong_secret_nothing() {
        let (node, c) = claim(b"secret");
        let (wrong_node, wrong) = claim(b"guess");
        let claims = [at(1, 10, &c), at(2, 5, &wrong)];
        let m = Membership::compute(community(), &charter(), &claims, &no_profiles);
        assert!(m.is_member_node(&node));
        assert!(!m.is_member_node(&wrong_node), "wrong secret");
        assert_eq!(m.unconfirmed.get("i1"), Some(&node));
        assert!(m.is_steward_node("n-s") && !m.is_steward_node(&node));
    }

    #[test]
    fn a_code_edited_to_name_an_existing_organisation_admits_nothing() {
        // The attack: the code's organisation set to the steward's.
        let (node, mut c) = claim(b"secret");
        c.org = "S".into();
        let fault = check_claim(community(), &charter(), &c, &no_profiles).unwrap_err();
        assert!(fault.is_forgery(), "{fault}");
        let m = Membership::compute(community(), &charter(), &[at(1, 10, &c)], &no_profiles);
        assert!(!m.is_member_node(&node));
        assert!(!m.is_steward_node(&node));
        assert_eq!(m.members["S"].nodes.len(), 1, "the steward gained no node");
        // Nor can an invite for one organisation be turned into another's.
        let mut ch = charter();
        ch.invites.get_mut("i1").unwrap().org = Some("X".into());
        c.org = "S".into();
        let fault = check_claim(community(), &ch, &c, &no_profiles).unwrap_err();
        assert!(matches!(fault, ClaimFault::ForgedOrg { .. }), "{fault}");
    }

    #[test]
    fn a_replayed_claim_dated_two_hours_earlier_does_not_win() {
        let (first, c1) = claim(b"secret");
        let (replay, c2) = claim(b"secret");
        // The replay claims to be two hours older.
        let claims = [at(1, 10 * HOUR, &c1), at(2, 8 * HOUR, &c2)];
        let m = Membership::compute(community(), &charter(), &claims, &no_profiles);
        assert!(!m.is_member_node(&replay), "a clock decides nothing");
        assert!(
            !m.is_member_node(&first),
            "unconfirmed: neither is admitted"
        );
        assert_eq!(m.conflicts["i1"], [first.clone(), replay.clone()].into());
        // A steward confirms the first claim: the replay is void, whatever
        // its timestamp.
        let mut ch = charter();
        ch.invites.get_mut("i1").unwrap().confirmed = Some(first.clone());
        let m = Membership::compute(community(), &ch, &claims, &no_profiles);
        assert!(m.is_member_node(&first));
        assert!(!m.is_member_node(&replay));
        assert!(m.conflicts.is_empty() && m.unconfirmed.is_empty());
        assert_eq!(
            check_claim(community(), &ch, &c2, &no_profiles),
            Err(ClaimFault::Void)
        );
    }

    #[test]
    fn another_node_of_an_organisation_needs_its_consent() {
        let node = Identity::generate().node_id().to_string();
        let mut ch = charter();
        ch.invites.get_mut("i1").unwrap().org = Some("S".into());
        let c = Claim {
            community: community().to_string(),
            invite: "i1".into(),
            secret: hex(b"secret"),
            org: "S".into(),
            org_name: "Steward Trust".into(),
            node: node.clone(),
        };
        let m = Membership::compute(community(), &ch, &[at(1, 10, &c)], &no_profiles);
        assert!(
            !m.is_member_node(&node),
            "the steward organisation did not consent"
        );
        let consents = |org: &str| -> BTreeSet<String> {
            if org == "S" {
                ["n-s".to_string(), node.clone()].into()
            } else {
                BTreeSet::new()
            }
        };
        let m = Membership::compute(community(), &ch, &[at(1, 10, &c)], &consents);
        assert!(m.is_member_node(&node) && m.is_node_of(&node, "S"));
    }

    #[test]
    fn a_removed_members_invites_are_void_and_it_stays_removed() {
        let (node, c) = claim(b"secret");
        let mut ch = charter();
        ch.stewards.push("T".into());
        ch.members.insert(
            "T".into(),
            Member {
                name: "Gone".into(),
                nodes: vec!["n-t".into()],
                joined: Timestamp(1),
                removed: Some(Timestamp(5)),
            },
        );
        ch.invites.get_mut("i1").unwrap().issued_by = "T".into();
        let m = Membership::compute(community(), &ch, &[at(1, 10, &c)], &no_profiles);
        assert!(!m.is_member_node(&node));
        assert!(!m.is_member_node("n-t") && m.is_removed("T"));
        // Confirmed before the removal: the member stays.
        ch.invites.get_mut("i1").unwrap().confirmed = Some(node.clone());
        let m = Membership::compute(community(), &ch, &[at(1, 10, &c)], &no_profiles);
        assert!(m.is_member_node(&node));
    }
}
