//! The community charter and join claims: who the members are.
//!
//! The **charter** is one document per community, written only by the
//! stewards' nodes: the community's name, its stewards, its members with
//! their node keys, and the invites stewards have issued (with a hash of
//! each invite's secret, never the secret).
//!
//! A **join claim** is written by a newcomer's own node: it reveals the
//! secret of an invite and names the organisation and node joining. Any
//! member can check it against the charter, so a newcomer can join while
//! every steward is offline. An invite admits one node: a steward's node
//! confirms the claim it sees (recorded in [`Invite::confirmed`]); two
//! claims on one unconfirmed invite admit neither until a steward confirms
//! one. No timestamp decides between claims.

use std::collections::BTreeMap;

use autosurgeon::{Hydrate, Reconcile};
use serde::{Deserialize, Serialize};

use crate::check::Checker;
use crate::codec::Timestamp;

/// The community's charter.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
#[serde(default, deny_unknown_fields)]
pub struct Charter {
    #[autosurgeon(missing = "Default::default")]
    pub name: String,
    /// Organisation ids of the stewards.
    #[autosurgeon(missing = "Default::default")]
    pub stewards: Vec<String>,
    /// Members by organisation id.
    #[autosurgeon(missing = "Default::default")]
    pub members: BTreeMap<String, Member>,
    /// Invites by invite id (hex).
    #[autosurgeon(missing = "Default::default")]
    pub invites: BTreeMap<String, Invite>,
}

/// A member organisation as the charter records it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
#[serde(default, deny_unknown_fields)]
pub struct Member {
    #[autosurgeon(missing = "Default::default")]
    pub name: String,
    /// Node ids (PeerIds) of its nodes.
    #[autosurgeon(missing = "Default::default")]
    pub nodes: Vec<String>,
    #[autosurgeon(missing = "Default::default")]
    pub joined: Timestamp,
    /// Set when a steward removed it; its nodes are refused from then on.
    #[autosurgeon(missing = "Default::default")]
    pub removed: Option<Timestamp>,
}

/// An invite a steward issued.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
#[serde(default, deny_unknown_fields)]
pub struct Invite {
    /// blake3 of the secret, hex.
    #[autosurgeon(missing = "Default::default")]
    pub secret_hash: String,
    #[autosurgeon(missing = "Default::default")]
    pub expires: Timestamp,
    /// The newcomer becomes a steward too.
    #[autosurgeon(missing = "Default::default")]
    pub steward: bool,
    /// For another node of an existing member organisation.
    #[autosurgeon(missing = "Default::default")]
    pub org: Option<String>,
    /// The steward organisation that issued it.
    #[autosurgeon(missing = "Default::default")]
    pub issued_by: String,
    /// The node whose claim a steward confirmed: from then on every other
    /// claim on this invite is void, whatever it says about itself.
    #[autosurgeon(missing = "Default::default")]
    pub confirmed: Option<String>,
}

/// A newcomer's claim to an invite.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
#[serde(default, deny_unknown_fields)]
pub struct Claim {
    /// The charter's id.
    #[autosurgeon(missing = "Default::default")]
    pub community: String,
    /// The invite id (hex).
    #[autosurgeon(missing = "Default::default")]
    pub invite: String,
    /// The invite's secret (hex), which proves the newcomer holds the code.
    #[autosurgeon(missing = "Default::default")]
    pub secret: String,
    /// The organisation joining (its profile id).
    #[autosurgeon(missing = "Default::default")]
    pub org: String,
    #[autosurgeon(missing = "Default::default")]
    pub org_name: String,
    /// The node joining.
    #[autosurgeon(missing = "Default::default")]
    pub node: String,
}

impl Charter {
    pub(crate) fn check(&mut self, c: &mut Checker) {
        c.line("name", &mut self.name, true);
        if self.stewards.is_empty() {
            c.problem("stewards", "a community needs at least one steward");
        }
    }
}

impl Claim {
    pub(crate) fn check(&mut self, c: &mut Checker) {
        for (field, value) in [
            ("community", &mut self.community),
            ("invite", &mut self.invite),
            ("secret", &mut self.secret),
            ("org", &mut self.org),
            ("node", &mut self.node),
        ] {
            c.line(field, value, true);
        }
    }
}
