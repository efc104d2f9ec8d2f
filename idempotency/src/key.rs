//! The event's identity and its Redis key, derived exactly as the Python v2 services derive them.
//!
//! `{key_prefix}:{service_name}:{event_type with '.' -> '_'}:{sha256 hex}`. The hash comes from the
//! `event_id` header when both `event_id` and `event_type` headers are present (the body is then
//! never parsed), otherwise from the JSON body alone through CPython-exact
//! `json.dumps(x, sort_keys=True)` (see [`crate::pyjson`]); which other fields come from headers
//! and which from the body depends on which header is missing (see [`derive_key`]). The two
//! paths give different keys for the same event: that is v2's weakness E, kept on purpose so
//! that both sides find each other's records.
//!
//! Every message v2 cannot key (a body that is not a JSON object, a missing or null `data`, a
//! null `event_type`, ...) is a [`KeyError`]: v2 runs its handler without idempotency, and
//! [`crate::Consumer`] does the same under `fail_open`.
//!
//! One deliberate difference from v2: an event type that would break the key's structure
//! (`:`), match as a glob (`*?[]`), carry whitespace or control characters or exceed
//! [`MAX_NAME_BYTES`] is rejected with [`KeyError::HostileEventType`] where v2 would build a key
//! from it. Such a key can collide with another event type's keys or match other keys in
//! `SCAN`/`KEYS` patterns; no legitimate v2 event type looks like that. (An *empty* event type
//! is v2's own `...:service::hash` and is accepted.)

use crate::message::Message;
use crate::pyjson::{self, JsonError, PyDict, PyValue};
use sha2::{Digest, Sha256};
use std::fmt;

/// The longest service name, event type or key prefix accepted, in bytes.
pub const MAX_NAME_BYTES: usize = 256;

/// Which part of the message the key was derived from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyPath {
    /// Both `event_id` and `event_type` headers were present; the body was not parsed.
    Header,
    /// The JSON envelope in the message value.
    Body,
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyPath::Header => "header",
            KeyPath::Body => "body",
        })
    }
}

/// An event's identity: its Redis key and the fields v2 copies into its records.
#[derive(Clone, Debug, PartialEq)]
pub struct EventKey {
    /// The Redis key, byte for byte what v2 computes.
    pub key: String,
    /// Where the identity came from.
    pub path: KeyPath,
    /// The event type as read (dots not replaced).
    pub event_type: String,
    event_id: PyValue,
    correlation_id: PyValue,
    source_service: PyValue,
    /// `"event_id": .., "correlation_id": .., "source_service": ..` as every record of the event
    /// writes them: serialized once, where each record used to serialize them again. (The ids
    /// are private so that this text cannot fall out of step with them.)
    record_ids: String,
}

impl EventKey {
    /// An identity from its parts (as [`derive_key`] builds it; for tests and tools that need
    /// one without a message).
    pub fn new(
        key: String,
        path: KeyPath,
        event_type: String,
        event_id: PyValue,
        correlation_id: PyValue,
        source_service: PyValue,
    ) -> Self {
        let mut record_ids = String::with_capacity(160);
        for (name, value) in [
            ("\"event_id\": ", &event_id),
            (", \"correlation_id\": ", &correlation_id),
            (", \"source_service\": ", &source_service),
        ] {
            record_ids.push_str(name);
            pyjson::dumps_into(&mut record_ids, value, false);
        }
        EventKey {
            key,
            path,
            event_type,
            event_id,
            correlation_id,
            source_service,
            record_ids,
        }
    }

    /// The event id as v2 records it: the header's string, or the body's value (any JSON), or
    /// null.
    pub fn event_id(&self) -> &PyValue {
        &self.event_id
    }

    /// The correlation id as v2 records it (see [`derive_key`] for where it comes from).
    pub fn correlation_id(&self) -> &PyValue {
        &self.correlation_id
    }

    /// The source service as v2 records it (see [`derive_key`]; `null` when absent on the
    /// header path or `null` in the body).
    pub fn source_service(&self) -> &PyValue {
        &self.source_service
    }

    /// The three ids as the records write them, in v2's order, with v2's separators.
    pub(crate) fn record_ids(&self) -> &str {
        &self.record_ids
    }

    /// The event id as text, for logs and traces: the string itself, or the JSON of a non-string
    /// id, or `None` when the event has no id.
    pub fn event_id_text(&self) -> Option<String> {
        match &self.event_id {
            PyValue::Null => None,
            PyValue::Str(s) => Some(
                s.to_string_lossless()
                    .unwrap_or_else(|| pyjson::dumps(&self.event_id, false)),
            ),
            other => Some(pyjson::dumps(other, false)),
        }
    }
}

/// Why a message has no key. v2 processes such a message without idempotency.
#[derive(Clone, Debug, PartialEq)]
pub enum KeyError {
    /// A header the key depends on is not UTF-8.
    HeaderNotUtf8 {
        /// The header's name.
        name: String,
    },
    /// The body is needed and is not valid UTF-8.
    BodyNotUtf8,
    /// The body is needed and is not JSON.
    BodyNotJson(JsonError),
    /// The body holds an integer longer than CPython accepts (4300 digits).
    IntTooLong,
    /// The body nests deeper than [`pyjson`] follows.
    TooDeep,
    /// The body is JSON but not an object.
    BodyNotObject,
    /// The envelope's `data` is missing or null.
    DataMissing,
    /// The envelope's `event_type` is `null`: v2 cannot build the key.
    EventTypeNull,
    /// The envelope's `event_type` is not a string (or holds a lone surrogate).
    EventTypeNotString,
    /// The event type would make a malformed or dangerous key (see the module documentation).
    HostileEventType {
        /// The event type, as read.
        event_type: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl KeyError {
    /// A stable short name for the error, used in traces and by the differential test.
    pub fn kind(&self) -> &'static str {
        match self {
            KeyError::HeaderNotUtf8 { .. } => "header_not_utf8",
            KeyError::BodyNotUtf8 => "body_not_utf8",
            KeyError::BodyNotJson(_) => "body_not_json",
            KeyError::IntTooLong => "int_too_long",
            KeyError::TooDeep => "too_deep",
            KeyError::BodyNotObject => "body_not_object",
            KeyError::DataMissing => "data_missing",
            KeyError::EventTypeNull => "event_type_null",
            KeyError::EventTypeNotString => "event_type_not_string",
            KeyError::HostileEventType { .. } => "hostile_event_type",
        }
    }
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::HeaderNotUtf8 { name } => write!(f, "header `{name}` is not UTF-8"),
            KeyError::BodyNotUtf8 => f.write_str("message value is not UTF-8"),
            KeyError::BodyNotJson(e) => write!(f, "message value is not JSON: {e}"),
            KeyError::IntTooLong => f.write_str("message value holds an integer over 4300 digits"),
            KeyError::TooDeep => f.write_str("message value nests too deeply"),
            KeyError::BodyNotObject => f.write_str("message value is not a JSON object"),
            KeyError::DataMissing => f.write_str("envelope field `data` is missing or null"),
            KeyError::EventTypeNull => f.write_str("envelope field `event_type` is null"),
            KeyError::EventTypeNotString => f.write_str("envelope field `event_type` is not a string"),
            KeyError::HostileEventType { event_type, reason } => {
                write!(f, "event type {event_type:?} {reason}")
            }
        }
    }
}

impl std::error::Error for KeyError {}

/// Checks a name that becomes one segment of a key (service name, event type): returns what is
/// wrong with it, or `None` when it is fine. `allow_colon` is for the key prefix, which is itself
/// several segments.
pub fn name_problem(name: &str, allow_colon: bool) -> Option<&'static str> {
    if name.is_empty() {
        return Some("is empty");
    }
    if name.len() > MAX_NAME_BYTES {
        return Some("is longer than 256 bytes");
    }
    // Names of printable ASCII without a separator or glob character (all of them in practice)
    // are fine at a glance; `char_problem` gives the same answer for each of their bytes.
    if name
        .bytes()
        .all(|b| b.is_ascii_graphic() && !matches!(b, b':' | b'*' | b'?' | b'[' | b']'))
    {
        return None;
    }
    char_problem(name, allow_colon)
}

/// [`name_problem`]'s verdict on the characters of `name`, one by one.
fn char_problem(name: &str, allow_colon: bool) -> Option<&'static str> {
    for c in name.chars() {
        if c == ':' && !allow_colon {
            return Some("contains ':', the key's separator");
        }
        if matches!(c, '*' | '?' | '[' | ']') {
            return Some("contains a glob character (* ? [ ])");
        }
        if c.is_whitespace() || c.is_control() {
            return Some("contains whitespace or a control character");
        }
    }
    None
}

/// The headers v2 reads: a non-empty value, decoded as UTF-8. The last occurrence wins.
fn header_text(msg: &Message, name: &str) -> Result<Option<String>, KeyError> {
    match msg.header(name) {
        None | Some([]) => Ok(None),
        Some(bytes) => match std::str::from_utf8(bytes) {
            Ok(s) => Ok(Some(s.to_owned())),
            Err(_) => Err(KeyError::HeaderNotUtf8 {
                name: name.to_owned(),
            }),
        },
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(bytes);
    let mut out = [0u8; 64];
    for (pair, b) in out.chunks_exact_mut(2).zip(digest) {
        pair[0] = HEX[usize::from(b >> 4)];
        pair[1] = HEX[usize::from(b & 0xf)];
    }
    std::str::from_utf8(&out).expect("hex digits").to_owned()
}

fn body_envelope(msg: &Message) -> Result<PyDict, KeyError> {
    match pyjson::loads(&msg.value) {
        Ok(PyValue::Dict(d)) => Ok(d),
        Ok(_) => Err(KeyError::BodyNotObject),
        Err(JsonError::NotUtf8) => Err(KeyError::BodyNotUtf8),
        Err(JsonError::IntTooLong) => Err(KeyError::IntTooLong),
        Err(JsonError::TooDeep) => Err(KeyError::TooDeep),
        Err(e @ JsonError::Syntax { .. }) => Err(KeyError::BodyNotJson(e)),
    }
}

/// The body's value under `name`, as Python's `body.get(name, default)` reads it: a key that is
/// present keeps its value, even `null` or `""`.
fn get_or(body: &PyDict, name: &str, default: PyValue) -> PyValue {
    body.get(name).cloned().unwrap_or(default)
}

/// Derives the key of `msg` for `service_name` under `key_prefix`, as v2 does, branch for branch
/// (`docs/v2-protocol.md`, "Where event_id / event_type come from"):
///
/// | headers present            | event type            | hash of                       | ids in the records                          |
/// |----------------------------|-----------------------|-------------------------------|---------------------------------------------|
/// | `event_id` and `event_type`| header                | `{"event_id":<header id>}`    | headers (`trace_id`, `source_service`), else null |
/// | `event_id` only            | body, else `unknown`  | body: `data` (+ body `event_id`) | header id; `trace_id` header, else body; header, else body, else `unknown` |
/// | no `event_id`              | body, else `unknown`  | body: `data` (+ body `event_id`) | body only, every header ignored             |
///
/// `key_prefix` and `service_name` are the caller's configuration and are not checked here
/// (see [`crate::config::Config::validate`]); everything read from the message is.
pub fn derive_key(key_prefix: &str, service_name: &str, msg: &Message) -> Result<EventKey, KeyError> {
    let h_event_id = header_text(msg, "event_id")?;
    let h_event_type = header_text(msg, "event_type")?;
    let h_trace_id = header_text(msg, "trace_id")?;
    let h_source = header_text(msg, "source_service")?;
    let header = |h: &Option<String>| h.as_deref().map(PyValue::str);

    let (path, event_type, event_id, correlation_id, source_service, hash) =
        match (&h_event_id, &h_event_type) {
            (Some(id), Some(et)) => {
                // `json.dumps({"event_id": id}, sort_keys=True, separators=(",", ":"))`.
                let mut text = String::with_capacity(id.len() + 16);
                text.push_str("{\"event_id\":");
                pyjson::dumps_str_into(&mut text, id);
                text.push('}');
                let hash = sha256_hex(text.as_bytes());
                let correlation = header(&h_trace_id).unwrap_or(PyValue::Null);
                let source = header(&h_source).unwrap_or(PyValue::Null);
                (
                    KeyPath::Header,
                    et.clone(),
                    PyValue::str(id),
                    correlation,
                    source,
                    hash,
                )
            }
            _ => {
                let body = body_envelope(msg)?;
                let unknown = || PyValue::str("unknown");
                let (event_id, correlation, source) = match &h_event_id {
                    // No `event_id` header: every header is ignored, even `event_type`.
                    None => (
                        get_or(&body, "event_id", PyValue::Null),
                        get_or(&body, "correlation_id", PyValue::Null),
                        get_or(&body, "source_service", unknown()),
                    ),
                    Some(id) => (
                        PyValue::str(id),
                        header(&h_trace_id).unwrap_or_else(|| get_or(&body, "correlation_id", PyValue::Null)),
                        header(&h_source).unwrap_or_else(|| get_or(&body, "source_service", unknown())),
                    ),
                };
                let data = match body.get("data") {
                    None | Some(PyValue::Null) => return Err(KeyError::DataMissing),
                    Some(d) => d,
                };
                let event_type = match get_or(&body, "event_type", unknown()) {
                    PyValue::Null => return Err(KeyError::EventTypeNull),
                    PyValue::Str(s) => s.to_string_lossless().ok_or(KeyError::EventTypeNotString)?,
                    _ => return Err(KeyError::EventTypeNotString),
                };
                // The hash reads the body's own id, never the header's: `json.dumps(x,
                // sort_keys=True)` of `{"data": data, "event_id": id}` (keys in sorted order as
                // written) when the id is truthy, else of `data` alone.
                let mut text = String::with_capacity(msg.value.len());
                match body.get("event_id") {
                    Some(body_id) if body_id.is_truthy() => {
                        text.push_str("{\"data\": ");
                        pyjson::dumps_into(&mut text, data, true);
                        text.push_str(", \"event_id\": ");
                        pyjson::dumps_into(&mut text, body_id, true);
                        text.push('}');
                    }
                    _ => pyjson::dumps_into(&mut text, data, true),
                }
                let hash = sha256_hex(text.as_bytes());
                (KeyPath::Body, event_type, event_id, correlation, source, hash)
            }
        };

    if let Some(reason) = event_type_problem(&event_type) {
        return Err(KeyError::HostileEventType { event_type, reason });
    }
    // `{prefix}:{service}:{event_type with '.' as '_'}:{hash}`, joined by hand (the
    // formatter and `str::replace` cost a tenth of deriving a key).
    let mut key =
        String::with_capacity(key_prefix.len() + service_name.len() + event_type.len() + hash.len() + 3);
    for part in [key_prefix, ":", service_name, ":"] {
        key.push_str(part);
    }
    // The event type with each '.' as '_', a run between dots at a time (a `char` at a time
    // cost ~900 instructions a key).
    for (i, part) in event_type.split('.').enumerate() {
        if i > 0 {
            key.push('_');
        }
        key.push_str(part);
    }
    key.push(':');
    key.push_str(&hash);
    Ok(EventKey::new(
        key,
        path,
        event_type,
        event_id,
        correlation_id,
        source_service,
    ))
}

/// What is wrong with an event type as a key segment. Unlike a service name it may be empty:
/// v2 builds `...:service::hash` from a body's `"event_type": ""`, and so do we.
pub fn event_type_problem(event_type: &str) -> Option<&'static str> {
    if event_type.is_empty() {
        None
    } else {
        name_problem(event_type, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "huleedu:idempotency:v2";

    fn body(json: &str) -> Message {
        Message::new("t", json.as_bytes().to_vec())
    }

    #[test]
    fn the_header_path_hashes_the_event_id_alone_and_never_parses_the_body() {
        let msg = Message::new("t", b"\xff not json".to_vec())
            .with_header("event_id", "abc")
            .with_header("event_type", "huleedu.essay.spellcheck.requested.v1");
        let k = derive_key(P, "svc", &msg).unwrap();
        assert_eq!(k.path, KeyPath::Header);
        assert_eq!(
            k.key,
            format!(
                "{P}:svc:huleedu_essay_spellcheck_requested_v1:{}",
                sha256_hex(br#"{"event_id":"abc"}"#)
            )
        );
    }

    #[test]
    fn the_body_path_hashes_data_and_event_id_with_pythons_separators() {
        let k = derive_key(
            P,
            "svc",
            &body(r#"{"event_id": "e1", "event_type": "a.b", "data": {"z": 1, "a": [1.0]}}"#),
        )
        .unwrap();
        assert_eq!(k.path, KeyPath::Body);
        let x = r#"{"data": {"a": [1.0], "z": 1}, "event_id": "e1"}"#;
        assert_eq!(k.key, format!("{P}:svc:a_b:{}", sha256_hex(x.as_bytes())));
        // A falsy event id hashes data alone.
        let k = derive_key(P, "svc", &body(r#"{"event_id": "", "data": [1]}"#)).unwrap();
        assert_eq!(k.key, format!("{P}:svc:unknown:{}", sha256_hex(b"[1]")));
    }

    #[test]
    fn messages_without_a_key_get_a_typed_error() {
        let cases: &[(&[u8], &str)] = &[
            (b"not json", "body_not_json"),
            (b"\xff\xfe", "body_not_utf8"),
            (b"[1]", "body_not_object"),
            (br#"{"event_id": "e"}"#, "data_missing"),
            (br#"{"event_id": "e", "data": null}"#, "data_missing"),
            (br#"{"event_type": 5, "data": 1}"#, "event_type_not_string"),
            (br#"{"event_type": "\ud800", "data": 1}"#, "event_type_not_string"),
        ];
        for (value, kind) in cases {
            let err = derive_key(P, "svc", &Message::new("t", value.to_vec())).unwrap_err();
            assert_eq!(err.kind(), *kind, "{}", String::from_utf8_lossy(value));
        }
        let msg = body(r#"{"data": 1}"#).with_header("event_type", b"\xc3".to_vec());
        assert_eq!(
            derive_key(P, "svc", &msg).unwrap_err(),
            KeyError::HeaderNotUtf8 {
                name: "event_type".into()
            }
        );
    }

    /// The ASCII shortcut of `name_problem` agrees with the character-by-character check on
    /// every ASCII character, with and without colons allowed.
    #[test]
    fn the_ascii_shortcut_judges_names_as_the_full_check_does() {
        for b in 0..=127u8 {
            let name = format!("a{}b", char::from(b));
            for allow_colon in [false, true] {
                assert_eq!(
                    name_problem(&name, allow_colon),
                    char_problem(&name, allow_colon),
                    "{name:?}"
                );
            }
        }
    }

    #[test]
    fn hostile_event_types_are_rejected_where_v2_would_build_a_broken_key() {
        let long = "a".repeat(MAX_NAME_BYTES + 1);
        let both = |et: &str| {
            body(r#"{"data": 1}"#)
                .with_header("event_id", "e")
                .with_header("event_type", et)
        };
        for et in [
            "a:b",
            "a*",
            "a?",
            "a[b]",
            "a b",
            "a\nb",
            "a\tb",
            "\u{85}",
            long.as_str(),
        ] {
            let err = derive_key(P, "svc", &both(et)).unwrap_err();
            assert_eq!(err.kind(), "hostile_event_type", "{et:?}");
            assert!(err.to_string().contains("event type"), "{err}");
            // The body path too.
            let json = format!(
                r#"{{"event_type": {}, "data": 1}}"#,
                pyjson::dumps(&PyValue::str(et), false)
            );
            assert_eq!(
                derive_key(P, "svc", &body(&json)).unwrap_err().kind(),
                "hostile_event_type"
            );
        }
        let fine = "a".repeat(MAX_NAME_BYTES);
        assert!(derive_key(P, "svc", &both(&fine)).is_ok());
        assert!(derive_key(P, "svc", &both("ünï.cödé")).is_ok());
    }

    fn hash_of(x: &str) -> String {
        sha256_hex(x.as_bytes())
    }

    #[test]
    fn only_an_event_id_header_hashes_the_body_and_records_the_header_id() {
        let msg = body(r#"{"event_id": "body-id", "event_type": "b.t", "correlation_id": "c", "source_service": "s", "data": 1}"#)
            .with_header("event_id", "header-id");
        let k = derive_key(P, "svc", &msg).unwrap();
        assert_eq!(k.path, KeyPath::Body);
        assert_eq!(
            k.key,
            format!("{P}:svc:b_t:{}", hash_of(r#"{"data": 1, "event_id": "body-id"}"#))
        );
        assert_eq!(
            k.event_id,
            PyValue::str("header-id"),
            "the records carry the header's id"
        );
        assert_eq!(
            (k.correlation_id, k.source_service),
            (PyValue::str("c"), PyValue::str("s"))
        );
        // Without a body id the hash is of data alone, whatever the header says.
        let msg = body(r#"{"data": [1]}"#).with_header("event_id", "header-id");
        let k = derive_key(P, "svc", &msg).unwrap();
        assert_eq!(k.key, format!("{P}:svc:unknown:{}", hash_of("[1]")));
        assert_eq!(k.event_id, PyValue::str("header-id"));
        assert_eq!(k.source_service, PyValue::str("unknown"));
        // trace_id and source_service headers win over the body's.
        let msg = body(r#"{"correlation_id": "c", "source_service": null, "data": 1}"#)
            .with_header("event_id", "h")
            .with_header("trace_id", "t")
            .with_header("source_service", "hs");
        let k = derive_key(P, "svc", &msg).unwrap();
        assert_eq!(
            (k.correlation_id, k.source_service),
            (PyValue::str("t"), PyValue::str("hs"))
        );
        let msg = body(r#"{"source_service": null, "data": 1}"#).with_header("event_id", "h");
        assert_eq!(derive_key(P, "svc", &msg).unwrap().source_service, PyValue::Null);
    }

    #[test]
    fn without_an_event_id_header_every_header_is_ignored() {
        let json = r#"{"event_id": "e", "event_type": "body.type", "data": 1}"#;
        let plain = derive_key(P, "svc", &body(json)).unwrap();
        let msg = body(json)
            .with_header("event_type", "header.type")
            .with_header("trace_id", "t")
            .with_header("source_service", "hs");
        let k = derive_key(P, "svc", &msg).unwrap();
        assert_eq!(k, plain);
        assert_eq!(k.event_type, "body.type");
        assert_eq!(
            (k.correlation_id, k.source_service),
            (PyValue::Null, PyValue::str("unknown"))
        );
    }

    #[test]
    fn present_keys_keep_their_value_and_null_event_types_have_no_key() {
        let k = derive_key(
            P,
            "essay_lifecycle_service",
            &body(r#"{"event_type": "", "data": 1}"#),
        )
        .unwrap();
        assert_eq!(
            k.key,
            format!("{P}:essay_lifecycle_service::{}", hash_of("1")),
            "an empty type segment"
        );
        let k = derive_key(P, "svc", &body(r#"{"source_service": null, "data": 1}"#)).unwrap();
        assert_eq!(k.source_service, PyValue::Null);
        for json in [r#"{"event_type": null, "data": 1}"#, r#"{"event_type": null}"#] {
            let kind = derive_key(P, "svc", &body(json)).unwrap_err().kind();
            assert!(
                matches!(kind, "event_type_null" | "data_missing"),
                "{json}: {kind}"
            );
        }
        let msg = body(r#"{"event_type": null, "data": 1}"#).with_header("event_id", "h");
        assert_eq!(derive_key(P, "svc", &msg).unwrap_err(), KeyError::EventTypeNull);
        // Both headers: the body is never read, so nothing in it matters.
        let msg = body("null")
            .with_header("event_id", "h")
            .with_header("event_type", "t");
        let k = derive_key(P, "svc", &msg).unwrap();
        assert_eq!(
            (k.correlation_id, k.source_service),
            (PyValue::Null, PyValue::Null)
        );
    }

    #[test]
    fn the_last_occurrence_of_a_header_wins_and_empty_counts_as_absent() {
        let msg = body(r#"{"event_id": "body-id", "event_type": "body.type", "data": 1}"#)
            .with_header("event_type", "first.type")
            .with_header("event_id", "first")
            .with_header("event_type", "last.type")
            .with_header("event_id", "");
        let k = derive_key(P, "svc", &msg).unwrap();
        assert_eq!(k.path, KeyPath::Body, "the last event_id header is empty: absent");
        assert_eq!(k.event_type, "body.type", "and so every header is ignored");
        assert_eq!(k.event_id, PyValue::str("body-id"));
    }
}
