//! [`Node`]: one organisation's local node, the API every command uses.
//!
//! A node is a home directory holding `node.key` (the Ed25519 identity) and
//! `convene.db` (the store). Opening it is cheap, so each CLI command opens
//! its own [`Node`]; the daemon holds one for as long as it runs. Every
//! local write is an automerge change made with the node's actor id (its
//! public key), signed, and stored in one transaction with the refreshed
//! indexes (see [`crate::store`]).

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use automerge::transaction::CommitOptions;
use automerge::{ActorId, Automerge, ReadDoc};
use convene_model::{
    Body, DataPoint, DocumentId, Entry, EntryInput, Kind, Meta, OrgId, Organisation, SCHEMA,
    Status, Timestamp, Visibility, Vocabularies,
};

use crate::error::NodeError;
use crate::store::{Filter, Hit, Indexed, Listed, Resolve, Store, StoreError};
use crate::trust::{Identity, NodeId, SignedChange, Tombstone};

/// File names inside a home.
pub const KEY_FILE: &str = "node.key";
pub const DB_FILE: &str = "convene.db";
const META_ORG: &str = "org";

/// What `convene init` needs to know.
#[derive(Debug, Clone)]
pub struct InitOptions {
    pub org: String,
    /// A sector slug or label (`nhs-trust`, `Council`, `vcse` …).
    pub sector: String,
    pub place: Option<String>,
}

/// A change to an existing entry.
#[derive(Debug, Clone)]
pub enum Edit {
    /// `FIELD=VALUE` pairs; `visibility` and `status` set metadata.
    Set(Vec<(String, String)>),
    /// Replace the body with the contents of a file.
    Replace(Box<EntryInput>),
    /// Add a dated value to a project's measure.
    AddDataPoint { measure: String, point: DataPoint },
    /// Let another organisation's nodes edit the entry (owner only).
    AddEditor(OrgId),
    /// Take that back (owner only).
    RemoveEditor(OrgId),
}

/// One change in an entry's history.
#[derive(Debug, Clone)]
pub struct HistoryItem {
    pub hash: String,
    /// When the author made it (their clock).
    pub time: Timestamp,
    pub signer: Option<NodeId>,
    /// The signer's organisation id and name, when known.
    pub signer_org: Option<(String, Option<String>)>,
    pub message: Option<String>,
}

/// An entry's history as `show --json --history` and the API give it.
pub fn history_json(items: &[HistoryItem]) -> serde_json::Value {
    serde_json::Value::Array(
        items
            .iter()
            .map(|h| {
                serde_json::json!({
                    "hash": h.hash,
                    "time": h.time.to_string(),
                    "signer": h.signer.map(|s| s.to_string()),
                    "signer_org": h.signer_org.as_ref().map(|(id, _)| id.clone()),
                    "signer_org_name": h.signer_org.as_ref().and_then(|(_, n)| n.clone()),
                    "message": h.message,
                })
            })
            .collect(),
    )
}

/// Told how far a long operation has got, as (done, total) in the
/// operation's own unit (entries, documents, bytes): called from the
/// working thread, often, so it should be cheap (a progress bar).
pub type OnProgress<'a> = &'a mut dyn FnMut(u64, u64);

/// What happened to a batch of changes received from elsewhere.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Changes verified and stored.
    pub applied: usize,
    /// Changes this node already had.
    pub already_had: usize,
    /// Times a valid change was set aside because what judges it (its
    /// earlier changes, its owner's profile, its signer's join claim) has
    /// not arrived yet. Set-aside changes wait in the store and are tried
    /// again when that arrives; one set aside twice counts twice.
    pub waiting: usize,
    /// The changes set aside, as (document, change hash), once for each
    /// time (bounded by the waiting room's limits).
    pub set_aside: Vec<(DocumentId, [u8; 32])>,
    /// Changes refused, with the reason.
    pub rejected: Vec<Rejection>,
    /// Documents whose state changed.
    pub changed: Vec<DocumentId>,
    /// Changes refused because their entry was erased here.
    pub refused_erased: usize,
    /// Entries erased by tombstones received in this batch.
    pub erased: Vec<DocumentId>,
}

/// A refused change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub doc: DocumentId,
    pub hash: [u8; 32],
    pub signer: Option<NodeId>,
    pub reason: String,
}

/// Whether a write changed anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Changed,
    Unchanged,
}

impl Outcome {
    fn of<T>(written: &Option<T>) -> Self {
        if written.is_some() {
            Outcome::Changed
        } else {
            Outcome::Unchanged
        }
    }
}

/// Who sent changes that were not received from a peer: this node's own
/// callers (tests, tools) and bundles. Each has its own share of the
/// waiting room, like every peer.
pub(crate) const LOCAL_SENDER: &str = "local";
pub(crate) const BUNDLE_SENDER: &str = "bundle";

/// An opened node.
#[derive(Debug)]
pub struct Node {
    home: PathBuf,
    identity: Identity,
    org: OrgId,
    store: Store,
    vocab: Vocabularies,
}

/// Creates a home (and missing parents). A new home is private to its
/// user: it holds the key and entries that are not for everyone.
pub(crate) fn create_home(home: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(home)
}

/// The mode of every file Convene writes that holds the key or personal
/// data (database and its WAL/SHM, lock, backups, bundles, exports): its
/// owner's only, whatever the umask or the mode of the folder it is in.
pub const PRIVATE_FILE_MODE: u32 = 0o600;
/// The mode of the folders Convene creates for such files.
pub const PRIVATE_DIR_MODE: u32 = 0o700;

/// Opens `path` for writing, creating it readable by its owner only
/// ([`PRIVATE_FILE_MODE`]) and emptying it. A file that already exists is
/// tightened to that mode *before* it is emptied and written, so nothing
/// written through the handle is ever readable by others. Every file the
/// CLI exports goes through here.
pub fn create_private_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // The umask can only take bits away from 0600.
        options.mode(PRIVATE_FILE_MODE);
    }
    let file = options.open(path)?;
    tighten_open(&file)?;
    file.set_len(0)?;
    Ok(file)
}

/// Creates the folder `dir` (and missing parents) readable by its owner
/// only ([`PRIVATE_DIR_MODE`]). An existing folder keeps its mode: it is
/// the user's (a website's source folder, say); the files written into it
/// are private anyway.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(PRIVATE_DIR_MODE);
    }
    builder.create(dir)
}

#[cfg(unix)]
fn tighten_open(file: &std::fs::File) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = file.metadata()?.permissions().mode() & 0o777;
    if mode & !PRIVATE_FILE_MODE != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(mode & PRIVATE_FILE_MODE))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn tighten_open(_: &std::fs::File) -> std::io::Result<()> {
    Ok(())
}

/// Takes group and other permissions off an existing file (homes made by
/// older versions, a file copied in by hand). Returns whether it changed
/// anything; a missing file is left missing.
pub fn make_private(path: &Path) -> std::io::Result<bool> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = match std::fs::symlink_metadata(path) {
            Ok(m) if m.is_file() => m.permissions().mode() & 0o777,
            Ok(_) => return Ok(false),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        if mode & !PRIVATE_FILE_MODE == 0 {
            return Ok(false);
        }
        std::fs::set_permissions(
            path,
            std::fs::Permissions::from_mode(mode & PRIVATE_FILE_MODE),
        )?;
        Ok(true)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(false)
    }
}

pub(crate) fn now() -> Timestamp {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    Timestamp(ms)
}

impl Node {
    /// Creates a node in `home`: key, database and the organisation's
    /// profile. Refuses, changing nothing, if `home` already holds a node or
    /// the options are invalid.
    pub fn init(home: &Path, opts: &InitOptions) -> Result<Self, NodeError> {
        let key_path = home.join(KEY_FILE);
        let db_path = home.join(DB_FILE);
        Self::refuse_existing(home)?;
        let vocab = Vocabularies::default();
        let identity = Identity::generate();
        let mut profile = Body::Organisation(Organisation {
            name: opts.org.clone(),
            sector: opts.sector.clone(),
            place: opts.place.clone().unwrap_or_default(),
            nodes: vec![identity.node_id().to_string()],
            ..Organisation::default()
        });
        profile.check(&vocab)?;

        create_home(home).map_err(|source| NodeError::CreateHome {
            path: home.to_path_buf(),
            source,
        })?;
        let created = (|| {
            identity.save_new(&key_path)?;
            let store = Store::create(&db_path)?;
            let id = crate::trust::org_id(&identity.public_bytes());
            let mut node = Self {
                home: home.to_path_buf(),
                identity,
                org: OrgId(id),
                store,
                vocab,
            };
            node.store
                .write(|w| w.set_meta(META_ORG, &id.to_string()))?;
            let entry = node.new_entry(profile, Visibility::Community, Status::Published);
            let identity = node.identity.clone();
            node.store
                .write(|w| create_in(w, &identity, Some(id), entry))?;
            Ok(node)
        })();
        if created.is_err() {
            remove_node_files(home);
        }
        created
    }

    /// Creates another node of an existing organisation in `home` (a key and
    /// an empty database; the organisation's profile and entries arrive by
    /// sync). Refuses, changing nothing, if `home` already holds a node.
    pub fn init_joining(home: &Path, org: OrgId) -> Result<Self, NodeError> {
        Self::refuse_existing(home)?;
        let identity = Identity::generate();
        create_home(home).map_err(|source| NodeError::CreateHome {
            path: home.to_path_buf(),
            source,
        })?;
        let created = (|| {
            identity.save_new(&home.join(KEY_FILE))?;
            let mut store = Store::create(&home.join(DB_FILE))?;
            store.write(|w| w.set_meta(META_ORG, &org.to_string()))?;
            Ok(Self {
                home: home.to_path_buf(),
                identity,
                org,
                store,
                vocab: Vocabularies::default(),
            })
        })();
        if created.is_err() {
            remove_node_files(home);
        }
        created
    }

    fn refuse_existing(home: &Path) -> Result<(), NodeError> {
        let key_path = home.join(KEY_FILE);
        if key_path.exists() || home.join(DB_FILE).exists() {
            let node = Identity::load(&key_path)
                .map(|i| format!("node {}", i.node_id()))
                .unwrap_or_else(|_| "a partial or damaged node".into());
            return Err(NodeError::AlreadyInitialised {
                path: home.to_path_buf(),
                node,
            });
        }
        Ok(())
    }

    /// Opens the node in `home`.
    pub fn open(home: &Path) -> Result<Self, NodeError> {
        let key_path = home.join(KEY_FILE);
        let db_path = home.join(DB_FILE);
        if !key_path.exists() || !db_path.exists() {
            return Err(NodeError::NotInitialised(home.to_path_buf()));
        }
        // Homes made before files were created private: tighten the key
        // (the database and its WAL/SHM are tightened by `Store::open`).
        if let Err(e) = make_private(&key_path) {
            tracing::warn!(path = %key_path.display(), "cannot make the key private: {e}");
        }
        let identity = Identity::load(&key_path)?;
        let store = Store::open(&db_path)?;
        let org = store
            .meta(META_ORG)?
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| NodeError::NotInitialised(home.to_path_buf()))?;
        Ok(Self {
            home: home.to_path_buf(),
            identity,
            org,
            store,
            vocab: Vocabularies::default(),
        })
    }

    pub fn home(&self) -> &Path {
        &self.home
    }

    pub fn node_id(&self) -> NodeId {
        self.identity.node_id()
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// This node's organisation.
    pub fn org(&self) -> OrgId {
        self.org
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub(crate) fn set_org(&mut self, org: OrgId) {
        self.org = org;
    }

    pub fn store_mut(&mut self) -> &mut Store {
        &mut self.store
    }

    pub fn vocab(&self) -> &Vocabularies {
        &self.vocab
    }

    /// The name of an organisation, if its profile is here.
    pub fn org_name(&self, org: &OrgId) -> Option<String> {
        match self.get(org.0) {
            Ok(Entry {
                body: Body::Organisation(o),
                ..
            }) => Some(o.name),
            _ => None,
        }
    }

    /// Publishes a new entry owned by this node's organisation.
    pub fn publish(&mut self, input: EntryInput) -> Result<DocumentId, NodeError> {
        let entry = self.prepare(input)?;
        let identity = self.identity.clone();
        self.store.write(|w| create_in(w, &identity, None, entry))
    }

    /// Validates an input and makes the entry a publish would write.
    fn prepare(&self, input: EntryInput) -> Result<Entry, NodeError> {
        let mut body = input.body;
        if matches!(
            body.kind(),
            Kind::Organisation | Kind::Message | Kind::Response
        ) {
            return Err(NodeError::NotPublishable(body.kind()));
        }
        if body.kind() == Kind::Round && !self.is_steward(&self.org) {
            return Err(NodeError::NotSteward);
        }
        if let Body::Contact(c) = &mut body
            && let Some(consent) = &mut c.consent
        {
            consent.recorded_by.get_or_insert(self.org);
            if consent.recorded_at.millis() == 0 {
                consent.recorded_at = now();
            }
        }
        body.check(&self.vocab)?;
        let visibility = input.visibility.unwrap_or_default();
        Ok(self.new_entry(body, visibility, input.status.unwrap_or_default()))
    }

    /// A new entry owned by this node's organisation; its id is set when
    /// its first change is made.
    pub(crate) fn new_entry(&self, body: Body, visibility: Visibility, status: Status) -> Entry {
        let at = now();
        Entry {
            id: DocumentId::from_bytes([0; 16]),
            meta: Meta {
                kind: body.kind(),
                schema: SCHEMA,
                owner: self.org,
                visibility,
                editors: Vec::new(),
                created: at,
                updated: at,
                status,
            },
            body,
        }
    }

    /// Publishes many entries in one transaction: all of them or, if any
    /// is invalid, none (the error names the first bad one by position).
    pub fn publish_batch(&mut self, inputs: Vec<EntryInput>) -> Result<Vec<DocumentId>, NodeError> {
        self.publish_batch_with(inputs, &mut |_, _| {})
    }

    /// [`Node::publish_batch`], telling `on` how many entries are written
    /// so far (the last call is made before the transaction commits).
    pub fn publish_batch_with(
        &mut self,
        inputs: Vec<EntryInput>,
        on: OnProgress<'_>,
    ) -> Result<Vec<DocumentId>, NodeError> {
        let total = inputs.len() as u64;
        let mut entries = Vec::with_capacity(inputs.len());
        for (i, input) in inputs.into_iter().enumerate() {
            let entry = self.prepare(input).map_err(|e| NodeError::InBatch {
                index: i,
                error: Box::new(e),
            })?;
            entries.push(entry);
        }
        let identity = self.identity.clone();
        self.store.write(|w| {
            entries
                .into_iter()
                .enumerate()
                .map(|(i, entry)| {
                    let id = create_in(w, &identity, None, entry);
                    on(i as u64 + 1, total);
                    id
                })
                .collect()
        })
    }

    /// Applies `edit` to an entry this node's organisation may change.
    pub fn edit(&mut self, id: DocumentId, edit: Edit) -> Result<Outcome, NodeError> {
        // Organisation names in a visibility become ids before the write.
        let edit = match edit {
            Edit::Set(pairs) => Edit::Set(
                pairs
                    .into_iter()
                    .map(|(field, value)| {
                        if field == "visibility" {
                            Ok((field, self.parse_visibility(&value)?.to_string()))
                        } else {
                            Ok((field, value))
                        }
                    })
                    .collect::<Result<_, NodeError>>()?,
            ),
            other => other,
        };
        let vocab = self.vocab.clone();
        let org = self.org;
        let result = self.commit(id, "edit", |current| {
            let current = current.ok_or_else(|| NodeError::UnknownId(id.to_string()))?;
            let mut next = current.clone();
            may_edit(org, &current)?;
            if current.meta.status == Status::Retracted {
                return Err(NodeError::Retracted(id));
            }
            match edit {
                Edit::Set(pairs) => {
                    for (field, value) in pairs {
                        match field.as_str() {
                            "visibility" => {
                                next.meta.visibility = value.parse().map_err(|e: convene_model::VisibilityError| {
                                    convene_model::InputError::Field {
                                        field,
                                        message: e.to_string(),
                                    }
                                })?
                            }
                            "status" => {
                                next.meta.status = match value.parse() {
                                    Ok(Status::Retracted) | Err(_) => {
                                        return Err(convene_model::InputError::Field {
                                            field,
                                            message: format!(
                                                "{value:?}: set draft or published here; use `convene retract` to retract"
                                            ),
                                        }
                                        .into());
                                    }
                                    Ok(s) => s,
                                }
                            }
                            _ => next.body.set_field(&field, &value)?,
                        }
                    }
                }
                Edit::Replace(input) => {
                    if input.body.kind() != current.meta.kind {
                        return Err(convene_model::InputError::KindMismatch {
                            expected: current.meta.kind,
                            found: input.body.kind().to_string(),
                        }
                        .into());
                    }
                    next.body = input.body;
                    if let Some(v) = input.visibility {
                        next.meta.visibility = v;
                    }
                    if let Some(s) = input.status.filter(|s| *s != Status::Retracted) {
                        next.meta.status = s;
                    }
                }
                Edit::AddEditor(editor) | Edit::RemoveEditor(editor) => {
                    if current.meta.owner != org {
                        return Err(NodeError::NotOwner {
                            id,
                            owner: current.meta.owner.to_string(),
                        });
                    }
                    if matches!(edit, Edit::AddEditor(_)) {
                        if editor != org && !next.meta.editors.contains(&editor) {
                            next.meta.editors.push(editor);
                        }
                    } else {
                        next.meta.editors.retain(|e| *e != editor);
                    }
                }
                Edit::AddDataPoint { measure, point } => {
                    let Body::Project(p) = &mut next.body else {
                        return Err(NodeError::UnknownMeasure {
                            id,
                            measure,
                            known: format!("none: this is a {}", current.meta.kind),
                        });
                    };
                    let known = p
                        .measures
                        .iter()
                        .map(|m| m.name.clone())
                        .collect::<Vec<_>>()
                        .join(", ");
                    let m = p.measure_mut(&measure).ok_or(NodeError::UnknownMeasure {
                        id,
                        measure: measure.clone(),
                        known,
                    })?;
                    m.data.push(point);
                }
            }
            next.body.check(&vocab)?;
            if next == current {
                return Ok(None);
            }
            next.meta.updated = now();
            Ok(Some(next))
        });
        let result = result.map_err(|e| self.with_owner_name(e))?;
        Ok(Outcome::of(&result))
    }

    /// Marks an entry as retracted. It stays, with its history.
    pub fn retract(&mut self, id: DocumentId) -> Result<Outcome, NodeError> {
        let org = self.org;
        let result = self.commit(id, "retract", |current| {
            let current = current.ok_or_else(|| NodeError::UnknownId(id.to_string()))?;
            may_edit(org, &current)?;
            if current.meta.status == Status::Retracted {
                return Ok(None);
            }
            let mut next = current;
            next.meta.status = Status::Retracted;
            next.meta.updated = now();
            Ok(Some(next))
        });
        let result = result.map_err(|e| self.with_owner_name(e))?;
        Ok(Outcome::of(&result))
    }

    /// The write path shared by every local change: inside one store
    /// transaction, load the committed state, let `f` decide the new entry,
    /// write it as one signed change and refresh the indexes. `f` returning
    /// `None` (or an entry equal to the document) writes nothing.
    pub(crate) fn commit(
        &mut self,
        id: DocumentId,
        message: &str,
        f: impl FnOnce(Option<Entry>) -> Result<Option<Entry>, NodeError>,
    ) -> Result<Option<Indexed>, NodeError> {
        let identity = self.identity.clone();
        self.store
            .write(|w| commit_in(w, &identity, id, message, f))
    }

    /// Verifies, checks the permission of, and stores changes received
    /// from a peer (or a bundle); see the `apply` module. A change that fails
    /// is rejected, logged and never stored, so it can never be relayed.
    pub fn apply(&mut self, changes: Vec<SignedChange>) -> Result<ApplyReport, NodeError> {
        self.apply_with_tombstones(changes, Vec::new())
    }

    /// [`Node::apply`] with tombstones: each is verified and, if its signer
    /// may erase the entry, the entry is erased here too.
    pub fn apply_with_tombstones(
        &mut self,
        changes: Vec<SignedChange>,
        tombstones: Vec<Tombstone>,
    ) -> Result<ApplyReport, NodeError> {
        self.apply_with_progress(changes, tombstones, &mut |_, _| {})
    }

    /// [`Node::apply_with_tombstones`], telling `on` how many of the
    /// documents the changes belong to are done.
    pub fn apply_with_progress(
        &mut self,
        changes: Vec<SignedChange>,
        tombstones: Vec<Tombstone>,
        on: OnProgress<'_>,
    ) -> Result<ApplyReport, NodeError> {
        self.apply_verified_from(
            LOCAL_SENDER,
            crate::apply::verify_all(changes),
            tombstones,
            on,
        )
    }

    /// [`Node::apply_with_tombstones`] for changes received from peer
    /// `from`: what cannot be judged yet waits within that peer's share of
    /// the waiting room, so one peer cannot crowd out the others.
    pub fn apply_from(
        &mut self,
        from: &NodeId,
        changes: Vec<SignedChange>,
        tombstones: Vec<Tombstone>,
    ) -> Result<ApplyReport, NodeError> {
        let from = from.to_string();
        self.apply_verified_from(
            &from,
            crate::apply::verify_all(changes),
            tombstones,
            &mut |_, _| {},
        )
    }

    /// [`Node::apply_with_progress`] for changes already verified, read
    /// from a bundle.
    pub(crate) fn apply_verified(
        &mut self,
        changes: crate::apply::Verified,
        tombstones: Vec<Tombstone>,
        on: OnProgress<'_>,
    ) -> Result<ApplyReport, NodeError> {
        self.apply_verified_from(BUNDLE_SENDER, changes, tombstones, on)
    }

    fn apply_verified_from(
        &mut self,
        from: &str,
        changes: crate::apply::Verified,
        tombstones: Vec<Tombstone>,
        on: OnProgress<'_>,
    ) -> Result<ApplyReport, NodeError> {
        // The files of entries a tombstone may erase, read while they are here.
        let files: Vec<(DocumentId, Vec<String>)> = tombstones
            .iter()
            .map(|t| (t.doc, self.hashes_of(t.doc)))
            .filter(|(_, h)| !h.is_empty())
            .collect();
        let report = crate::apply::apply(
            &mut self.store,
            from,
            changes,
            tombstones,
            now().millis(),
            on,
        )?;
        if !report.erased.is_empty() {
            self.store.scrub()?;
            let erased: Vec<String> = files
                .into_iter()
                .filter(|(doc, _)| report.erased.contains(doc))
                .flat_map(|(_, h)| h)
                .collect();
            self.drop_unused_files(&erased)?;
        }
        Ok(report)
    }

    /// Erases an entry for good: a signed tombstone replaces it, every
    /// trace of it is deleted from this node's files, and every node that
    /// receives the tombstone does the same and refuses the entry after.
    /// Only the owner organisation's nodes may erase an entry, and a
    /// steward's nodes any contact.
    pub fn erase(&mut self, id: DocumentId, reason: &str) -> Result<(), NodeError> {
        let entry = self.get(id)?;
        let steward_erasing_contact = entry.meta.kind == Kind::Contact
            && self
                .membership()
                .is_some_and(|m| m.is_steward_node(&self.node_id().to_string()));
        if entry.meta.owner != self.org && !steward_erasing_contact {
            return Err(self.with_owner_name(NodeError::NotOwner {
                id,
                owner: entry.meta.owner.to_string(),
            }));
        }
        let files = self.hashes_of(id);
        let at = now().millis();
        let tombstone = Tombstone::sign(&self.identity, id, at, reason);
        let node = self.node_id().to_string();
        self.store.write(|w| {
            w.erase_doc(id)?;
            w.put_tombstone(&crate::store::StoredTombstone {
                tombstone,
                owner: entry.meta.owner.to_string(),
                visibility: entry.meta.visibility.to_string(),
                verified: true,
            })?;
            w.log(
                at,
                &crate::store::LogEntry {
                    at,
                    event: "erased".into(),
                    security: false,
                    doc: Some(id.to_string()),
                    signer: Some(node),
                    detail: reason.to_string(),
                },
            )
        })?;
        self.store.scrub()?;
        // Its files' bytes go too, unless another entry here still uses them.
        self.drop_unused_files(&files)?;
        Ok(())
    }

    /// Lists another node in this organisation's profile, so that its
    /// changes to the organisation's entries are accepted everywhere.
    pub fn authorize_node(&mut self, node: NodeId) -> Result<Outcome, NodeError> {
        let org = self.org;
        let node = node.to_string();
        let result = self.commit(org.0, "add node", |current| {
            let mut next = current.ok_or_else(|| NodeError::UnknownId(org.to_string()))?;
            let Body::Organisation(profile) = &mut next.body else {
                return Err(NodeError::InvalidDocument {
                    id: org.0,
                    problem: "this node's organisation id is not a profile".into(),
                });
            };
            if profile.nodes.contains(&node) {
                return Ok(None);
            }
            profile.nodes.push(node);
            next.meta.updated = now();
            Ok(Some(next))
        })?;
        Ok(Outcome::of(&result))
    }

    /// Finds the entry whose id starts with `prefix`.
    pub fn resolve(&self, prefix: &str) -> Result<DocumentId, NodeError> {
        match self.store.resolve(prefix.trim())? {
            Resolve::One(id) => Ok(id),
            Resolve::None => {
                // A whole id may name an entry that was erased here.
                if let Ok(id) = prefix.trim().parse::<DocumentId>()
                    && self.store.tombstone(id)?.is_some_and(|t| t.verified)
                {
                    return Err(NodeError::Erased(id));
                }
                Err(NodeError::UnknownId(prefix.to_string()))
            }
            Resolve::Many(matches) => Err(NodeError::AmbiguousId {
                prefix: prefix.to_string(),
                matches,
            }),
        }
    }

    /// Reads a visibility as people write it: `community`, `organisation`,
    /// or a comma-separated list of organisations by name or id.
    pub fn parse_visibility(&self, s: &str) -> Result<Visibility, NodeError> {
        if let Ok(v @ (Visibility::Community | Visibility::Organisation)) = s.parse::<Visibility>()
        {
            return Ok(v);
        }
        let mut orgs = s
            .split(',')
            .map(|part| self.resolve_org(part))
            .collect::<Result<Vec<_>, _>>()?;
        orgs.sort();
        orgs.dedup();
        Ok(Visibility::Orgs(orgs))
    }

    /// Finds an organisation by id prefix or by name (case-insensitive).
    pub fn resolve_org(&self, name_or_id: &str) -> Result<OrgId, NodeError> {
        let orgs = self.store.list(&Filter {
            kind: Some(Kind::Organisation),
            include_retracted: true,
            ..Filter::default()
        })?;
        let wanted = name_or_id.trim().to_lowercase();
        if let Some(o) = orgs.iter().find(|o| o.title.to_lowercase() == wanted) {
            return Ok(OrgId(o.id));
        }
        let by_id: Vec<_> = orgs
            .iter()
            .filter(|o| o.id.to_string().starts_with(name_or_id.trim()))
            .collect();
        match by_id.as_slice() {
            [one] => Ok(OrgId(one.id)),
            _ => Err(NodeError::UnknownOrg(name_or_id.to_string())),
        }
    }

    /// The current state of an entry.
    pub fn get(&self, id: DocumentId) -> Result<Entry, NodeError> {
        let Some(state) = self.store.load(id)? else {
            return Err(match self.store.tombstone(id)? {
                Some(t) if t.verified => NodeError::Erased(id),
                _ => NodeError::UnknownId(id.to_string()),
            });
        };
        Entry::from_doc(id, &state).map_err(|e| NodeError::InvalidDocument {
            id,
            problem: e.to_string(),
        })
    }

    /// Every change of an entry, oldest first, with who signed it.
    pub fn history(&self, id: DocumentId) -> Result<Vec<HistoryItem>, NodeError> {
        let changes = self.store.changes(id)?;
        let mut items = Vec::with_capacity(changes.len());
        for stored in changes {
            let decoded = automerge::Change::try_from(stored.change.bytes.as_slice()).ok();
            let signer = stored.change.signer_id();
            let signer_org = match signer {
                Some(s) => self.store.org_of_node(&s.to_string())?.map(|org| {
                    let name = org.parse().ok().and_then(|o: OrgId| self.org_name(&o));
                    (org, name)
                }),
                None => None,
            };
            items.push(HistoryItem {
                hash: hex(&stored.change.hash),
                time: Timestamp(
                    decoded
                        .as_ref()
                        .map_or(stored.received, |c| c.timestamp() * 1000),
                ),
                signer,
                signer_org,
                message: decoded.and_then(|c| c.message().map(str::to_string)),
            });
        }
        items.sort_by_key(|i| i.time);
        Ok(items)
    }

    pub fn list(&self, filter: &Filter) -> Result<Vec<Listed>, NodeError> {
        Ok(self.store.list(filter)?)
    }

    /// Full-text search; `None` when the query has no searchable word.
    pub fn search(&self, query: &str, limit: usize) -> Result<Option<Vec<Hit>>, NodeError> {
        Ok(self.store.search(query, limit)?)
    }

    /// How many entries match `filter` (its limit and offset aside).
    pub fn count(&self, filter: &Filter) -> Result<usize, NodeError> {
        Ok(self.store.count(filter)?)
    }

    /// One page of a search and the number of hits in all; `None` when the
    /// query has no searchable word.
    pub fn search_page(
        &self,
        query: &str,
        offset: usize,
        limit: usize,
    ) -> Result<Option<(Vec<Hit>, usize)>, NodeError> {
        let Some(total) = self.store.search_count(query)? else {
            return Ok(None);
        };
        let hits = self
            .store
            .search_from(query, offset, limit)?
            .unwrap_or_default();
        Ok(Some((hits, total)))
    }

    /// Whether this node's organisation may change `entry`: its owner, or
    /// an organisation the owner named as co-editor. Pages offer edit
    /// buttons only then; [`Node::edit`] checks again.
    pub fn may_change(&self, entry: &Entry) -> bool {
        may_edit(self.org, entry).is_ok()
    }

    /// `NotOwner` with the owner's name instead of its id, where known.
    pub(crate) fn with_owner_name(&self, e: NodeError) -> NodeError {
        match e {
            NodeError::NotOwner { id, owner } => {
                let owner = owner
                    .parse::<OrgId>()
                    .ok()
                    .and_then(|o| self.org_name(&o))
                    .unwrap_or(owner);
                NodeError::NotOwner { id, owner }
            }
            other => other,
        }
    }
}

/// Creates a document inside an open write transaction. Its id is
/// self-certifying, so no one can make a different document under it: an
/// organisation profile's is [`crate::trust::org_id`] of its first node's
/// key (`id` must be that), any other entry's is
/// [`crate::trust::entry_id`] of its first change.
pub(crate) fn create_in(
    w: &mut crate::store::Writer<'_>,
    identity: &Identity,
    id: Option<DocumentId>,
    mut entry: Entry,
) -> Result<DocumentId, NodeError> {
    let mut state = Automerge::new();
    state.set_actor(ActorId::from(identity.public_bytes().as_slice()));
    let at = now();
    let mut tx = state.transaction();
    entry.write(&mut tx)?;
    // A random word in the message keeps two identical entries made in the
    // same millisecond apart.
    let nonce: u64 = rand::random();
    let (hash, _) = tx.commit_with(
        CommitOptions::default()
            .with_message(format!("create {} ({nonce:016x})", entry.meta.kind))
            .with_time(at.millis() / 1000),
    );
    let hash = hash.ok_or_else(|| StoreError::BadDocument {
        id: entry.id,
        detail: "a new entry produced no change".into(),
    })?;
    let id = id.unwrap_or_else(|| crate::trust::entry_id(&hash.0));
    entry.id = id;
    store_local(w, identity, id, &state, hash, at)?;
    Ok(id)
}

/// Signs the change this node just made to `state` and stores it.
fn store_local(
    w: &mut crate::store::Writer<'_>,
    identity: &Identity,
    id: DocumentId,
    state: &Automerge,
    hash: automerge::ChangeHash,
    at: Timestamp,
) -> Result<Indexed, NodeError> {
    let change = state
        .get_change_by_hash(&hash)
        .ok_or_else(|| StoreError::BadDocument {
            id,
            detail: "the change just made is missing".into(),
        })?;
    let signed = SignedChange::sign(identity, id, &change);
    Ok(w.put(id, state, &[signed], at.millis())?)
}

/// One local change inside an open write transaction: load the committed
/// state, let `f` decide the new entry, write it as one signed change and
/// refresh the indexes. `f` returning `None` (or an entry equal to the
/// document) writes nothing.
fn commit_in(
    w: &mut crate::store::Writer<'_>,
    identity: &Identity,
    id: DocumentId,
    message: &str,
    f: impl FnOnce(Option<Entry>) -> Result<Option<Entry>, NodeError>,
) -> Result<Option<Indexed>, NodeError> {
    let existing = w.load(id)?;
    let current = match &existing {
        Some(state) => {
            Some(
                Entry::from_doc(id, state).map_err(|e| NodeError::InvalidDocument {
                    id,
                    problem: e.to_string(),
                })?,
            )
        }
        None => None,
    };
    let Some(next) = f(current)? else {
        return Ok(None);
    };
    let mut state = existing.unwrap_or_else(Automerge::new);
    // The actor is the node's public key: every operation names its node.
    state.set_actor(ActorId::from(identity.public_bytes().as_slice()));
    let at = now();
    let mut tx = state.transaction();
    next.write(&mut tx)?;
    let (hash, _) = tx.commit_with(
        CommitOptions::default()
            .with_message(message)
            .with_time(at.millis() / 1000),
    );
    let Some(hash) = hash else {
        return Ok(None);
    };
    store_local(w, identity, id, &state, hash, at).map(Some)
}

/// Leaves a home as it was before a failed init: no half-made node.
fn remove_node_files(home: &Path) {
    for f in [KEY_FILE, DB_FILE, "convene.db-wal", "convene.db-shm"] {
        let _ = std::fs::remove_file(home.join(f));
    }
}

pub(crate) fn may_edit(org: OrgId, entry: &Entry) -> Result<(), NodeError> {
    if entry.meta.owner == org || entry.meta.editors.contains(&org) {
        Ok(())
    } else {
        Err(NodeError::NotOwner {
            id: entry.id,
            owner: entry.meta.owner.to_string(),
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
