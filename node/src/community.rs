//! Running a community: creating its charter, inviting, joining, removing
//! members and naming stewards. Every change to the charter is an ordinary
//! signed change that only stewards' nodes may make (see `apply`); joining
//! is a claim the newcomer signs itself (see [`crate::trust::membership`]).

use convene_model::{
    Body, Charter, Claim, DocumentId, Entry, Invite, Member, OrgId, Status, Visibility,
};
use serde::{Deserialize, Serialize};

use crate::error::NodeError;
use crate::node::{Node, create_in, now};
use crate::store::LogEntry;
use crate::trust::SignedChange;
use crate::trust::membership::{self, COMMUNITY_META, Membership, hex, secret_hash};

/// What an invite code carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteCode {
    /// The community's charter id.
    pub community: [u8; 16],
    pub invite: [u8; 16],
    pub secret: [u8; 16],
    /// For another node of this member organisation.
    pub org: Option<[u8; 16]>,
    /// Addresses of member nodes to reach (several, so any one will do).
    pub addrs: Vec<String>,
}

const CODE_PREFIX: &str = "convene-invite-";

impl InviteCode {
    /// One line, safe to paste into an email.
    pub fn encode(&self) -> String {
        let bytes = postcard::to_stdvec(self).expect("invite codes encode");
        format!("{CODE_PREFIX}{}", bs58::encode(bytes).into_string())
    }

    pub fn decode(s: &str) -> Result<Self, NodeError> {
        let body = s
            .trim()
            .strip_prefix(CODE_PREFIX)
            .ok_or_else(|| NodeError::BadInvite(format!("it should start with {CODE_PREFIX}")))?;
        let bytes = bs58::decode(body)
            .into_vec()
            .map_err(|_| NodeError::BadInvite("it is damaged (not base58)".into()))?;
        postcard::from_bytes(&bytes)
            .map_err(|_| NodeError::BadInvite("it is damaged or incomplete".into()))
    }

    pub fn community_id(&self) -> DocumentId {
        DocumentId::from_bytes(self.community)
    }
}

impl Node {
    /// The community this node is in, as it knows it.
    pub fn membership(&self) -> Option<Membership> {
        membership::load(self.store())
    }

    /// "member", "former member" or "not a member" of an organisation, or
    /// `None` when this node is not in a community.
    pub fn org_standing(&self, org: &OrgId) -> Option<&'static str> {
        let m = self.membership()?;
        Some(match m.members.get(&org.to_string()) {
            Some(info) if info.removed.is_some() => "former member",
            Some(_) => "member",
            None => "not a member",
        })
    }

    /// Writes to the log what changed in the community between two views
    /// of it (when this node learns of joins, removals or steward changes
    /// made elsewhere), with the node that signed the change.
    pub fn log_membership_changes(
        &mut self,
        before: &Membership,
        after: &Membership,
    ) -> Result<(), NodeError> {
        let me = self.node_id().to_string();
        let charter_signer = self
            .store()
            .changes(after.community)?
            .last()
            .and_then(|c| c.change.signer_id())
            .map(|s| s.to_string());
        let mut events = Vec::new();
        for (org, now_info) in &after.members {
            let was = before.members.get(org);
            let name = &now_info.name;
            match was {
                None => events.push((
                    "joined",
                    now_info.nodes.iter().next().cloned(),
                    format!("{name} joined the community"),
                )),
                Some(w) => {
                    if w.removed.is_none() && now_info.removed.is_some() {
                        events.push((
                            "removed",
                            charter_signer.clone(),
                            format!("{name} was removed from the community"),
                        ));
                    }
                    if w.steward != now_info.steward {
                        events.push((
                            if now_info.steward {
                                "steward-added"
                            } else {
                                "steward-removed"
                            },
                            charter_signer.clone(),
                            format!(
                                "{name} {} a steward",
                                if now_info.steward {
                                    "became"
                                } else {
                                    "is no longer"
                                }
                            ),
                        ));
                    }
                    for node in now_info.nodes.difference(&w.nodes) {
                        events.push((
                            "node-joined",
                            Some(node.clone()),
                            format!("a new node of {name} joined"),
                        ));
                    }
                }
            }
        }
        let mut security = Vec::new();
        for (invite, nodes) in &after.conflicts {
            if before.conflicts.get(invite) != Some(nodes) {
                security.push((
                    "invite-conflict",
                    nodes.iter().last().cloned(),
                    format!(
                        "{} nodes claimed invite {invite} ({}): none is admitted until a steward confirms one with `convene member confirm NODE`",
                        nodes.len(),
                        nodes.iter().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
        }
        for (org, was) in &before.members {
            for node in &was.nodes {
                if !after
                    .members
                    .get(org)
                    .is_some_and(|m| m.nodes.contains(node))
                {
                    security.push((
                        "membership-lost",
                        Some(node.clone()),
                        format!(
                            "node {node} of {} is no longer admitted (its invite is contested or void)",
                            was.name
                        ),
                    ));
                }
            }
        }
        let at = now().millis();
        for (event, signer, detail) in security {
            self.store_mut().log_now(&LogEntry {
                at,
                event: event.into(),
                security: true,
                doc: Some(after.community.to_string()),
                signer,
                detail,
            })?;
        }
        for (event, signer, detail) in events {
            if signer.as_deref() == Some(me.as_str()) {
                continue; // logged when this node made the change
            }
            self.store_mut().log_now(&LogEntry {
                at,
                event: event.into(),
                security: false,
                doc: Some(after.community.to_string()),
                signer,
                detail,
            })?;
        }
        Ok(())
    }

    fn log_event(&mut self, event: &str, detail: String) -> Result<(), NodeError> {
        let at = now().millis();
        let node = self.node_id().to_string();
        let entry = LogEntry {
            at,
            event: event.into(),
            security: false,
            doc: None,
            signer: Some(node),
            detail,
        };
        self.store_mut().log_now(&entry)?;
        Ok(())
    }

    /// Creates a community with this node's organisation as its first
    /// steward and member.
    pub fn create_community(&mut self, name: &str) -> Result<DocumentId, NodeError> {
        if let Some(m) = self.membership() {
            return Err(NodeError::AlreadyInCommunity(m.name));
        }
        let org = self.org().to_string();
        let org_name = self.org_name(&self.org()).unwrap_or_default();
        let at = now();
        let mut body = Body::Charter(Charter {
            name: name.to_string(),
            stewards: vec![org.clone()],
            members: [(
                org,
                Member {
                    name: org_name,
                    nodes: vec![self.node_id().to_string()],
                    joined: at,
                    removed: None,
                },
            )]
            .into(),
            invites: Default::default(),
        });
        body.check(self.vocab())?;
        let entry = self.new_entry(body, Visibility::Community, Status::Published);
        let identity = self.identity().clone();
        let id = self.store_mut().write(|w| {
            let id = create_in(w, &identity, None, entry)?;
            w.set_meta(COMMUNITY_META, &id.to_string())?;
            Ok::<_, NodeError>(id)
        })?;
        self.log_event(
            "community-created",
            format!("created the community {name:?}"),
        )?;
        Ok(id)
    }

    /// Changes the charter (stewards only).
    fn edit_charter(
        &mut self,
        message: &str,
        f: impl FnOnce(&mut Charter, &Membership) -> Result<(), NodeError>,
    ) -> Result<(), NodeError> {
        let m = self.membership().ok_or(NodeError::NotInCommunity)?;
        if !m.is_steward_node(&self.node_id().to_string()) {
            return Err(NodeError::NotSteward);
        }
        let community = m.community;
        self.commit(community, message, |current| {
            let mut next = current.ok_or(NodeError::NotInCommunity)?;
            let Body::Charter(charter) = &mut next.body else {
                return Err(NodeError::NotInCommunity);
            };
            f(charter, &m)?;
            next.meta.updated = now();
            Ok(Some(next))
        })?;
        Ok(())
    }

    /// Issues an invite (stewards only). `org`: for another node of that
    /// member organisation. `addrs`: where the newcomer can reach members.
    pub fn invite(
        &mut self,
        valid_for_ms: i64,
        steward: bool,
        org: Option<OrgId>,
        addrs: Vec<String>,
    ) -> Result<InviteCode, NodeError> {
        let invite: [u8; 16] = rand::random();
        let secret: [u8; 16] = rand::random();
        let issued_by = self.org().to_string();
        let community = self
            .membership()
            .ok_or(NodeError::NotInCommunity)?
            .community;
        if let Some(o) = &org
            && !self.membership().is_some_and(|m| {
                m.members
                    .get(&o.to_string())
                    .is_some_and(|x| x.removed.is_none())
            })
        {
            return Err(NodeError::NotAMember(
                self.org_name(o).unwrap_or_else(|| o.to_string()),
            ));
        }
        let expires = now().millis() + valid_for_ms;
        self.edit_charter("invite", |c, _| {
            c.invites.insert(
                hex(&invite),
                Invite {
                    secret_hash: secret_hash(&secret),
                    expires: convene_model::Timestamp(expires),
                    steward,
                    org: org.map(|o| o.to_string()),
                    issued_by,
                    confirmed: None,
                },
            );
            Ok(())
        })?;
        self.log_event(
            "invited",
            format!(
                "issued invite {}{}",
                hex(&invite),
                if steward { " (steward)" } else { "" }
            ),
        )?;
        Ok(InviteCode {
            community: *community.as_bytes(),
            invite,
            secret,
            org: org.map(|o| *o.0.as_bytes()),
            addrs,
        })
    }

    /// Prepares to join with `code`: records the community and signs this
    /// node's claim. For an invite of another node of an existing
    /// organisation, this node becomes a node of that organisation (its own
    /// unshared profile is dropped). Safe to repeat with the same code.
    pub fn accept_invite(&mut self, code: &InviteCode) -> Result<DocumentId, NodeError> {
        let for_org = code.org.map(|o| OrgId(DocumentId::from_bytes(o)));
        let community = code.community_id();
        if let Some(existing) = self.store().meta(COMMUNITY_META)? {
            if existing != community.to_string() {
                let name = self.membership().map(|m| m.name).unwrap_or(existing);
                return Err(NodeError::AlreadyInCommunity(name));
            }
            if let Some(claim) = self.own_claim(&hex(&code.invite))? {
                return Ok(claim);
            }
        }
        if let Some(org) = for_org
            && org != self.org()
        {
            let own = self.org().0;
            self.store_mut().write(|w| {
                w.erase_doc(own)?;
                w.set_meta("org", &org.to_string())
            })?;
            self.set_org(org);
        }
        let claim = Claim {
            community: community.to_string(),
            invite: hex(&code.invite),
            secret: hex(&code.secret),
            org: self.org().to_string(),
            org_name: self.org_name(&self.org()).unwrap_or_default(),
            node: self.node_id().to_string(),
        };
        let entry = self.new_entry(Body::Join(claim), Visibility::Community, Status::Published);
        let identity = self.identity().clone();
        let id = self.store_mut().write(|w| {
            let id = create_in(w, &identity, None, entry)?;
            w.set_meta(COMMUNITY_META, &community.to_string())?;
            Ok::<_, NodeError>(id)
        })?;
        Ok(id)
    }

    fn own_claim(&self, invite: &str) -> Result<Option<DocumentId>, NodeError> {
        for id in self.store().docs_of_kind("join")? {
            if let Ok(Entry {
                body: Body::Join(c),
                ..
            }) = self.get(id)
                && c.invite == invite
                && c.node == self.node_id().to_string()
            {
                return Ok(Some(id));
            }
        }
        Ok(None)
    }

    /// What a newcomer sends to be admitted: its claims and its
    /// organisation's profile.
    pub fn join_changes(&self) -> Result<Vec<SignedChange>, NodeError> {
        let me = self.node_id().to_string();
        let mut out = Vec::new();
        for id in self.store().docs_of_kind("join")? {
            // Only this node's own claims (after a sync it holds others').
            if matches!(self.get(id), Ok(Entry { body: Body::Join(c), .. }) if c.node == me) {
                out.extend(self.store().changes(id)?.into_iter().map(|c| c.change));
            }
        }
        out.extend(
            self.store()
                .changes(self.org().0)?
                .into_iter()
                .map(|c| c.change),
        );
        Ok(out)
    }

    /// Confirms join claims (stewards only): `(invite id, node)` pairs. From
    /// then on every other claim on those invites is void everywhere.
    /// Invites already confirmed are left as they are.
    pub fn confirm_claims(&mut self, claims: &[(String, String)]) -> Result<(), NodeError> {
        let mut confirmed = Vec::new();
        self.edit_charter("confirm join claims", |c, _| {
            for (invite, node) in claims {
                if let Some(i) = c.invites.get_mut(invite)
                    && i.confirmed.is_none()
                {
                    i.confirmed = Some(node.clone());
                    confirmed.push(format!(
                        "confirmed node {node} as the holder of invite {invite}"
                    ));
                }
            }
            Ok(())
        })?;
        for detail in confirmed {
            self.log_event("claim-confirmed", detail)?;
        }
        Ok(())
    }

    /// Settles a contested invite (stewards only): the claim by the node
    /// whose id is or starts with `node` is confirmed, every other claim on
    /// that invite is void. Returns the node's full id.
    pub fn confirm_node(&mut self, node: &str) -> Result<String, NodeError> {
        let m = self.membership().ok_or(NodeError::NotInCommunity)?;
        let mut found: Vec<(String, String)> = Vec::new();
        for (invite, nodes) in m
            .conflicts
            .iter()
            .map(|(i, n)| (i, n.iter().collect::<Vec<_>>()))
            .chain(m.unconfirmed.iter().map(|(i, n)| (i, vec![n])))
        {
            for n in nodes {
                if n.starts_with(node.trim()) && !node.trim().is_empty() {
                    found.push((invite.clone(), n.clone()));
                }
            }
        }
        match found.as_slice() {
            [] => Err(NodeError::BadInvite(format!(
                "no claim waits for confirmation from a node {node:?}: `convene member list` shows contested invites"
            ))),
            [one] => {
                let full = one.1.clone();
                self.confirm_claims(std::slice::from_ref(one))?;
                Ok(full)
            }
            _ => Err(NodeError::BadInvite(format!(
                "{node:?} names more than one claiming node: give more of its id"
            ))),
        }
    }

    /// Removes a member organisation (stewards only): its nodes are
    /// refused from then on and their new changes rejected everywhere.
    pub fn remove_member(&mut self, org: OrgId) -> Result<(), NodeError> {
        let key = org.to_string();
        let name = self.org_name(&org).unwrap_or_else(|| key.clone());
        self.edit_charter("remove member", |c, m| {
            let info = m
                .members
                .get(&key)
                .ok_or_else(|| NodeError::NotAMember(name.clone()))?;
            let member = c.members.entry(key.clone()).or_insert_with(|| Member {
                name: info.name.clone(),
                nodes: info.nodes.iter().cloned().collect(),
                joined: info.joined,
                removed: None,
            });
            member.removed = Some(now());
            c.stewards.retain(|s| *s != key);
            if c.stewards.is_empty() {
                return Err(NodeError::BadInvite(
                    "a community needs at least one steward".into(),
                ));
            }
            Ok(())
        })?;
        self.log_event("removed", format!("removed {name} from the community"))
    }

    /// Names or un-names a member organisation as steward (stewards only).
    pub fn set_steward(&mut self, org: OrgId, steward: bool) -> Result<(), NodeError> {
        let key = org.to_string();
        let name = self.org_name(&org).unwrap_or_else(|| key.clone());
        self.edit_charter(
            if steward {
                "add steward"
            } else {
                "remove steward"
            },
            |c, m| {
                let info = m
                    .members
                    .get(&key)
                    .filter(|i| i.removed.is_none())
                    .ok_or_else(|| NodeError::NotAMember(name.clone()))?;
                c.members.entry(key.clone()).or_insert_with(|| Member {
                    name: info.name.clone(),
                    nodes: info.nodes.iter().cloned().collect(),
                    joined: info.joined,
                    removed: None,
                });
                if steward {
                    if !c.stewards.contains(&key) {
                        c.stewards.push(key.clone());
                    }
                } else {
                    c.stewards.retain(|s| *s != key);
                    if c.stewards.is_empty() {
                        return Err(NodeError::NotSteward);
                    }
                }
                Ok(())
            },
        )?;
        self.log_event(
            if steward {
                "steward-added"
            } else {
                "steward-removed"
            },
            format!(
                "{} {name} as steward",
                if steward { "named" } else { "un-named" }
            ),
        )
    }
}
