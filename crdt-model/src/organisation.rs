//! An organisation's profile: the member itself.

use autosurgeon::{Hydrate, Reconcile};
use serde::{Deserialize, Serialize};

use crate::check::Checker;
use crate::vocab::Vocabularies;

/// A member organisation. Its document id is the organisation's id.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
#[serde(default, deny_unknown_fields)]
pub struct Organisation {
    #[autosurgeon(missing = "Default::default")]
    pub name: String,
    /// NHS trust, council, VCSE … (`sectors`).
    #[autosurgeon(missing = "Default::default")]
    pub sector: String,
    #[autosurgeon(missing = "Default::default")]
    pub place: String,
    #[autosurgeon(missing = "Default::default")]
    pub website: String,
    /// Node ids (libp2p PeerIds) of the organisation's nodes.
    #[autosurgeon(missing = "Default::default")]
    pub nodes: Vec<String>,
    /// Contact entry ids of people to talk to.
    #[autosurgeon(missing = "Default::default")]
    pub contacts: Vec<String>,
}

impl Organisation {
    pub(crate) fn check(&mut self, v: &Vocabularies, c: &mut Checker) {
        c.line("name", &mut self.name, true);
        if self.sector.trim().is_empty() {
            c.problem("sector", "is required");
        } else {
            c.term("sector", &v.sectors, &mut self.sector);
        }
        c.line("place", &mut self.place, false);
        c.line("website", &mut self.website, false);
        c.lines("nodes", &mut self.nodes);
        c.lines("contacts", &mut self.contacts);
    }
}
