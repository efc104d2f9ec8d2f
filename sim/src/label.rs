//! [`Label`]: a short name (a node's, a command's, a fixed result) as the trace holds it, static
//! text where the name is the simulation's own. Below the trace and the network alike, which
//! both name nodes with it.

/// A short name as the trace holds it (an event's node, a Redis command's sender and name): text,
/// read as a `&str` (`as_str`, `Deref`), compared with strings, written as a string.
///
/// The names the simulation gives its own nodes (`redis`, `worker-3`, `sim`, `nemesis`, ...)
/// and its commands (`SET`, `EVALSHA:acquire`) are static text: every event carries its node's
/// name, and a copy of it per event was a percent of a run. Any other name (a trace read back,
/// a name given at run time) is owned.
///
/// ```
/// use sim::Label;
///
/// let node = Label::fixed("worker-1");
/// assert_eq!(node, "worker-1");
/// assert_eq!(node.as_str(), "worker-1");
/// assert!(node.starts_with("worker-")); // a `&str`'s methods, through `Deref`
/// assert_eq!(format!("[{node:<10}]"), "[worker-1  ]"); // padded as a string is
/// assert_eq!(serde_json::to_string(&node).unwrap(), r#""worker-1""#);
/// // A name read back (from a trace file) is owned, and equal to the static one.
/// let read_back: Label = serde_json::from_str(r#""worker-1""#).unwrap();
/// assert_eq!(read_back, node);
/// assert_eq!(String::from(read_back), "worker-1");
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Label(std::borrow::Cow<'static, str>);

impl Label {
    /// A label of static text (no copy).
    pub const fn fixed(name: &'static str) -> Self {
        Label(std::borrow::Cow::Borrowed(name))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for Label {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Label {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for Label {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl From<String> for Label {
    fn from(name: String) -> Self {
        Label(std::borrow::Cow::Owned(name))
    }
}

impl From<&str> for Label {
    fn from(name: &str) -> Self {
        Label(std::borrow::Cow::Owned(name.to_owned()))
    }
}

impl From<Label> for String {
    fn from(label: Label) -> String {
        label.0.into_owned()
    }
}

impl PartialEq<str> for Label {
    fn eq(&self, other: &str) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<&str> for Label {
    fn eq(&self, other: &&str) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<String> for Label {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<Label> for str {
    fn eq(&self, other: &Label) -> bool {
        *self == *other.0
    }
}

impl PartialEq<Label> for &str {
    fn eq(&self, other: &Label) -> bool {
        **self == *other.0
    }
}

impl PartialEq<Label> for String {
    fn eq(&self, other: &Label) -> bool {
        **self == *other.0
    }
}

/// As a `str`'s, width and alignment included (the human line pads the node's name).
impl std::fmt::Display for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(&self.0)
    }
}

impl serde::Serialize for Label {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Label {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Label::from)
    }
}

/// As a `String`'s (so an event's `Debug` text reads as before).
impl std::fmt::Debug for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&*self.0, f)
    }
}
