//! The tag of an internally tagged serde enum (`#[serde(tag = "...")]`) as a `&'static str`,
//! read from the enum's own derives: the names of all its variants from the derived
//! `Deserialize` (the list its error for an unknown tag carries), a value's own name from the
//! derived `Serialize` (the first field it writes). So a variant's name is written once, by the
//! enum's `rename_all`, and no hand-written `match` can fall out of step with the JSON.

use serde::de::value::MapDeserializer;
use serde::ser::{self, Impossible, Serialize};
use serde::{de, de::DeserializeOwned};
use std::fmt;

/// Every variant's name under `tag`, in the order `T` declares them, as `T`'s derived
/// `Deserialize` knows them. Panics if `T` is not an enum tagged by `tag`.
pub fn names<T: DeserializeOwned>(tag: &'static str) -> &'static [&'static str] {
    // A map whose tag names no variant: the derive refuses it with the list of those it knows.
    let probe = MapDeserializer::<_, Stop>::new(std::iter::once((tag, "\0")));
    match T::deserialize(probe) {
        Err(Stop::Names(names)) => names,
        _ => panic!("not an enum tagged by `{tag}`"),
    }
}

/// `value`'s variant name, the one of `names` that its derived `Serialize` writes first (an
/// internally tagged enum writes its tag before its fields; nothing after it is serialized).
/// Panics if it is none of `names`.
pub fn of<T: Serialize>(value: &T, names: &'static [&'static str]) -> &'static str {
    match value.serialize(First { names }) {
        Err(Stop::Name(name)) => name,
        _ => panic!("no tag among {names:?}"),
    }
}

/// How a probe ends: with what it looked for, or with nothing.
#[derive(Debug)]
enum Stop {
    /// Every variant's name.
    Names(&'static [&'static str]),
    /// One value's variant name.
    Name(&'static str),
    /// Not an internally tagged enum.
    Other,
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

impl std::error::Error for Stop {}

impl de::Error for Stop {
    fn custom<M: fmt::Display>(_: M) -> Self {
        Stop::Other
    }

    fn unknown_variant(_: &str, expected: &'static [&'static str]) -> Self {
        Stop::Names(expected)
    }
}

impl ser::Error for Stop {
    fn custom<M: fmt::Display>(_: M) -> Self {
        Stop::Other
    }
}

/// A serializer that reads the first field of a struct or map (the tag) and stops.
struct First {
    names: &'static [&'static str],
}

impl First {
    /// The tag's value, which must be one of `names`.
    fn name(&self, value: &(impl Serialize + ?Sized)) -> Stop {
        match value.serialize(First { names: self.names }) {
            Err(Stop::Name(name)) => Stop::Name(name),
            _ => Stop::Other,
        }
    }
}

/// The serializer methods that meet anything but a struct, a map or the tag's string.
macro_rules! not_a_tag {
    ($($method:ident($($arg:ty),*) -> $ok:ty;)*) => {
        $(fn $method(self, $(_: $arg),*) -> Result<$ok, Stop> {
            Err(Stop::Other)
        })*
    };
}

impl ser::Serializer for First {
    type Ok = ();
    type Error = Stop;
    type SerializeSeq = Impossible<(), Stop>;
    type SerializeTuple = Impossible<(), Stop>;
    type SerializeTupleStruct = Impossible<(), Stop>;
    type SerializeTupleVariant = Impossible<(), Stop>;
    type SerializeMap = First;
    type SerializeStruct = First;
    type SerializeStructVariant = Impossible<(), Stop>;

    fn serialize_str(self, v: &str) -> Result<(), Stop> {
        match self.names.iter().find(|n| **n == v) {
            Some(name) => Err(Stop::Name(name)),
            None => Err(Stop::Other),
        }
    }

    fn serialize_map(self, _: Option<usize>) -> Result<First, Stop> {
        Ok(self)
    }

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<First, Stop> {
        Ok(self)
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<(), Stop> {
        Err(Stop::Other)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, _: &T) -> Result<(), Stop> {
        Err(Stop::Other)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Stop> {
        Err(Stop::Other)
    }

    not_a_tag! {
        serialize_bool(bool) -> ();
        serialize_i8(i8) -> ();
        serialize_i16(i16) -> ();
        serialize_i32(i32) -> ();
        serialize_i64(i64) -> ();
        serialize_u8(u8) -> ();
        serialize_u16(u16) -> ();
        serialize_u32(u32) -> ();
        serialize_u64(u64) -> ();
        serialize_f32(f32) -> ();
        serialize_f64(f64) -> ();
        serialize_char(char) -> ();
        serialize_bytes(&[u8]) -> ();
        serialize_none() -> ();
        serialize_unit() -> ();
        serialize_unit_struct(&'static str) -> ();
        serialize_unit_variant(&'static str, u32, &'static str) -> ();
        serialize_seq(Option<usize>) -> Impossible<(), Stop>;
        serialize_tuple(usize) -> Impossible<(), Stop>;
        serialize_tuple_struct(&'static str, usize) -> Impossible<(), Stop>;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Impossible<(), Stop>;
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Impossible<(), Stop>;
    }
}

impl ser::SerializeStruct for First {
    type Ok = ();
    type Error = Stop;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, _: &'static str, value: &T) -> Result<(), Stop> {
        Err(self.name(value))
    }

    fn end(self) -> Result<(), Stop> {
        Err(Stop::Other)
    }
}

impl ser::SerializeMap for First {
    type Ok = ();
    type Error = Stop;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, _: &T) -> Result<(), Stop> {
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Stop> {
        Err(self.name(value))
    }

    fn end(self) -> Result<(), Stop> {
        Err(Stop::Other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize)]
    #[serde(tag = "kind", rename_all = "snake_case")]
    enum Shape {
        Dot,
        BigSquare {
            side: u32,
        },
        #[serde(rename = "ring")]
        Circle {
            #[serde(flatten)]
            at: std::collections::BTreeMap<String, u32>,
        },
    }

    #[test]
    fn the_names_and_a_values_name_come_from_the_derives() {
        let names = names::<Shape>("kind");
        assert_eq!(names, ["dot", "big_square", "ring"]);
        assert_eq!(of(&Shape::Dot, names), "dot");
        assert_eq!(of(&Shape::BigSquare { side: 2 }, names), "big_square");
        let ring = Shape::Circle {
            at: [("x".to_owned(), 1)].into(),
        };
        assert_eq!(of(&ring, names), "ring");
    }

    #[test]
    #[should_panic(expected = "not an enum tagged by `type`")]
    fn another_tag_is_refused() {
        names::<Shape>("type");
    }
}
