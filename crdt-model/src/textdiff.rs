//! How a long text is rewritten in its document: a diff whose cost is
//! bounded, whatever the old and new texts are.
//!
//! An edit reconciles each [`Prose`](crate::Prose) field against the text
//! in the document, so that only the characters that changed become
//! operations and concurrent edits merge. automerge's own `update_text`
//! diffs every grapheme with Myers' algorithm, which takes time in
//! proportion to the texts' length times the size of the difference, and
//! has no bound: replacing a 100,000-character text with a different one
//! took 82 seconds in a release build (a form or a command that seems to
//! hang, holding the store's writer).
//!
//! [`Bounded`] wraps the document the entry is written into and rewrites
//! a text in three steps, each bounded: the common start and end are kept
//! as they are; a changed middle of at most [`FINE`] characters is diffed
//! character by character (Myers, from the `similar` crate, over the
//! middle alone: automerge's diff of the whole text by graphemes finds
//! nothing in common after one changed character in a run of flag emoji,
//! whose pairs all shift, and rewrites the whole run); a longer one by
//! words,
//! or by lines if it has more than [`TOKENS`] words, with Myers over those
//! tokens (at most [`TOKENS`] of them: about a second at worst, in a
//! release build, for two texts of 8,000 words in different orders); and
//! one with more lines than that is replaced whole. The
//! text the document ends with is the new text in every case; only how
//! finely the edit is recorded (and so how it merges with concurrent
//! edits) changes for very large rewrites.

use std::ops::RangeBounds;

use automerge::{self as am, AutomergeError, ObjId, Value};
use autosurgeon::{Doc, ReadDoc};

/// The longest changed middle (old and new characters together) diffed
/// character by character.
pub const FINE: usize = 4096;
/// The most tokens (words, else lines; old and new together) diffed as
/// tokens; beyond that the changed middle is replaced whole.
pub const TOKENS: usize = 16384;

/// A document whose texts are rewritten by a bounded diff (see the module
/// docs); everything else goes to the document as it is.
pub struct Bounded<'a, D>(pub &'a mut D);

impl<D> std::fmt::Debug for Bounded<'_, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Bounded(..)")
    }
}

impl<D: Doc> Bounded<'_, D> {
    fn rewrite(&mut self, obj: &ObjId, new: &str) -> Result<(), AutomergeError> {
        let old = self.0.text(obj)?;
        if old == new {
            return Ok(());
        }
        let old_chars: Vec<char> = old.chars().collect();
        let new_chars: Vec<char> = new.chars().collect();
        let prefix = old_chars
            .iter()
            .zip(&new_chars)
            .take_while(|(a, b)| a == b)
            .count();
        let most = old_chars.len().min(new_chars.len()) - prefix;
        let suffix = old_chars
            .iter()
            .rev()
            .zip(new_chars.iter().rev())
            .take(most)
            .take_while(|(a, b)| a == b)
            .count();
        let (old_len, new_len) = (
            old_chars.len() - prefix - suffix,
            new_chars.len() - prefix - suffix,
        );
        let old_mid: String = old_chars[prefix..prefix + old_len].iter().collect();
        let new_mid: String = new_chars[prefix..prefix + new_len].iter().collect();
        if old_len + new_len <= FINE {
            return self.splice_diff(obj, prefix, &chars(&old_mid), &chars(&new_mid));
        }
        let split: [fn(&str) -> Vec<&str>; 2] = [words, lines];
        for tokens in split {
            let (old_tokens, new_tokens) = (tokens(&old_mid), tokens(&new_mid));
            if old_tokens.len() + new_tokens.len() <= TOKENS {
                return self.splice_diff(obj, prefix, &old_tokens, &new_tokens);
            }
        }
        self.0.splice_text(obj, prefix, old_len as isize, &new_mid)
    }

    /// Turns `old` into `new` (tokens of the changed middle, which starts
    /// at character `at`) with one splice for each difference Myers finds.
    fn splice_diff(
        &mut self,
        obj: &ObjId,
        at: usize,
        old: &[&str],
        new: &[&str],
    ) -> Result<(), AutomergeError> {
        let width = |tokens: &[&str]| tokens.iter().map(|t| t.chars().count()).sum::<usize>();
        // Where each new token starts, in characters from `at`: every
        // splice before it has made the text before it the new one.
        let mut starts = Vec::with_capacity(new.len() + 1);
        let mut n = 0;
        for t in new {
            starts.push(n);
            n += t.chars().count();
        }
        starts.push(n);
        for op in similar::capture_diff_slices(similar::Algorithm::Myers, old, new) {
            let (old_range, new_range) = (op.old_range(), op.new_range());
            if matches!(op, similar::DiffOp::Equal { .. }) {
                continue;
            }
            let deleted = width(&old[old_range]);
            let inserted: String = new[new_range.clone()].concat();
            self.0.splice_text(
                obj,
                at + starts[new_range.start],
                deleted as isize,
                &inserted,
            )?;
        }
        Ok(())
    }
}

/// Characters, each as the text it is.
fn chars(s: &str) -> Vec<&str> {
    s.char_indices()
        .map(|(i, c)| &s[i..i + c.len_utf8()])
        .collect()
}

/// Words, each with the whitespace after it (so the tokens spell the text).
fn words(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut in_space = false;
    for (i, c) in s.char_indices() {
        let space = c.is_whitespace();
        if in_space && !space {
            out.push(&s[start..i]);
            start = i;
        }
        in_space = space;
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

/// Lines, each with its line break.
fn lines(s: &str) -> Vec<&str> {
    s.split_inclusive('\n').collect()
}

impl<D: Doc> ReadDoc for Bounded<'_, D> {
    type Parents<'b>
        = D::Parents<'b>
    where
        Self: 'b;

    fn get_heads(&self) -> Vec<am::ChangeHash> {
        self.0.get_heads()
    }

    fn get<P: Into<am::Prop>>(
        &self,
        obj: &ObjId,
        prop: P,
    ) -> Result<Option<(Value<'_>, ObjId)>, AutomergeError> {
        self.0.get(obj, prop)
    }

    fn object_type<O: AsRef<ObjId>>(&self, obj: O) -> Option<am::ObjType> {
        self.0.object_type(obj)
    }

    fn map_range<'b, O, R>(&'b self, obj: O, range: R) -> am::iter::MapRange<'b>
    where
        R: RangeBounds<String> + 'b,
        O: AsRef<ObjId>,
        R: RangeBounds<String>,
    {
        self.0.map_range(obj, range)
    }

    fn list_range<O: AsRef<ObjId>, R: RangeBounds<usize>>(
        &self,
        obj: O,
        range: R,
    ) -> am::iter::ListRange<'_> {
        self.0.list_range(obj, range)
    }

    fn length<O: AsRef<ObjId>>(&self, obj: O) -> usize {
        self.0.length(obj)
    }

    fn text<O: AsRef<ObjId>>(&self, obj: O) -> Result<String, AutomergeError> {
        self.0.text(obj)
    }

    fn parents<O: AsRef<ObjId>>(&self, obj: O) -> Result<Self::Parents<'_>, AutomergeError> {
        self.0.parents(obj)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<D: Doc> Doc for Bounded<'_, D> {
    fn put<O: AsRef<ObjId>, P: Into<am::Prop>, V: Into<am::ScalarValue>>(
        &mut self,
        obj: O,
        prop: P,
        value: V,
    ) -> Result<(), AutomergeError> {
        self.0.put(obj, prop, value)
    }

    fn put_object<O: AsRef<ObjId>, P: Into<am::Prop>>(
        &mut self,
        obj: O,
        prop: P,
        value: am::ObjType,
    ) -> Result<ObjId, AutomergeError> {
        self.0.put_object(obj, prop, value)
    }

    fn insert<O: AsRef<ObjId>, V: Into<am::ScalarValue>>(
        &mut self,
        obj: O,
        index: usize,
        value: V,
    ) -> Result<(), AutomergeError> {
        self.0.insert(obj, index, value)
    }

    fn insert_object<O: AsRef<ObjId>>(
        &mut self,
        obj: O,
        index: usize,
        value: am::ObjType,
    ) -> Result<ObjId, AutomergeError> {
        self.0.insert_object(obj, index, value)
    }

    fn increment<O: AsRef<ObjId>, P: Into<am::Prop>>(
        &mut self,
        obj: O,
        prop: P,
        value: i64,
    ) -> Result<(), AutomergeError> {
        self.0.increment(obj, prop, value)
    }

    fn delete<O: AsRef<ObjId>, P: Into<am::Prop>>(
        &mut self,
        obj: O,
        prop: P,
    ) -> Result<(), AutomergeError> {
        self.0.delete(obj, prop)
    }

    fn splice_text<O: AsRef<ObjId>>(
        &mut self,
        obj: O,
        pos: usize,
        del: isize,
        text: &str,
    ) -> Result<(), AutomergeError> {
        self.0.splice_text(obj, pos, del, text)
    }

    fn update_text<O: AsRef<ObjId>>(&mut self, obj: O, text: &str) -> Result<(), AutomergeError> {
        self.rewrite(obj.as_ref(), text)
    }

    fn batch_create<O: AsRef<ObjId>, P: Into<am::Prop>>(
        &mut self,
        obj: O,
        prop: P,
        value: am::hydrate::Value,
        insert: bool,
    ) -> Result<(), AutomergeError> {
        self.0.batch_create(obj, prop, value, insert)
    }

    fn init_root_from_hydrate(&mut self, value: &am::hydrate::Map) -> Result<(), AutomergeError> {
        self.0.init_root_from_hydrate(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, ObjType, ROOT};

    fn prose(seed: usize, chars: usize) -> String {
        let words = [
            "discharge ",
            "huddle ",
            "frailty ",
            "handover ",
            "falls ",
            "ward\n",
            "café ",
            "👩‍⚕️ ",
        ];
        let mut s = String::new();
        let mut i = seed;
        while s.chars().count() < chars {
            s.push_str(words[(i * 7 + i / 3) % words.len()]);
            i += 1;
        }
        s
    }

    /// A document holding `old` as a committed text, and the text's id.
    fn doc_with(old: &str) -> (AutoCommit, ObjId) {
        let mut doc = AutoCommit::new();
        let text = Transactable::put_object(&mut doc, ROOT, "body", ObjType::Text).unwrap();
        Transactable::splice_text(&mut doc, &text, 0, 0, old).unwrap();
        doc.commit();
        (doc, text)
    }

    /// Rewrites `old` into `new` through [`Bounded`]; the text it leaves
    /// and the number of operations the edit took.
    fn rewrite(old: &str, new: &str) -> (String, usize) {
        let (mut doc, text) = doc_with(old);
        let before = doc.get_heads();
        Bounded(&mut doc).update_text(&text, new).unwrap();
        doc.commit();
        let ops = doc
            .get_changes(&before)
            .iter()
            .map(|c| c.len())
            .sum::<usize>();
        (doc.text(&text).unwrap(), ops)
    }

    #[test]
    fn every_rewrite_leaves_exactly_the_new_text() {
        let long = prose(0, 20_000);
        let cases = [
            (String::new(), "new".to_string()),
            ("old".into(), String::new()),
            ("same".into(), "same".into()),
            (long.clone(), String::new()),
            (long.clone(), prose(5, 20_000)),
            (long.clone(), long.replacen("huddle", "meeting", 40)),
            (long.clone(), format!("A new start. {long} And a new end.")),
            (long.clone(), long.replace('\n', " ")),
            (long.clone(), long.chars().rev().collect()),
            ("x".repeat(30_000), "y".repeat(30_000)),
        ];
        for (old, new) in cases {
            assert_eq!(
                rewrite(&old, &new).0,
                new,
                "{} → {} chars",
                old.len(),
                new.len()
            );
        }
    }

    /// A small edit in a long text is recorded as a small edit, so it
    /// merges with what others changed elsewhere in the text.
    #[test]
    fn a_small_edit_in_a_long_text_stays_small_and_merges() {
        let long = prose(1, 50_000);
        let edited = long.replacen("falls", "trips", 1);
        let (text, ops) = rewrite(&long, &edited);
        assert_eq!(text, edited);
        assert!(ops < 50, "{ops} operations for a one-word edit");

        // Edits spread through the text: each becomes its own splice.
        let spread = long.replace("ward\n", "bay\n");
        let (text, ops) = rewrite(&long, &spread);
        assert_eq!(text, spread);
        assert!(ops < long.chars().count() / 4, "{ops} operations");

        // Two organisations edit the same long text at once, far apart:
        // both edits survive the merge.
        let (mut a, text_id) = doc_with(&long);
        let mut b = a.fork();
        let first = long.replacen("discharge", "DISCHARGE", 1);
        let last = {
            let at = long.rfind("handover").unwrap();
            format!("{}HANDOVER{}", &long[..at], &long[at + "handover".len()..])
        };
        Bounded(&mut a).update_text(&text_id, &first).unwrap();
        Bounded(&mut b).update_text(&text_id, &last).unwrap();
        a.merge(&mut b).unwrap();
        let merged = a.text(&text_id).unwrap();
        assert!(merged.starts_with(&first[..first.find("DISCHARGE").unwrap() + 9]));
        assert!(merged.contains("HANDOVER"));
        assert_eq!(merged.chars().count(), long.chars().count());
    }

    /// Rewriting a long text into an entirely different one finishes
    /// promptly (automerge's own diff took 82 s for 100,000 characters in
    /// a release build, and minutes in a test build, for 30,000 too).
    #[test]
    fn rewriting_a_long_text_entirely_is_prompt() {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let old = prose(2, crate::check::MAX_PROSE);
            let new: String = old.chars().rev().collect();
            let _ = tx.send(rewrite(&old, &new).0 == new);
        });
        let worst = std::sync::mpsc::channel();
        let tx = worst.0;
        std::thread::spawn(move || {
            // The most words diffed as words, none in common: Myers' worst.
            let half = TOKENS / 2 - 1;
            let old: String = (0..half).map(|i| format!("a{i} ")).collect();
            let new: String = (0..half).map(|i| format!("b{i} ")).collect();
            let _ = tx.send(rewrite(&old, &new).0 == new);
        });
        // One character changed before a long run of flag emoji: every
        // grapheme after it pairs differently, so a diff by graphemes finds
        // nothing in common and rewrites the whole run; it takes two
        // operations.
        let flags = std::sync::mpsc::channel();
        let tx = flags.0;
        std::thread::spawn(move || {
            let run = "🇦🇧".repeat(crate::check::MAX_PROSE / 2 - 1);
            let (old, new) = (format!("x{run}"), format!("🇦{run}"));
            let (text, ops) = rewrite(&old, &new);
            let _ = tx.send(text == new && ops <= 2);
        });
        let done = rx.recv_timeout(std::time::Duration::from_secs(60));
        assert_eq!(done, Ok(true), "not done within a minute");
        let done = flags.1.recv_timeout(std::time::Duration::from_secs(60));
        assert_eq!(done, Ok(true), "the flags not done within a minute");
        let done = worst.1.recv_timeout(std::time::Duration::from_secs(60));
        assert_eq!(done, Ok(true), "the worst case not done within a minute");
    }
}
