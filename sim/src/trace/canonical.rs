//! The canonical JSON of a serde value, written straight to bytes: every object's keys sorted
//! (nested objects too), everything else exactly as `serde_json` writes it.
//!
//! It gives the bytes `serde_json::to_value(v)?.to_string()` gives (a `Value`'s objects are
//! sorted maps), without building the `Value`: no map node, key `String` or `Value` per field,
//! and scalars go through `serde_json`'s own writer, so escapes and numbers cannot differ. The
//! trace's fingerprint hashes this form of every event, so a seed's canonical lines cost what
//! writing them costs. Objects are gathered as (key, bytes) entries and sorted; a key written
//! twice keeps its last value, as a map insert does.

use serde::ser::{self, Impossible, Serialize};
use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

/// Why a value has no canonical JSON (a map key that is not a string or a number, or a
/// `serde_json` error): the trace's values never meet one.
#[derive(Debug)]
pub struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error(msg.to_string())
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error(e.to_string())
    }
}

/// An object's entries: each key (a struct field's name is borrowed, not copied) with where
/// its value's canonical bytes lie in the object's scratch buffer.
type Entries = Vec<(Cow<'static, str>, Range<usize>)>;

/// An object's fields, sorted by key, each value in canonical bytes.
pub struct Fields {
    scratch: Vec<u8>,
    entries: Entries,
}

impl Fields {
    /// Each key with its value's bytes, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.entries
            .iter()
            .map(|(k, r)| (k.as_ref(), &self.scratch[r.clone()]))
    }
}

/// The top-level object of `value`, its fields sorted by key; `None` when `value` is not an
/// object.
pub fn entries<T: Serialize + ?Sized>(value: &T) -> Result<Option<Fields>, Error> {
    let mut out = Vec::new();
    match value.serialize(Writer {
        out: &mut out,
        top: true,
    })? {
        Written::Object(fields) => Ok(Some(fields)),
        Written::Other => Ok(None),
    }
}

/// `value`'s canonical JSON appended to `out`.
pub fn write<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), Error> {
    value.serialize(Writer { out, top: false })?;
    Ok(())
}

/// What a [`Writer`] did: wrote its value, or (at the top, when asked) handed an object's
/// sorted entries back unwritten.
enum Written {
    Other,
    Object(Fields),
}

struct Writer<'a> {
    out: &'a mut Vec<u8>,
    /// Whether an object is handed back as entries instead of written.
    top: bool,
}

impl Writer<'_> {
    fn scalar<T: Serialize + ?Sized>(self, v: &T) -> Result<Written, Error> {
        serde_json::to_writer(&mut *self.out, v)?;
        Ok(Written::Other)
    }

    /// A bool or an integer, as `serde_json` writes it.
    fn number<T: Serialize>(self, v: T) -> Result<Written, Error> {
        self.scalar(&v)
    }
}

/// `entries` sorted by key, each key once with its last value: a map insert's rule.
fn sorted(mut entries: Entries) -> Entries {
    // A stable sort keeps equal keys in the order written; the last of a run wins.
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out: Entries = Vec::with_capacity(entries.len());
    for entry in entries {
        match out.last_mut() {
            Some(last) if last.0 == entry.0 => *last = entry,
            _ => out.push(entry),
        }
    }
    out
}

/// Writes `fields` as an object.
fn write_object(fields: &Fields, out: &mut Vec<u8>) {
    out.push(b'{');
    for (i, (key, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut *out, key).expect("a key writes");
        out.push(b':');
        out.extend_from_slice(value);
    }
    out.push(b'}');
}

/// One entry `key` holding `value`'s bytes: an externally tagged variant's object.
fn one_entry(key: &'static str, value: Vec<u8>) -> Fields {
    let len = value.len();
    Fields {
        scratch: value,
        entries: vec![(Cow::Borrowed(key), 0..len)],
    }
}

/// An object being gathered: its entries (values written one after another in `scratch`), the
/// key waiting for its value, and whether it is handed back (top) or written when it ends.
/// `wrap` is the variant name an externally tagged variant's object sits under.
struct Object<'a> {
    out: &'a mut Vec<u8>,
    top: bool,
    scratch: Vec<u8>,
    entries: Entries,
    key: Option<Cow<'static, str>>,
    wrap: Option<&'static str>,
}

impl<'a> Object<'a> {
    fn new(out: &'a mut Vec<u8>, top: bool, wrap: Option<&'static str>) -> Self {
        Object {
            out,
            top,
            scratch: Vec::with_capacity(128),
            entries: Vec::with_capacity(8),
            key: None,
            wrap,
        }
    }

    fn field<T: Serialize + ?Sized>(&mut self, key: Cow<'static, str>, value: &T) -> Result<(), Error> {
        let start = self.scratch.len();
        write(value, &mut self.scratch)?;
        self.entries.push((key, start..self.scratch.len()));
        Ok(())
    }

    fn finish(self) -> Result<Written, Error> {
        let fields = Fields {
            scratch: self.scratch,
            entries: sorted(self.entries),
        };
        let fields = match self.wrap {
            Some(variant) => {
                let mut inner = Vec::new();
                write_object(&fields, &mut inner);
                one_entry(variant, inner)
            }
            None => fields,
        };
        if self.top {
            return Ok(Written::Object(fields));
        }
        write_object(&fields, self.out);
        Ok(Written::Other)
    }
}

/// A sequence being written: its elements in order (a tuple variant's sit under its name).
struct Seq<'a> {
    out: &'a mut Vec<u8>,
    top: bool,
    items: Vec<u8>,
    empty: bool,
    wrap: Option<&'static str>,
}

impl<'a> Seq<'a> {
    fn new(out: &'a mut Vec<u8>, top: bool, wrap: Option<&'static str>) -> Self {
        Seq {
            out,
            top,
            items: vec![b'['],
            empty: true,
            wrap,
        }
    }

    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        if !self.empty {
            self.items.push(b',');
        }
        self.empty = false;
        write(value, &mut self.items)
    }

    fn finish(mut self) -> Result<Written, Error> {
        self.items.push(b']');
        match self.wrap {
            Some(variant) => {
                let fields = one_entry(variant, self.items);
                if self.top {
                    return Ok(Written::Object(fields));
                }
                write_object(&fields, self.out);
            }
            None => self.out.extend_from_slice(&self.items),
        }
        Ok(Written::Other)
    }
}

/// Serializer methods for scalars that each hand their value to one function of the serializer.
macro_rules! scalars {
    ($via:ident: $($method:ident($t:ty)),+ $(,)?) => {$(
        fn $method(self, v: $t) -> Result<Self::Ok, Error> {
            self.$via(v)
        }
    )+};
}

impl<'a> ser::Serializer for Writer<'a> {
    scalars!(
        number: serialize_bool(bool), serialize_i8(i8), serialize_i16(i16), serialize_i32(i32),
        serialize_i64(i64), serialize_i128(i128), serialize_u8(u8), serialize_u16(u16),
        serialize_u32(u32), serialize_u64(u64), serialize_u128(u128),
    );

    type Ok = Written;
    type Error = Error;
    type SerializeSeq = Seq<'a>;
    type SerializeTuple = Seq<'a>;
    type SerializeTupleStruct = Seq<'a>;
    type SerializeTupleVariant = Seq<'a>;
    type SerializeMap = Object<'a>;
    type SerializeStruct = Object<'a>;
    type SerializeStructVariant = Object<'a>;

    fn serialize_f32(self, v: f32) -> Result<Written, Error> {
        // A `Value` holds an f32 as the f64 it widens to.
        self.serialize_f64(f64::from(v))
    }
    fn serialize_f64(self, v: f64) -> Result<Written, Error> {
        // A `Value` has no NaN or infinity: they become null.
        match serde_json::Number::from_f64(v) {
            Some(n) => self.scalar(&n),
            None => self.scalar(&()),
        }
    }
    fn serialize_char(self, v: char) -> Result<Written, Error> {
        self.scalar(&v)
    }
    fn serialize_str(self, v: &str) -> Result<Written, Error> {
        self.scalar(v)
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Written, Error> {
        self.scalar(v)
    }
    fn serialize_none(self) -> Result<Written, Error> {
        self.scalar(&())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Written, Error> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<Written, Error> {
        self.scalar(&())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<Written, Error> {
        self.scalar(&())
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<Written, Error> {
        self.scalar(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<Written, Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Written, Error> {
        let mut object = Object::new(self.out, self.top, None);
        object.field(Cow::Borrowed(variant), value)?;
        object.finish()
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Seq<'a>, Error> {
        Ok(Seq::new(self.out, false, None))
    }
    fn serialize_tuple(self, _len: usize) -> Result<Seq<'a>, Error> {
        Ok(Seq::new(self.out, false, None))
    }
    fn serialize_tuple_struct(self, _name: &'static str, _len: usize) -> Result<Seq<'a>, Error> {
        Ok(Seq::new(self.out, false, None))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Seq<'a>, Error> {
        Ok(Seq::new(self.out, self.top, Some(variant)))
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Object<'a>, Error> {
        Ok(Object::new(self.out, self.top, None))
    }
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Object<'a>, Error> {
        Ok(Object::new(self.out, self.top, None))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Object<'a>, Error> {
        Ok(Object::new(self.out, self.top, Some(variant)))
    }
}

/// A sequence's compound traits: each element goes through [`Seq::element`].
macro_rules! sequence {
    ($($trait:ident :: $method:ident),+ $(,)?) => {$(
        impl ser::$trait for Seq<'_> {
            type Ok = Written;
            type Error = Error;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
                self.element(value)
            }
            fn end(self) -> Result<Written, Error> {
                self.finish()
            }
        }
    )+};
}

sequence!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field,
);

impl ser::SerializeMap for Object<'_> {
    type Ok = Written;
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.key = Some(Cow::Owned(key.serialize(KeyWriter)?));
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let key = self
            .key
            .take()
            .ok_or_else(|| Error("a map value before its key".into()))?;
        self.field(key, value)
    }
    fn end(self) -> Result<Written, Error> {
        self.finish()
    }
}

impl ser::SerializeStruct for Object<'_> {
    type Ok = Written;
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), Error> {
        self.field(Cow::Borrowed(key), value)
    }
    fn end(self) -> Result<Written, Error> {
        self.finish()
    }
}

impl ser::SerializeStructVariant for Object<'_> {
    type Ok = Written;
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), Error> {
        self.field(Cow::Borrowed(key), value)
    }
    fn end(self) -> Result<Written, Error> {
        self.finish()
    }
}

/// A map key as the string a `Value` keys it by: a string as itself, a number or a bool as its
/// text, as `serde_json` does; anything else is refused.
struct KeyWriter;

impl KeyWriter {
    fn text(self, v: impl fmt::Display) -> Result<String, Error> {
        Ok(v.to_string())
    }
    fn refuse<T>() -> Result<T, Error> {
        Err(Error("a map key must be a string or a number".into()))
    }
}

impl ser::Serializer for KeyWriter {
    scalars!(
        text: serialize_bool(bool), serialize_i8(i8), serialize_i16(i16), serialize_i32(i32),
        serialize_i64(i64), serialize_u8(u8), serialize_u16(u16), serialize_u32(u32),
        serialize_u64(u64), serialize_char(char),
    );

    type Ok = String;
    type Error = Error;
    type SerializeSeq = Impossible<String, Error>;
    type SerializeTuple = Impossible<String, Error>;
    type SerializeTupleStruct = Impossible<String, Error>;
    type SerializeTupleVariant = Impossible<String, Error>;
    type SerializeMap = Impossible<String, Error>;
    type SerializeStruct = Impossible<String, Error>;
    type SerializeStructVariant = Impossible<String, Error>;

    fn serialize_f32(self, _v: f32) -> Result<String, Error> {
        Self::refuse()
    }
    fn serialize_f64(self, _v: f64) -> Result<String, Error> {
        Self::refuse()
    }
    fn serialize_str(self, v: &str) -> Result<String, Error> {
        Ok(v.to_owned())
    }
    fn serialize_bytes(self, _v: &[u8]) -> Result<String, Error> {
        Self::refuse()
    }
    fn serialize_none(self) -> Result<String, Error> {
        Self::refuse()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result<String, Error> {
        Self::refuse()
    }
    fn serialize_unit(self) -> Result<String, Error> {
        Self::refuse()
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<String, Error> {
        Self::refuse()
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<String, Error> {
        Ok(variant.to_owned())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<String, Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<String, Error> {
        Self::refuse()
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        Self::refuse()
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, Error> {
        Self::refuse()
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, Error> {
        Self::refuse()
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Self::refuse()
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, Error> {
        Self::refuse()
    }
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Self::SerializeStruct, Error> {
        Self::refuse()
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Self::refuse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;
    use std::collections::BTreeMap;

    fn via_value<T: Serialize>(v: &T) -> String {
        serde_json::to_value(v).unwrap().to_string()
    }

    fn canonical<T: Serialize>(v: &T) -> String {
        let mut out = Vec::new();
        write(v, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[derive(Serialize)]
    #[serde(tag = "kind", rename_all = "snake_case")]
    enum Tagged {
        Zeta {
            z: u64,
            a: String,
            #[serde(flatten)]
            extra: BTreeMap<String, i64>,
            nested: Inner,
        },
        Unit,
    }

    #[derive(Serialize)]
    struct Inner {
        y: Option<f64>,
        b: Vec<Outer>,
        c: (u8, char),
        nan: f64,
    }

    #[derive(Serialize)]
    enum Outer {
        New(u32),
        Tuple(u8, String),
        Struct { q: bool, p: () },
        Plain,
    }

    /// The same bytes as through a `serde_json::Value`, for every shape serde has: nested and
    /// flattened objects, a tag, variants of every kind, escapes, floats, NaN, map keys.
    #[test]
    fn it_writes_what_a_value_writes() {
        let v = Tagged::Zeta {
            z: u64::MAX,
            a: "quote \" backslash \\ newline \n tab \t bell \u{7} delete \u{7f} é ☃".into(),
            extra: [("m".to_owned(), -1), ("b".to_owned(), 2)].into(),
            nested: Inner {
                y: Some(0.1 + 0.2),
                b: vec![
                    Outer::New(7),
                    Outer::Tuple(1, "x".into()),
                    Outer::Struct { q: true, p: () },
                    Outer::Plain,
                ],
                c: (255, '"'),
                nan: f64::NAN,
            },
        };
        assert_eq!(canonical(&v), via_value(&v));
        assert_eq!(canonical(&Tagged::Unit), via_value(&Tagged::Unit));
        let keyed: BTreeMap<u32, Vec<f32>> = [(10, vec![1.5, f32::INFINITY]), (9, vec![])].into();
        assert_eq!(canonical(&keyed), via_value(&keyed), "number keys sort as text");
        let top = entries(&v).unwrap().unwrap();
        let keys: Vec<&str> = top.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["a", "b", "kind", "m", "nested", "z"]);
        assert!(entries(&7u8).unwrap().is_none(), "a number is not an object");
    }
}
