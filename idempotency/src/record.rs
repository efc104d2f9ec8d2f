//! The values stored under an event's key, written and read the way v2's Python code does.
//!
//! Records are `json.dumps(dict)` with Python's default separators (`", "`, `": "`), fields in
//! v2's order, timestamps as float seconds in Python's `repr`. `fenced` appends `owner` and
//! `fence` after v2's fields; v2 readers look only at `status` and `started_at`, so they read
//! fenced records the same way.

use crate::clock::unix_seconds;
use crate::key::EventKey;
use crate::pyjson::{self, PyDict, PyStr, PyValue};

/// How a reader interprets a stored value.
#[derive(Clone, Debug, PartialEq)]
pub enum RecordState {
    /// `status: completed`; also a value that is not JSON (legacy), not an object, or an object
    /// without `status` (all read as completed by v2).
    Completed,
    /// `status: processing`.
    Processing {
        /// `started_at` in float seconds, when present and a number (v2 counts a missing one as 0).
        started_at: Option<f64>,
        /// The fencing token, for records written by `fenced`.
        fence: Option<u64>,
    },
    /// A `status` that is neither (v2 neither skips nor takes over such a key).
    Other(String),
}

/// Reads a stored value as v2 does.
pub fn parse_record(value: &[u8]) -> RecordState {
    let Ok(PyValue::Dict(d)) = pyjson::loads(value) else {
        return RecordState::Completed;
    };
    let number = |v: Option<&PyValue>| match v {
        Some(PyValue::Float(f)) => Some(*f),
        Some(PyValue::Int(i)) => i.parse::<f64>().ok(),
        _ => None,
    };
    match d.get("status") {
        None => RecordState::Completed,
        Some(PyValue::Str(s)) if s == &PyStr::from_str("completed") => RecordState::Completed,
        Some(PyValue::Str(s)) if s == &PyStr::from_str("processing") => RecordState::Processing {
            started_at: number(d.get("started_at")),
            fence: match d.get("fence") {
                Some(PyValue::Int(i)) => i.parse().ok(),
                _ => None,
            },
        },
        Some(other) => RecordState::Other(pyjson::dumps(other, false)),
    }
}

/// The owner of a `fenced` lease, written into its records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    /// Unique per `process()` call.
    pub token: String,
    /// The fencing token Redis handed out.
    pub fence: u64,
}

fn base(status: &str, times: &[(&str, i64)], service: &str, id: &EventKey) -> PyDict {
    let mut d = PyDict::new();
    d.insert(PyStr::from_str("status"), PyValue::str(status));
    for (name, us) in times {
        d.insert(PyStr::from_str(name), PyValue::Float(unix_seconds(*us)));
    }
    d.insert(PyStr::from_str("processed_by"), PyValue::str(service));
    d.insert(PyStr::from_str("event_id"), id.event_id.clone());
    d.insert(PyStr::from_str("correlation_id"), id.correlation_id.clone());
    d.insert(PyStr::from_str("source_service"), id.source_service.clone());
    d
}

/// v2's processing record, started at `now_us`.
pub fn processing(service: &str, id: &EventKey, now_us: i64) -> Vec<u8> {
    pyjson::dumps(
        &PyValue::Dict(base("processing", &[("started_at", now_us)], service, id)),
        false,
    )
    .into_bytes()
}

/// v2's completed record, confirmed at `now_us` (`started_at` is the confirm time, as in v2).
pub fn completed(service: &str, id: &EventKey, now_us: i64) -> Vec<u8> {
    completed_dict(service, id, now_us, None)
}

/// A `fenced` completed record: v2's fields, then the owner and its fencing token.
pub fn completed_fenced(service: &str, id: &EventKey, now_us: i64, owner: &Owner) -> Vec<u8> {
    completed_dict(service, id, now_us, Some(owner))
}

fn completed_dict(service: &str, id: &EventKey, now_us: i64, owner: Option<&Owner>) -> Vec<u8> {
    let mut d = base(
        "completed",
        &[("started_at", now_us), ("completed_at", now_us)],
        service,
        id,
    );
    if let Some(o) = owner {
        d.insert(PyStr::from_str("owner"), PyValue::str(&o.token));
        d.insert(PyStr::from_str("fence"), PyValue::Int(o.fence.to_string()));
    }
    pyjson::dumps(&PyValue::Dict(d), false).into_bytes()
}

/// A `fenced` processing record split around its fencing token, which only Redis knows when the
/// record is written: `head + fence + tail` is the record.
pub fn processing_fenced_parts(
    service: &str,
    id: &EventKey,
    now_us: i64,
    owner_token: &str,
) -> (Vec<u8>, Vec<u8>) {
    let mut d = base("processing", &[("started_at", now_us)], service, id);
    d.insert(PyStr::from_str("owner"), PyValue::str(owner_token));
    let mut head = pyjson::dumps(&PyValue::Dict(d), false);
    let closing = head.pop();
    debug_assert_eq!(closing, Some('}'));
    head.push_str(", \"fence\": ");
    (head.into_bytes(), b"}".to_vec())
}

/// How every processing record starts: v2's and ours alike (`status` is the first field).
pub const PROCESSING_PREFIX: &[u8] = b"{\"status\": \"processing\", ";

/// The end of every record a `fenced` lease writes: `, "owner": "<token>", "fence": <fence>}`.
/// The owner token is unique per `process()` call, so this tail names the lease: the scripts
/// hold a key for a lease when its value is a processing record ending with it.
pub fn lease_tail(owner: &Owner) -> Vec<u8> {
    let mut d = PyDict::new();
    d.insert(PyStr::from_str("owner"), PyValue::str(&owner.token));
    d.insert(PyStr::from_str("fence"), PyValue::Int(owner.fence.to_string()));
    let dict = pyjson::dumps(&PyValue::Dict(d), false);
    // `{"owner": ..., "fence": N}` → `, "owner": ..., "fence": N}`: the fields as they follow
    // v2's fields inside one dict.
    let mut tail = b", ".to_vec();
    tail.extend_from_slice(&dict.as_bytes()[1..]);
    tail
}

/// A `fenced` processing record started (or renewed) at `now_us`: v2's processing record, then
/// the lease's owner and fence. Renewal rewrites it with the renewal time as `started_at`, so
/// that v2 readers, which judge staleness by `started_at` alone, see a live lease as live.
pub fn processing_fenced(service: &str, id: &EventKey, now_us: i64, owner: &Owner) -> Vec<u8> {
    let mut v = processing(service, id, now_us);
    let closing = v.pop();
    debug_assert_eq!(closing, Some(b'}'));
    v.extend_from_slice(&lease_tail(owner));
    v
}

/// Whether `value` is a processing record of the lease whose tail is `lease` (see
/// [`lease_tail`]): what the fenced scripts check before they renew, confirm or release.
pub fn holds_lease(value: &[u8], lease: &[u8]) -> bool {
    !lease.is_empty() && value.starts_with(PROCESSING_PREFIX) && value.ends_with(lease)
}

/// Joins a split processing record with its fencing token.
pub fn join_fenced(head: &[u8], fence: u64, tail: &[u8]) -> Vec<u8> {
    let mut v = head.to_vec();
    v.extend_from_slice(fence.to_string().as_bytes());
    v.extend_from_slice(tail);
    v
}
