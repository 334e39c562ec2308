//! A new document's first state read from its first change's rows, without
//! automerge building the document.
//!
//! Loading the laid-out document costs automerge an index of every
//! operation and the change rebuilt from them to hash it: most of what a
//! node spends on a new entry (a third of the daemons' CPU in the
//! live-propagation mesh). What the apply path needs of a new document
//! alone in its batch is its rules and its rows, read through autosurgeon:
//! a [`View`] answers those reads from the rows [`super`] decoded, and the
//! document itself is loaded only when something must be applied on top.
//!
//! Why the reading is automerge's: the rows are a first change of the
//! unambiguous shape (see [`super`]): each map key set once, each list or
//! text one run of insertions, nothing deleted or replaced, so a key's
//! value is the one operation that set it and a sequence's elements are
//! its insertions in order. Every column but the values' was checked to be
//! the bytes automerge's encoding gives for the values read (the canonical
//! check), so automerge decodes them to the same rows. Each value is
//! decoded here only if it re-encodes to its own bytes and its type is one
//! whose meaning is certain (null, booleans, integers, floats, strings,
//! bytes, timestamps: counters and unknown types are left to automerge).
//! A text's elements must be strings. Anything else gives no view, and the
//! document is loaded as before.
//!
//! autosurgeon can ask a reader for more than this answers (a map's keys
//! in a range, a text's length in automerge's text encoding, an element of
//! a text): such a question marks the view [`View::unsure`], and whatever
//! was read through it is discarded and read from the loaded document
//! instead.

use std::borrow::Cow;
use std::cell::Cell;
use std::ops::RangeBounds;

use automerge::{self as am, ActorId, AutomergeError, ChangeHash, ObjId, ObjType, Value};

use super::{Key, MAKE_LIST, MAKE_MAP, MAKE_TEXT, Row, SET, sleb, uleb, value_type};

/// What an operation put in its object.
#[derive(Debug)]
enum Item {
    Scalar(am::ScalarValue),
    Object(ObjType),
}

#[derive(Debug)]
struct Member {
    /// Its key in a map (empty in a list or text).
    key: String,
    /// The counter of the operation that put it.
    id: u64,
    item: Item,
}

#[derive(Debug)]
struct Object {
    /// The counter of the operation that made it (0: the root).
    id: u64,
    kind: ObjType,
    /// A map's members in key order; a list's in order.
    members: Vec<Member>,
    /// A text's elements, one after the other (each a string).
    text: String,
}

/// A new document's first state, read from its first change (see the
/// module docs).
#[derive(Debug)]
pub(crate) struct View {
    actor: ActorId,
    head: ChangeHash,
    /// In the order of their ids, the root first.
    objects: Vec<Object>,
    /// Set when asked something this reading does not answer.
    unsure: Cell<bool>,
}

impl View {
    /// The view of `rows` (the change's operations, the first with counter
    /// `start`) laid out in document `order`, by `actor`; `None` if a value
    /// is not one read here.
    pub(super) fn of(
        actor: &[u8],
        head: [u8; 32],
        rows: &[Row<'_>],
        order: &[usize],
        start: u64,
    ) -> Option<Self> {
        let object = |id, kind| Object {
            id,
            kind,
            members: Vec::new(),
            text: String::new(),
        };
        let mut objects = vec![object(0, ObjType::Map)];
        for (i, row) in rows.iter().enumerate() {
            if let Some(kind) = made(row) {
                objects.push(object(start + i as u64, kind));
            }
        }
        // Document order: objects in the order of their ids, each one's
        // members in key order (a map) or in order (a list or text).
        for &i in order {
            let row = &rows[i];
            let at = objects.binary_search_by_key(&row.obj, |o| o.id).ok()?;
            let object = &mut objects[at];
            if object.kind == ObjType::Text {
                // A string set, nothing else.
                if row.action != SET || row.meta & 0x0f != value_type::STRING {
                    return None;
                }
                object.text.push_str(std::str::from_utf8(row.value).ok()?);
                continue;
            }
            let item = match made(row) {
                Some(kind) => Item::Object(kind),
                None if row.action == SET => Item::Scalar(scalar(row.meta, row.value)?),
                None => return None,
            };
            let key = match row.key {
                Key::Map(k) => std::str::from_utf8(k).ok()?.to_owned(),
                Key::Seq(_) => String::new(),
            };
            object.members.push(Member {
                key,
                id: start + i as u64,
                item,
            });
        }
        Some(Self {
            actor: ActorId::from(actor),
            head: ChangeHash(head),
            objects,
            unsure: Cell::new(false),
        })
    }

    /// Whether it was asked something it does not answer as automerge
    /// would: what was read through it must be read from the document.
    pub(crate) fn unsure(&self) -> bool {
        self.unsure.get()
    }

    fn not_here<T>(&self, answer: T) -> T {
        self.unsure.set(true);
        answer
    }

    fn object(&self, obj: &ObjId) -> Option<&Object> {
        let id = match obj {
            ObjId::Root => 0,
            ObjId::Id(ctr, actor, _) if *actor == self.actor && *ctr > 0 => *ctr,
            ObjId::Id(..) => return None,
        };
        let at = self.objects.binary_search_by_key(&id, |o| o.id).ok()?;
        Some(&self.objects[at])
    }

    fn id(&self, ctr: u64) -> ObjId {
        ObjId::Id(ctr, self.actor.clone(), 0)
    }

    fn value<'a>(&self, member: &'a Member) -> (Value<'a>, ObjId) {
        let value = match &member.item {
            Item::Scalar(s) => Value::Scalar(Cow::Borrowed(s)),
            Item::Object(kind) => Value::Object(*kind),
        };
        (value, self.id(member.id))
    }
}

/// The kind of object `row` makes, if it makes one.
fn made(row: &Row<'_>) -> Option<ObjType> {
    match row.action {
        MAKE_MAP => Some(ObjType::Map),
        MAKE_LIST => Some(ObjType::List),
        MAKE_TEXT => Some(ObjType::Text),
        _ => None,
    }
}

/// A value from its metadata and bytes, if it is one whose reading is
/// certain: its type known and its bytes exactly what encoding the value
/// gives back (a number's shortest LEB128, a float's eight bytes, a
/// string's UTF-8).
fn scalar(meta: u64, bytes: &[u8]) -> Option<am::ScalarValue> {
    use value_type::*;
    if (meta >> 4) as usize != bytes.len() {
        return None;
    }
    let value = match meta & 0x0f {
        NULL => am::ScalarValue::Null,
        FALSE => am::ScalarValue::Boolean(false),
        TRUE => am::ScalarValue::Boolean(true),
        ULEB => {
            let n = super::Reader(bytes).uleb()?;
            let mut again = Vec::new();
            uleb(&mut again, n);
            (again == bytes).then_some(am::ScalarValue::Uint(n))?
        }
        LEB | TIMESTAMP => {
            let n = super::Reader(bytes).sleb()?;
            let mut again = Vec::new();
            sleb(&mut again, n);
            if again != bytes {
                return None;
            }
            if meta & 0x0f == LEB {
                am::ScalarValue::Int(n)
            } else {
                am::ScalarValue::Timestamp(n)
            }
        }
        FLOAT => am::ScalarValue::F64(f64::from_le_bytes(bytes.try_into().ok()?)),
        STRING => am::ScalarValue::Str(std::str::from_utf8(bytes).ok()?.into()),
        BYTES => am::ScalarValue::Bytes(bytes.to_vec()),
        _ => return None,
    };
    // Null and the booleans have no bytes.
    match value {
        am::ScalarValue::Null | am::ScalarValue::Boolean(_) if !bytes.is_empty() => None,
        v => Some(v),
    }
}

impl autosurgeon::ReadDoc for View {
    type Parents<'a> = std::iter::Empty<am::Parent>;

    fn get_heads(&self) -> Vec<ChangeHash> {
        vec![self.head]
    }

    fn get<P: Into<am::Prop>>(
        &self,
        obj: &ObjId,
        prop: P,
    ) -> Result<Option<(Value<'_>, ObjId)>, AutomergeError> {
        let Some(object) = self.object(obj) else {
            return Ok(self.not_here(None));
        };
        let member = match (prop.into(), object.kind) {
            (am::Prop::Map(key), ObjType::Map) => object
                .members
                .binary_search_by(|m| m.key.as_bytes().cmp(key.as_bytes()))
                .ok()
                .map(|at| &object.members[at]),
            (am::Prop::Seq(i), ObjType::List) => object.members.get(i),
            _ => return Ok(self.not_here(None)),
        };
        Ok(member.map(|m| self.value(m)))
    }

    fn object_type<O: AsRef<ObjId>>(&self, obj: O) -> Option<ObjType> {
        match self.object(obj.as_ref()) {
            Some(o) => Some(o.kind),
            None => self.not_here(None),
        }
    }

    fn map_range<'a, O, R>(&'a self, _obj: O, _range: R) -> am::iter::MapRange<'a>
    where
        R: RangeBounds<String> + 'a,
        O: AsRef<ObjId>,
    {
        self.not_here(am::iter::MapRange::default())
    }

    fn list_range<O: AsRef<ObjId>, R: RangeBounds<usize>>(
        &self,
        _obj: O,
        _range: R,
    ) -> am::iter::ListRange<'_> {
        self.not_here(am::iter::ListRange::default())
    }

    fn length<O: AsRef<ObjId>>(&self, obj: O) -> usize {
        match self.object(obj.as_ref()) {
            Some(o) if o.kind != ObjType::Text => o.members.len(),
            _ => self.not_here(0),
        }
    }

    fn text<O: AsRef<ObjId>>(&self, obj: O) -> Result<String, AutomergeError> {
        match self.object(obj.as_ref()) {
            Some(o) if o.kind == ObjType::Text => Ok(o.text.clone()),
            _ => Ok(self.not_here(String::new())),
        }
    }

    fn parents<O: AsRef<ObjId>>(&self, _obj: O) -> Result<Self::Parents<'_>, AutomergeError> {
        Ok(self.not_here(std::iter::empty()))
    }

    fn is_empty(&self) -> bool {
        false
    }
}

#[cfg(test)]
impl View {
    /// Whether it reads as automerge reads `doc` (the change it was read
    /// from, applied): every object's kind, every map's keys and values,
    /// every list's elements and every text, each value with its id, and
    /// nothing asked that it does not answer.
    pub(crate) fn reads_as(&self, doc: &automerge::Automerge) -> Result<(), String> {
        use automerge::ReadDoc as Doc;
        use autosurgeon::ReadDoc as Reads;
        fn walk(v: &super::View, doc: &automerge::Automerge, obj: &ObjId) -> Result<(), String> {
            let kind = Doc::object_type(doc, obj).map_err(|e| e.to_string())?;
            if Reads::object_type(v, obj) != Some(kind) {
                return Err(format!("{obj}: kind"));
            }
            let mut children = Vec::new();
            match kind {
                ObjType::Text => {
                    if Reads::text(v, obj).ok() != Doc::text(doc, obj).ok() {
                        return Err(format!("{obj}: text"));
                    }
                }
                ObjType::Map | ObjType::Table => {
                    if Reads::length(v, obj) != Doc::length(doc, obj) {
                        return Err(format!("{obj}: number of keys"));
                    }
                    for item in Doc::map_range(doc, obj, ..) {
                        let id = item.id();
                        let key = item.key.to_string();
                        let value = item.value.into_value();
                        let read = Reads::get(v, obj, key.as_str()).map_err(|e| e.to_string())?;
                        if read.as_ref() != Some(&(value.clone(), id.clone())) {
                            return Err(format!("{obj}: {key} is {read:?}, not {value:?}"));
                        }
                        if value.is_object() {
                            children.push(id);
                        }
                    }
                }
                ObjType::List => {
                    if Reads::length(v, obj) != Doc::length(doc, obj) {
                        return Err(format!("{obj}: length"));
                    }
                    for i in 0..Doc::length(doc, obj) {
                        let want = Doc::get(doc, obj, i).map_err(|e| e.to_string())?;
                        let read = Reads::get(v, obj, i).map_err(|e| e.to_string())?;
                        if read != want {
                            return Err(format!("{obj}[{i}] is {read:?}, not {want:?}"));
                        }
                        if let Some((value, id)) = want
                            && value.is_object()
                        {
                            children.push(id);
                        }
                    }
                }
            }
            children.iter().try_for_each(|c| walk(v, doc, c))
        }
        walk(self, doc, &automerge::ROOT)?;
        if Reads::get_heads(self) != doc.get_heads() {
            return Err("heads".into());
        }
        if self.unsure() {
            return Err("asked what it does not answer".into());
        }
        Ok(())
    }
}
