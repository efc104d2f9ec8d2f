//! The event's identity and its Redis key, derived exactly as the Python v2 services derive them.
//!
//! `{key_prefix}:{service_name}:{event_type with '.' -> '_'}:{sha256 hex}`. The hash comes from the
//! headers when both `event_id` and `event_type` headers are present (the body is then never
//! parsed), otherwise from the JSON body through CPython-exact `json.dumps(x, sort_keys=True)`
//! (see [`crate::pyjson`]). The two paths give different keys for the same event: that is v2's
//! weakness E, kept on purpose so that both sides find each other's records.
//!
//! One deliberate difference from v2: an event type that would break the key's structure
//! (`:`), match as a glob (`*?[]`), carry whitespace or control characters, be empty or exceed
//! [`MAX_NAME_BYTES`] is rejected with [`KeyError::HostileEventType`] where v2 would build a key
//! from it. Such a key can collide with another event type's keys or match other keys in
//! `SCAN`/`KEYS` patterns; no legitimate v2 event type looks like that.

use crate::message::Message;
use crate::pyjson::{self, JsonError, PyDict, PyStr, PyValue};
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
    /// The event id as v2 records it: the header's string, or the body's value (any JSON), or null.
    pub event_id: PyValue,
    /// The correlation id as v2 records it (`trace_id` header, else the body's `correlation_id`).
    pub correlation_id: PyValue,
    /// The source service as v2 records it (header, else body, else `"unknown"`).
    pub source_service: PyValue,
}

impl EventKey {
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
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push(char::from_digit((b >> 4) as u32, 16).expect("nibble"));
        out.push(char::from_digit((b & 0xf) as u32, 16).expect("nibble"));
    }
    out
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

/// Derives the key of `msg` for `service_name` under `key_prefix`, as v2 does.
///
/// `key_prefix` and `service_name` are the caller's configuration and are not checked here
/// (see [`crate::config::Config::validate`]); everything read from the message is.
pub fn derive_key(key_prefix: &str, service_name: &str, msg: &Message) -> Result<EventKey, KeyError> {
    let h_event_id = header_text(msg, "event_id")?;
    let h_event_type = header_text(msg, "event_type")?;
    let h_trace_id = header_text(msg, "trace_id")?;
    let h_source = header_text(msg, "source_service")?;

    let (path, event_type, event_id, correlation_id, source_service, hash) =
        if let (Some(id), Some(et)) = (&h_event_id, &h_event_type) {
            let mut x = PyDict::new();
            x.insert(PyStr::from_str("event_id"), PyValue::str(id));
            let hash = sha256_hex(pyjson::dumps_compact(&PyValue::Dict(x), true).as_bytes());
            (KeyPath::Header, et.clone(), PyValue::str(id), None, None, hash)
        } else {
            let body = body_envelope(msg)?;
            let data = match body.get("data") {
                None | Some(PyValue::Null) => return Err(KeyError::DataMissing),
                Some(d) => d.clone(),
            };
            let event_id = match &h_event_id {
                Some(id) => PyValue::str(id),
                None => body.get("event_id").cloned().unwrap_or(PyValue::Null),
            };
            let event_type = match &h_event_type {
                Some(et) => et.clone(),
                None => match body.get("event_type") {
                    None | Some(PyValue::Null) => "unknown".to_owned(),
                    Some(PyValue::Str(s)) if s.0.is_empty() => "unknown".to_owned(),
                    Some(PyValue::Str(s)) => s.to_string_lossless().ok_or(KeyError::EventTypeNotString)?,
                    Some(_) => return Err(KeyError::EventTypeNotString),
                },
            };
            let x = if event_id.is_truthy() {
                let mut x = PyDict::new();
                x.insert(PyStr::from_str("data"), data);
                x.insert(PyStr::from_str("event_id"), event_id.clone());
                PyValue::Dict(x)
            } else {
                data
            };
            let hash = sha256_hex(pyjson::dumps(&x, true).as_bytes());
            let correlation = body.get("correlation_id").cloned();
            let source = match body.get("source_service") {
                None | Some(PyValue::Null) => None,
                Some(v) => Some(v.clone()),
            };
            (KeyPath::Body, event_type, event_id, correlation, source, hash)
        };

    if let Some(reason) = name_problem(&event_type, false) {
        return Err(KeyError::HostileEventType { event_type, reason });
    }
    let key = format!(
        "{key_prefix}:{service_name}:{}:{hash}",
        event_type.replace('.', "_")
    );
    Ok(EventKey {
        key,
        path,
        event_type,
        event_id,
        correlation_id: h_trace_id
            .map(|t| PyValue::str(&t))
            .or(correlation_id)
            .unwrap_or(PyValue::Null),
        source_service: h_source
            .map(|s| PyValue::str(&s))
            .or(source_service)
            .unwrap_or_else(|| PyValue::str("unknown")),
    })
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

    #[test]
    fn hostile_event_types_are_rejected_where_v2_would_build_a_broken_key() {
        let long = "a".repeat(MAX_NAME_BYTES + 1);
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
            let msg = body(r#"{"data": 1}"#).with_header("event_type", et);
            let err = derive_key(P, "svc", &msg).unwrap_err();
            assert_eq!(err.kind(), "hostile_event_type", "{et:?}");
            assert!(err.to_string().contains("event type"), "{err}");
        }
        let fine = "a".repeat(MAX_NAME_BYTES);
        assert!(derive_key(P, "svc", &body(r#"{"data": 1}"#).with_header("event_type", fine)).is_ok());
        assert!(derive_key(
            P,
            "svc",
            &body(r#"{"data": 1}"#).with_header("event_type", "ünï.cödé")
        )
        .is_ok());
    }

    #[test]
    fn headers_take_precedence_and_the_last_occurrence_wins() {
        let msg =
            body(r#"{"event_id": "body-id", "event_type": "body.type", "correlation_id": "c", "data": 1}"#)
                .with_header("event_type", "first.type")
                .with_header("event_type", "")
                .with_header("event_type", "last.type")
                .with_header("trace_id", "trace");
        let k = derive_key(P, "svc", &msg).unwrap();
        assert_eq!(k.path, KeyPath::Body, "event_id header absent: body path");
        assert_eq!(k.event_type, "last.type");
        assert_eq!(k.event_id, PyValue::str("body-id"));
        assert_eq!(k.correlation_id, PyValue::str("trace"));
        assert_eq!(k.source_service, PyValue::str("unknown"));
    }
}
