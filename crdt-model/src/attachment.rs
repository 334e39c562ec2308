//! A file attached to a learning entry or a project: the report, the slide
//! deck, the poster behind the learning.
//!
//! The document records only what describes the file (its name, size,
//! media type and BLAKE3 hash); the bytes live outside automerge, in the
//! node's content-addressed file store, and are fetched by hash. Keeping
//! bytes out of the document keeps every sync of the entry small and lets
//! erasure remove the bytes without rewriting history.
//!
//! The field is additive: a node that does not know `attachments` keeps it
//! untouched (reconciling never deletes keys it does not know), and a
//! document without it reads as having no files.
//!
//! Validation here is what every node agrees on, whatever it configures:
//! a safe name, a well-formed hash and media type, distinct names. The size
//! limit a node enforces on files it *accepts or stores* is its own policy
//! (`convene-node`'s file limits, default [`DEFAULT_MAX_FILE`]); refusing a
//! received *document* because its file is larger than this node would
//! store would split the community, so a document is only refused for a
//! size no file can have ([`MAX_FILE_CEILING`]).

use autosurgeon::{Hydrate, Reconcile};
use serde::{Deserialize, Serialize};

use crate::check::Checker;

/// The per-file maximum a node enforces unless configured otherwise (200 MB).
pub const DEFAULT_MAX_FILE: u64 = 200 * 1000 * 1000;
/// No attachment may claim more than this (1 TB): a document that does is
/// invalid everywhere.
pub const MAX_FILE_CEILING: u64 = 1000 * 1000 * 1000 * 1000;
/// Most files on one entry.
pub const MAX_ATTACHMENTS: usize = 100;
/// Longest file name, in bytes (what most file systems allow).
pub const MAX_NAME_BYTES: usize = 255;

/// One file on an entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
#[serde(default, deny_unknown_fields)]
pub struct Attachment {
    /// The file name people see and download as; unique within the entry
    /// (it is how `convene get ID NAME` names the file), sanitised: no
    /// folders, no control characters.
    #[key]
    #[autosurgeon(missing = "Default::default")]
    pub name: String,
    /// Size in bytes, as measured by the node that attached it.
    #[autosurgeon(missing = "Default::default")]
    pub size: u64,
    /// `type/subtype`, guessed from the name when attached. Informative
    /// only: downloads are always served as opaque bytes.
    #[autosurgeon(missing = "Default::default")]
    pub media_type: String,
    /// BLAKE3 hash of the content, 64 lowercase hex digits: the file's
    /// identity, and what every received byte is checked against.
    #[autosurgeon(missing = "Default::default")]
    pub hash: String,
}

/// A file name made safe to show and to write: the last path component
/// only, control characters and characters that are special on common file
/// systems replaced by `_`, surrounding whitespace and dots trimmed,
/// at most [`MAX_NAME_BYTES`] bytes. An empty result means no usable name.
pub fn sanitise_name(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let mapped: String = last
        .chars()
        .map(|c| {
            if c.is_control() || matches!(c, ':' | '*' | '?' | '"' | '<' | '>' | '|') {
                '_'
            } else {
                c
            }
        })
        .collect();
    let trimmed = mapped.trim().trim_matches('.').trim();
    let mut out = String::new();
    for c in trimmed.chars() {
        if out.len() + c.len_utf8() > MAX_NAME_BYTES {
            break;
        }
        out.push(c);
    }
    out
}

/// Whether `hash` is a BLAKE3 hash as documents store it: 32 bytes as 64
/// lowercase hex digits.
pub fn is_hash(hash: &str) -> bool {
    hash.len() == 64 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn is_media_type(t: &str) -> bool {
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    };
    t.len() <= 127 && t.split_once('/').is_some_and(|(a, b)| token(a) && token(b))
}

/// Checks an entry's attachments (normalising names and media types).
pub(crate) fn check(c: &mut Checker, items: &mut [Attachment]) {
    if items.len() > MAX_ATTACHMENTS {
        c.problem(
            "attachments",
            format!("at most {MAX_ATTACHMENTS} files per entry"),
        );
    }
    let mut seen = std::collections::HashSet::new();
    c.each("attachments", items, |c, a| {
        let clean = sanitise_name(&a.name);
        if clean.is_empty() {
            c.problem("name", format!("{:?} is not a usable file name", a.name));
        } else if !seen.insert(clean.clone()) {
            c.problem("name", format!("two files are named {clean:?}"));
        }
        a.name = clean;
        if a.size > MAX_FILE_CEILING {
            c.problem(
                "size",
                format!("{} bytes is more than any file may be", a.size),
            );
        }
        a.media_type = a.media_type.trim().to_ascii_lowercase();
        if a.media_type.is_empty() {
            a.media_type = "application/octet-stream".into();
        }
        if !is_media_type(&a.media_type) {
            c.problem(
                "media_type",
                format!("{:?} is not a media type (type/subtype)", a.media_type),
            );
        }
        a.hash = a.hash.trim().to_ascii_lowercase();
        if !is_hash(&a.hash) {
            c.problem(
                "hash",
                "must be a BLAKE3 hash: 64 hex digits (32 bytes)".to_string(),
            );
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> Attachment {
        Attachment {
            name: "report.pdf".into(),
            size: 10,
            media_type: "application/pdf".into(),
            hash: "ab".repeat(32),
        }
    }

    #[test]
    fn names_lose_folders_and_control_characters() {
        assert_eq!(sanitise_name("../../etc/passwd"), "passwd");
        assert_eq!(sanitise_name("C:\\Users\\me\\deck.pptx"), "deck.pptx");
        assert_eq!(sanitise_name("a\nb\u{7}.txt"), "a_b_.txt");
        assert_eq!(sanitise_name(".."), "");
        assert_eq!(sanitise_name("  .hidden  "), "hidden");
        assert!(sanitise_name(&"é".repeat(300)).len() <= MAX_NAME_BYTES);
    }

    #[test]
    fn check_refuses_bad_hashes_types_and_duplicate_names() {
        let mut c = Checker::new();
        let mut items = vec![good()];
        check(&mut c, &mut items);
        assert!(c.finish().is_ok());

        let mut c = Checker::new();
        let mut items = vec![
            Attachment {
                hash: "ab".repeat(31),
                ..good()
            },
            Attachment {
                name: "sub/report.pdf".into(),
                media_type: "pdf".into(),
                ..good()
            },
            Attachment {
                name: "..".into(),
                size: MAX_FILE_CEILING + 1,
                ..good()
            },
        ];
        check(&mut c, &mut items);
        let problems = c.finish().unwrap_err().to_string();
        assert!(problems.contains("attachments[0].hash"), "{problems}");
        assert!(
            problems.contains("attachments[1].name: two files"),
            "{problems}"
        );
        assert!(problems.contains("attachments[1].media_type"), "{problems}");
        assert!(problems.contains("attachments[2].name"), "{problems}");
        assert!(problems.contains("attachments[2].size"), "{problems}");
    }
}
