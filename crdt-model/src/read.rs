//! Reading a document's root map in one pass.
//!
//! autosurgeon hydrates a struct by asking the document for each field by
//! key, and automerge seeks each key among the object's operations anew:
//! an entry's twenty-odd root fields (its metadata and its body's) cost
//! twenty-odd seeks, and reading entries for the store's index was about
//! a tenth of a large catch-up's CPU. [`RootOnce`] reads the root map once
//! and answers lookups of its keys from that; everything else (nested
//! lists and maps, text, heads) goes to the document.

use std::collections::HashMap;
use std::ops::RangeBounds;

use automerge::{self as am, AutomergeError, ObjId, ROOT, Value};
use autosurgeon::ReadDoc;

/// A document whose root map was read once (see the module docs).
pub struct RootOnce<'a, D> {
    doc: &'a D,
    /// The root's keys: the value each resolves to (the winner of any
    /// conflict, as [`ReadDoc::get`] gives) and the operation's id.
    root: HashMap<String, (Value<'static>, ObjId)>,
}

impl<D> std::fmt::Debug for RootOnce<'_, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RootOnce")
            .field("root_keys", &self.root.len())
            .finish()
    }
}

impl<'a, D: ReadDoc> RootOnce<'a, D> {
    pub fn new(doc: &'a D) -> Self {
        let root = doc
            .map_range(ROOT, ..)
            .map(|item| {
                let id = item.id();
                (item.key.into_owned(), (item.value.into_value(), id))
            })
            .collect();
        Self { doc, root }
    }

    /// The document itself.
    pub fn doc(&self) -> &'a D {
        self.doc
    }
}

impl<D: ReadDoc> ReadDoc for RootOnce<'_, D> {
    type Parents<'b>
        = D::Parents<'b>
    where
        Self: 'b;

    fn get_heads(&self) -> Vec<am::ChangeHash> {
        self.doc.get_heads()
    }

    fn get<P: Into<am::Prop>>(
        &self,
        obj: &ObjId,
        prop: P,
    ) -> Result<Option<(Value<'_>, ObjId)>, AutomergeError> {
        let prop = prop.into();
        if *obj == ROOT
            && let am::Prop::Map(key) = &prop
        {
            return Ok(self.root.get(key.as_str()).cloned());
        }
        self.doc.get(obj, prop)
    }

    fn object_type<O: AsRef<ObjId>>(&self, obj: O) -> Option<am::ObjType> {
        self.doc.object_type(obj)
    }

    fn map_range<'b, O, R>(&'b self, obj: O, range: R) -> am::iter::MapRange<'b>
    where
        R: RangeBounds<String> + 'b,
        O: AsRef<ObjId>,
    {
        self.doc.map_range(obj, range)
    }

    fn list_range<O: AsRef<ObjId>, R: RangeBounds<usize>>(
        &self,
        obj: O,
        range: R,
    ) -> am::iter::ListRange<'_> {
        self.doc.list_range(obj, range)
    }

    fn length<O: AsRef<ObjId>>(&self, obj: O) -> usize {
        self.doc.length(obj)
    }

    fn text<O: AsRef<ObjId>>(&self, obj: O) -> Result<String, AutomergeError> {
        self.doc.text(obj)
    }

    fn parents<O: AsRef<ObjId>>(&self, obj: O) -> Result<Self::Parents<'_>, AutomergeError> {
        self.doc.parents(obj)
    }

    fn is_empty(&self) -> bool {
        self.doc.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use automerge::transaction::Transactable;
    use automerge::{ActorId, AutoCommit};

    use super::RootOnce;
    use crate::*;

    fn entry() -> Entry {
        Entry {
            id: DocumentId::from_bytes([7; 16]),
            meta: Meta {
                kind: Kind::Learning,
                schema: SCHEMA,
                owner: OrgId(DocumentId::from_bytes([1; 16])),
                visibility: Visibility::Community,
                editors: vec![OrgId(DocumentId::from_bytes([2; 16]))],
                created: codec::Timestamp(1_700_000_000_000),
                updated: codec::Timestamp(1_700_000_000_000),
                status: Status::Published,
            },
            body: Body::Learning(Learning {
                title: "Virtual wards in the north".into(),
                summary: "Step-up care at home cut admissions.".into(),
                tags: vec!["virtual wards".into(), "frailty".into()],
                ..Learning::default()
            }),
        }
    }

    /// Conflicting root keys (two organisations' nodes setting the same
    /// field at once) resolve as the document itself resolves them.
    #[test]
    fn the_root_read_once_gives_what_the_document_gives_even_in_conflicts() {
        let e = entry();
        let mut a = AutoCommit::new().with_actor(ActorId::from(vec![1u8; 16]));
        e.write(&mut a).unwrap();
        let mut b = a.fork().with_actor(ActorId::from(vec![2u8; 16]));
        let mut c = a.fork().with_actor(ActorId::from(vec![3u8; 16]));
        a.put(automerge::ROOT, "status", "draft").unwrap();
        b.put(automerge::ROOT, "status", "retracted").unwrap();
        c.put(automerge::ROOT, "visibility", "organisation")
            .unwrap();
        b.put(automerge::ROOT, "visibility", "community").unwrap();
        a.merge(&mut b).unwrap();
        a.merge(&mut c).unwrap();
        let (status, _) = automerge::ReadDoc::get(&a, automerge::ROOT, "status")
            .unwrap()
            .unwrap();
        assert!(
            automerge::ReadDoc::get_all(&a, automerge::ROOT, "status")
                .unwrap()
                .len()
                > 1
        );

        let once = RootOnce::new(&a);
        let direct: Meta = autosurgeon::hydrate(&a).unwrap();
        let read: Meta = autosurgeon::hydrate(&once).unwrap();
        assert_eq!(read, direct);
        assert_eq!(Some(read.status.as_str()), status.as_str());
        let direct: Learning = autosurgeon::hydrate(&a).unwrap();
        let read: Learning = autosurgeon::hydrate(&once).unwrap();
        assert_eq!(read, direct);
        assert_eq!(read.tags, ["virtual wards", "frailty"]);
        assert_eq!(Entry::from_doc(e.id, &a).unwrap().meta, direct_meta(&a));
    }

    fn direct_meta(doc: &AutoCommit) -> Meta {
        autosurgeon::hydrate(doc).unwrap()
    }
}
