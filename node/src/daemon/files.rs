//! The daemon's side of attachments on the network: which files the
//! entries held here use (an index kept up to date from the sync
//! catalogue), who may be sent which file, and which to fetch by itself.
//!
//! # Who is served
//!
//! A file's bytes go to a peer only if some entry held here that uses the
//! file is one that sync would send that peer: the same [`Replica::view`]
//! (membership, the entry's visibility, never a draft), and the entry not
//! erased. Anyone else, and anyone asking for a hash no entry uses, gets
//! the same [`crate::blobs::transfer::FileResponse::NotHeld`].
//!
//! # What is fetched without asking
//!
//! Files up to `[files] auto_fetch_mb` (default 20 MB) of every entry held
//! here, at start and whenever sync brings entries; larger ones when
//! someone asks (`convene get`, through the store: the CLI writes the
//! hash under [`META_WANTED`] and the daemon reports under
//! [`META_FETCHING`]). Never more than `max_file_mb`, and, when
//! `quota_mb_per_org` is set, never past that many bytes of files used by
//! one organisation's entries. Sizes are the entries' own, never a
//! sender's.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use convene_model::{Attachment, DocumentId};

use crate::blobs::BlobStore;
use crate::sync::catalogue::CatalogueView;
use crate::sync::wire::{Digest, DocId};
use crate::sync::{NodeReplica, Replica};
use crate::trust::NodeId;

/// `meta` key: the files the CLI asked the daemon to fetch, a JSON list of
/// hashes.
pub const META_WANTED: &str = "files.wanted";
/// `meta` key: the daemon's downloads, a JSON object by hash of
/// `{"done", "total", "sources", "state"}` (`fetching`, `no source`,
/// `failed: …`, `refused: …`).
pub const META_FETCHING: &str = "files.fetching";

/// Adds `hash` to (or, when `wanted` is false, removes it from) the files
/// asked for under [`META_WANTED`], reading and rewriting the list in one
/// write transaction: a `convene get` and the web app's Fetch button at
/// the same moment each keep their request. Hashes whose bytes have
/// arrived since leave the list.
pub fn set_wanted(
    node: &mut crate::Node,
    hash: &str,
    wanted: bool,
) -> Result<(), crate::NodeError> {
    let blobs = node.blobs();
    node.store_mut().write(|w| {
        let mut list: Vec<String> = w
            .meta(META_WANTED)?
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default();
        list.retain(|h| h != hash && !blobs.has(h));
        if wanted {
            list.push(hash.to_string());
        }
        let json = serde_json::to_string(&list).expect("a list of strings");
        w.set_meta(META_WANTED, &json)?;
        Ok::<_, crate::NodeError>(())
    })
}

/// Documents read per [`FileIndex::refresh`] at most.
pub const LOADS_PER_REFRESH: usize = 64;

#[derive(Debug, Clone)]
struct Indexed {
    digest: Digest,
    owner: String,
    files: Vec<Attachment>,
}

/// The files each held learning entry and project uses.
#[derive(Debug, Default)]
pub struct FileIndex {
    /// The entries that use a file, with the digest they were read at.
    docs: HashMap<DocId, Indexed>,
    by_hash: HashMap<String, BTreeSet<DocId>>,
    /// Entries read (loaded and hydrated) so far.
    reads: u64,
    /// The catalogue's `changes.seq` and the store's last erasure folded
    /// in so far.
    seen_seq: i64,
    seen_tombstone: i64,
    /// Entries that use a file and changed since they were read.
    to_read: BTreeSet<DocId>,
}

impl FileIndex {
    /// Brings the index up to date with the replica's catalogue: it
    /// follows what the catalogue has folded in since the last call (the
    /// documents stored after its last `changes.seq`, and erasures), never
    /// every entry held; and of those it reads (loads and hydrates) only
    /// entries that use a file, at most [`LOADS_PER_REFRESH`] per call (a
    /// node catching up on thousands of entries is indexed over several
    /// ticks, never holding up the event loop). Returns whether it is up to
    /// date.
    pub fn refresh(&mut self, replica: &NodeReplica) -> bool {
        let store = replica.node().store();
        // Erasures first: dropping an erased entry's files early is safe.
        match store.tombstones_since(self.seen_tombstone) {
            Ok((tombstones, max)) => {
                for t in tombstones {
                    let doc = *t.tombstone.doc.as_bytes();
                    self.to_read.remove(&doc);
                    self.remove(&doc);
                }
                self.seen_tombstone = self.seen_tombstone.max(max);
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read erasures for the files index");
                return true;
            }
        }
        // Documents stored since, up to where the catalogue has folded
        // them in (its digests and classes decide what is served).
        let upto = replica.catalogue_seq();
        if self.seen_seq == 0 && upto > 0 {
            // The first look: the entries to read are those that use a
            // file, without listing every document the catalogue holds
            // (100,000 rows at a large node's start).
            match store.docs_with_files() {
                Ok(docs) => self.to_read.extend(docs.iter().map(|d| *d.as_bytes())),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot list the entries that have files");
                    return true;
                }
            }
            self.seen_seq = upto;
        }
        if upto > self.seen_seq {
            let rows = match store.catalogue_between(self.seen_seq, upto) {
                Ok((rows, _)) => rows,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read what changed for the files index");
                    return true;
                }
            };
            if !rows.is_empty() {
                // Only an entry the index says uses a file is read (about
                // half a millisecond); the rest are known to use none.
                let with_files = match store.docs_with_files() {
                    Ok(docs) => docs,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot list the entries that have files");
                        return true;
                    }
                };
                for (row, _) in rows {
                    let doc = *row.doc.as_bytes();
                    if with_files.contains(&row.doc) {
                        self.to_read.insert(doc);
                    } else {
                        self.to_read.remove(&doc);
                        self.remove(&doc);
                    }
                }
            }
            self.seen_seq = upto;
        }
        let everything = replica.catalogue().everything();
        let mut loads = 0;
        while let Some(doc) = self.to_read.pop_first() {
            // No longer in the catalogue (no longer held): its files leave
            // the index until it is stored again.
            let Some(digest) = everything.digest(&doc) else {
                self.remove(&doc);
                continue;
            };
            if self.docs.get(&doc).is_some_and(|i| i.digest == digest) {
                continue;
            }
            if loads == LOADS_PER_REFRESH {
                self.to_read.insert(doc);
                return false;
            }
            loads += 1;
            self.reads += 1;
            self.remove(&doc);
            let Ok(entry) = replica.node().get(DocumentId::from_bytes(doc)) else {
                // Not a readable entry: read again only when it changes.
                continue;
            };
            let files = entry.body.attachments().to_vec();
            if files.is_empty() {
                continue;
            }
            for f in &files {
                self.by_hash.entry(f.hash.clone()).or_default().insert(doc);
            }
            self.docs.insert(
                doc,
                Indexed {
                    digest,
                    owner: entry.meta.owner.to_string(),
                    files,
                },
            );
        }
        true
    }

    /// How many entries [`FileIndex::refresh`] has read so far: only those
    /// that use a file, each once per version.
    pub fn entries_read(&self) -> u64 {
        self.reads
    }

    /// The files the index knows `doc` uses.
    pub fn files_of(&self, doc: DocumentId) -> Vec<Attachment> {
        self.docs
            .get(doc.as_bytes())
            .map(|i| i.files.clone())
            .unwrap_or_default()
    }

    fn remove(&mut self, doc: &DocId) {
        if let Some(old) = self.docs.remove(doc) {
            for f in old.files {
                if let Some(set) = self.by_hash.get_mut(&f.hash) {
                    set.remove(doc);
                    if set.is_empty() {
                        self.by_hash.remove(&f.hash);
                    }
                }
            }
        }
    }

    /// Whether `peer` may be sent the bytes of `hash`: some entry held
    /// here that uses it is one sync would send it.
    pub fn may_serve(&self, replica: &mut NodeReplica, peer: &NodeId, hash: &str) -> bool {
        let Some(docs) = self.by_hash.get(hash) else {
            return false;
        };
        let visible: Vec<DocId> = {
            let view = replica.view(peer);
            docs.iter()
                .filter(|d| view.digest(d).is_some())
                .copied()
                .collect()
        };
        let store = replica.node().store();
        visible.iter().any(|d| {
            let id = DocumentId::from_bytes(*d);
            // The catalogue may be a moment behind the store: what the
            // store says now decides (as sync's `fetch` does).
            let erased = store.tombstone(id).map_or(true, |t| t.is_some());
            let draft = store
                .status(id)
                .map_or(true, |s| s.as_deref() == Some("draft"));
            !erased && !draft
        })
    }

    /// The size the entries declare for `hash` (the smallest, if they
    /// disagree: a larger claim is not trusted), and the organisations
    /// whose entries use it.
    pub fn declared(&self, hash: &str) -> Option<(u64, BTreeSet<String>)> {
        let docs = self.by_hash.get(hash)?;
        let mut size = None::<u64>;
        let mut owners = BTreeSet::new();
        for d in docs {
            let i = &self.docs[d];
            owners.insert(i.owner.clone());
            for f in i.files.iter().filter(|f| f.hash == hash) {
                size = Some(size.map_or(f.size, |s| s.min(f.size)));
            }
        }
        Some((size?, owners))
    }

    /// Every file used by an entry held here: hash → declared size.
    pub fn files(&self) -> BTreeMap<String, u64> {
        self.by_hash
            .keys()
            .filter_map(|h| self.declared(h).map(|(s, _)| (h.clone(), s)))
            .collect()
    }

    /// Bytes of files held here that entries of `org` use.
    pub fn held_for(&self, blobs: &BlobStore, org: &str) -> u64 {
        let mut hashes = BTreeSet::new();
        for i in self.docs.values().filter(|i| i.owner == org) {
            hashes.extend(i.files.iter().map(|f| (f.hash.clone(), f.size)));
        }
        hashes
            .into_iter()
            .filter(|(h, _)| blobs.has(h))
            .map(|(_, s)| s)
            .sum()
    }
}
