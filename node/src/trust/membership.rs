//! Membership: which organisations and nodes belong to the community,
//! computed from the charter and the join claims a node holds.
//!
//! A claim counts if its invite is in the charter, its secret hashes to the
//! invite's hash, it was made before the invite expired, its organisation
//! matches the invite's (for another node of a member), and it is the first
//! valid claim of that invite (earliest, then lowest id: every node picks
//! the same one). A member the charter marks as removed stays removed
//! whatever claims say.

use std::collections::{BTreeMap, BTreeSet};

use convene_model::{Body, Charter, Claim, DocumentId, Entry, Kind, Timestamp};

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

impl Membership {
    /// Membership from a charter and the claims known (each with its
    /// entry's creation time and id).
    pub fn compute(
        community: DocumentId,
        charter: &Charter,
        claims: &[(DocumentId, Timestamp, Claim)],
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
        let mut sorted: Vec<&(DocumentId, Timestamp, Claim)> = claims.iter().collect();
        sorted.sort_by_key(|(id, at, _)| (*at, *id));
        let mut used = BTreeSet::new();
        for (_, at, claim) in sorted {
            if claim.community != community.to_string() || used.contains(&claim.invite) {
                continue;
            }
            let Some(invite) = charter.invites.get(&claim.invite) else {
                continue;
            };
            let secret_ok =
                unhex(&claim.secret).is_some_and(|s| secret_hash(&s) == invite.secret_hash);
            let org_ok = invite.org.as_ref().is_none_or(|o| *o == claim.org);
            if !secret_ok || !org_ok || *at > invite.expires {
                continue;
            }
            used.insert(claim.invite.clone());
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
            m.nodes.insert(claim.node.clone());
            m.steward |= invite.steward;
        }
        Self {
            community,
            name: charter.name.clone(),
            members,
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
}

/// The membership of the community this node belongs to, if any.
pub fn load(source: &dyn DocSource) -> Option<Membership> {
    let community = source.community()?;
    let charter = match source.entry(community) {
        Some(Entry {
            body: Body::Charter(c),
            ..
        }) => c,
        _ => return None,
    };
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
    Some(Membership::compute(community, &charter, &claims))
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
    use convene_model::{Invite, Member};

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
                    expires: Timestamp(100),
                    steward: false,
                    org: None,
                    issued_by: "S".into(),
                },
            )]
            .into(),
        }
    }

    fn claim(org: &str, node: &str, secret: &[u8]) -> Claim {
        Claim {
            community: DocumentId::from_bytes([9; 16]).to_string(),
            invite: "i1".into(),
            secret: hex(secret),
            org: org.into(),
            org_name: org.into(),
            node: node.into(),
        }
    }

    #[test]
    fn the_first_valid_claim_of_an_invite_wins() {
        let id = DocumentId::from_bytes([9; 16]);
        let claims = vec![
            (
                DocumentId::from_bytes([1; 16]),
                Timestamp(50),
                claim("late", "n-late", b"secret"),
            ),
            (
                DocumentId::from_bytes([2; 16]),
                Timestamp(10),
                claim("wrong", "n-wrong", b"guess"),
            ),
            (
                DocumentId::from_bytes([3; 16]),
                Timestamp(20),
                claim("first", "n-first", b"secret"),
            ),
            (
                DocumentId::from_bytes([4; 16]),
                Timestamp(500),
                claim("expired", "n-exp", b"secret"),
            ),
        ];
        let m = Membership::compute(id, &charter(), &claims);
        assert!(m.is_member_node("n-first"));
        assert!(!m.is_member_node("n-late"), "the invite was used");
        assert!(!m.is_member_node("n-wrong"), "wrong secret");
        assert!(m.is_steward_node("n-s") && !m.is_steward_node("n-first"));
        let mut removed = charter();
        removed.members.get_mut("S").unwrap().removed = Some(Timestamp(5));
        let m = Membership::compute(id, &removed, &claims);
        assert!(!m.is_member_node("n-s") && m.is_removed("S"));
    }
}
