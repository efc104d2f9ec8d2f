//! The values stored under an event's key, written and read the way v2's Python code does.
//!
//! Records are `json.dumps(dict)` with Python's default separators (`", "`, `": "`), fields in
//! v2's order, timestamps as float seconds in Python's `repr`. `fenced` appends `owner` and
//! `fence` after v2's fields; v2 readers look only at `status` and `started_at`, so they read
//! fenced records the same way.

use crate::clock::unix_seconds;
use crate::key::EventKey;
use crate::pyjson::{self, PyValue};

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
    if surely_completed(value) {
        return RecordState::Completed;
    }
    parse_record_fully(value)
}

/// How every completed record written by v2 or by this crate starts.
const COMPLETED_PREFIX: &[u8] = b"{\"status\": \"completed\", ";

/// True when `value` reads as completed whatever follows its prefix, without parsing it: it
/// starts with `{"status": "completed", ` and the rest has no backslash (so every string in it
/// is spelled as it reads) and no `"status"` (so no later key replaces the status). Valid JSON
/// then has `status: completed`, and anything else is not JSON, which v2 reads as completed too.
fn surely_completed(value: &[u8]) -> bool {
    let Some(rest) = value.strip_prefix(COMPLETED_PREFIX) else {
        return false;
    };
    // memchr's vector search: the byte-window scan it replaces cost ~1,600 instructions a record.
    memchr::memchr(b'\\', rest).is_none() && memchr::memmem::find(rest, b"\"status\"").is_none()
}

/// [`parse_record`] by parsing the whole value, as v2 does.
fn parse_record_fully(value: &[u8]) -> RecordState {
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
        Some(PyValue::Str(s)) if s.eq_str("completed") => RecordState::Completed,
        Some(PyValue::Str(s)) if s.eq_str("processing") => RecordState::Processing {
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

/// A field name of a record: text that needs no JSON escaping, checked when the program is
/// compiled ([`field!`]), so the check costs nothing per record and holds in every profile.
#[derive(Clone, Copy)]
struct Name(&'static str);

impl Name {
    /// `name`, if it needs no escaping (printable ASCII, no quote, no backslash); a panic
    /// otherwise, which in a `const` is a compile error.
    const fn new(name: &'static str) -> Name {
        let b = name.as_bytes();
        let mut i = 0;
        while i < b.len() {
            assert!(
                b[i].is_ascii_graphic() && b[i] != b'"' && b[i] != b'\\',
                "a record's field name needs no escaping"
            );
            i += 1;
        }
        Name(name)
    }
}

/// A record's field name, checked at compile time.
macro_rules! field {
    ($name:literal) => {
        const { Name::new($name) }
    };
}

/// A record's text as `json.dumps(dict)` writes it, built field by field in the dict's order
/// (no intermediate dict: records are written on every delivery).
struct Fields {
    out: String,
}

impl Fields {
    fn new() -> Self {
        let mut out = String::with_capacity(320);
        out.push('{');
        Fields { out }
    }

    /// `"name": ` after the separator (a [`Name`] needs no escaping).
    fn name(&mut self, name: Name) -> &mut String {
        if self.out.len() > 1 {
            self.out.push_str(", ");
        }
        self.out.push('"');
        self.out.push_str(name.0);
        self.out.push_str("\": ");
        &mut self.out
    }

    fn text(&mut self, name: Name, value: &str) {
        pyjson::dumps_str_into(self.name(name), value);
    }

    fn seconds(&mut self, name: Name, us: i64) {
        seconds_repr_into(self.name(name), us);
    }

    fn int(&mut self, name: Name, value: u64) {
        self.name(name).push_str(itoa::Buffer::new().format(value));
    }

    /// The text without its closing brace, for records finished by someone else.
    fn open_text(self) -> String {
        self.out
    }

    fn finish(mut self) -> Vec<u8> {
        self.out.push('}');
        self.out.into_bytes()
    }
}

/// `repr(unix_us / 1e6)` as `json.dumps` writes it (`float_repr` of [`unix_seconds`]), every
/// record's timestamps.
///
/// From 0.1 s to 2^32 s (the year 2106) it is the seconds, a point and the microseconds without
/// their trailing zeros (at least one digit), written from the integers: there, doubles are
/// less than half a microsecond apart, so the double nearest to `us / 1e6` is nearer to it
/// than to any other multiple of a microsecond, and no decimal with fewer digits after the
/// point (all such are multiples of a microsecond) rounds to it; the microsecond text is the
/// shortest that reads back as that double, and Python writes it positionally (its exponent is
/// between -4 and 16). Elsewhere, [`pyjson::float_repr_into`] of the double.
fn seconds_repr_into(out: &mut String, us: i64) {
    const EXACT: std::ops::Range<i64> = 100_000..(1 << 32) * 1_000_000;
    if !EXACT.contains(&us) {
        pyjson::float_repr_into(out, unix_seconds(us));
        return;
    }
    let (secs, mut micros) = (us / 1_000_000, us % 1_000_000);
    out.push_str(itoa::Buffer::new().format(secs));
    out.push('.');
    if micros == 0 {
        out.push('0');
        return;
    }
    let mut width = 6;
    while micros % 10 == 0 {
        micros /= 10;
        width -= 1;
    }
    let mut buffer = itoa::Buffer::new();
    let digits = buffer.format(micros);
    for _ in digits.len()..width {
        out.push('0');
    }
    out.push_str(digits);
}

/// v2's fields, in v2's order.
fn base(status: &str, times: &[(Name, i64)], service: &str, id: &EventKey) -> Fields {
    let mut f = Fields::new();
    f.text(field!("status"), status);
    for &(name, us) in times {
        f.seconds(name, us);
    }
    f.text(field!("processed_by"), service);
    // `event_id`, `correlation_id`, `source_service`: written once per event (EventKey::new).
    f.out.push_str(", ");
    f.out.push_str(id.record_ids());
    f
}

/// v2's processing record, started at `now_us`.
pub fn processing(service: &str, id: &EventKey, now_us: i64) -> Vec<u8> {
    base("processing", &[(field!("started_at"), now_us)], service, id).finish()
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
    let mut f = base(
        "completed",
        &[(field!("started_at"), now_us), (field!("completed_at"), now_us)],
        service,
        id,
    );
    if let Some(o) = owner {
        f.text(field!("owner"), &o.token);
        f.int(field!("fence"), o.fence);
    }
    f.finish()
}

/// A `fenced` processing record split around its fencing token, which only Redis knows when the
/// record is written: `head + fence + tail` is the record.
pub fn processing_fenced_parts(
    service: &str,
    id: &EventKey,
    now_us: i64,
    owner_token: &str,
) -> (Vec<u8>, Vec<u8>) {
    let mut f = base("processing", &[(field!("started_at"), now_us)], service, id);
    f.text(field!("owner"), owner_token);
    f.name(field!("fence"));
    (f.open_text().into_bytes(), b"}".to_vec())
}

/// How every processing record starts: v2's and ours alike (`status` is the first field).
pub const PROCESSING_PREFIX: &[u8] = b"{\"status\": \"processing\", ";

/// The end of every record a `fenced` lease writes: `, "owner": "<token>", "fence": <fence>}`.
/// The owner token is unique per `process()` call, so this tail names the lease: the scripts
/// hold a key for a lease when its value is a processing record ending with it.
pub fn lease_tail(owner: &Owner) -> Vec<u8> {
    let mut f = Fields::new();
    f.text(field!("owner"), &owner.token);
    f.int(field!("fence"), owner.fence);
    let dict = f.finish();
    // `{"owner": ..., "fence": N}` → `, "owner": ..., "fence": N}`: the fields as they follow
    // v2's fields inside one dict.
    let mut tail = b", ".to_vec();
    tail.extend_from_slice(&dict[1..]);
    tail
}

/// A `fenced` processing record started (or renewed) at `now_us`: v2's processing record, then
/// the lease's owner and fence. Renewal rewrites it with the renewal time as `started_at`, so
/// that v2 readers, which judge staleness by `started_at` alone, see a live lease as live.
pub fn processing_fenced(service: &str, id: &EventKey, now_us: i64, owner: &Owner) -> Vec<u8> {
    let mut v = processing(service, id, now_us);
    let closing = v.pop();
    assert_eq!(closing, Some(b'}'));
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
    v.extend_from_slice(itoa::Buffer::new().format(fence).as_bytes());
    v.extend_from_slice(tail);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The timestamps written from integers read as `repr(float)` of the double, on the edges
    /// of the exact range, on microseconds with every number of trailing zeros, and on a
    /// million random times across the range and around today.
    #[test]
    fn timestamps_from_integers_are_the_floats_repr() {
        use rand::{Rng, SeedableRng};
        let via_float = |us: i64| pyjson::float_repr(unix_seconds(us));
        let via_ints = |us: i64| {
            let mut out = String::new();
            seconds_repr_into(&mut out, us);
            out
        };
        let top = (1i64 << 32) * 1_000_000;
        let mut cases = vec![
            0,
            1,
            99_999,
            100_000,
            100_001,
            999_999,
            1_000_000,
            top - 1,
            top,
            top + 1,
            -1_500_000,
        ];
        for zeros in 0..7 {
            let micros = 123_456 / 10i64.pow(zeros) * 10i64.pow(zeros);
            cases.push(1_764_315_323_000_000 + micros);
        }
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(42);
        for _ in 0..500_000 {
            cases.push(rng.gen_range(0..top + 1_000_000));
            cases.push(1_764_315_200_000_000 + rng.gen_range(0..400_000_000_000));
        }
        for us in cases {
            assert_eq!(via_ints(us), via_float(us), "{us} µs");
        }
    }

    /// The shortcut for completed records reads every value as the full parse does: the
    /// records this crate writes, and values built to trip a prefix check (a later `status`,
    /// one spelled with an escape, broken JSON, other statuses).
    #[test]
    fn the_completed_shortcut_reads_as_the_full_parse() {
        let id = crate::key::derive_key(
            "p",
            "svc",
            &crate::Message::new(
                "t",
                br#"{"event_id": "e1", "event_type": "a.b", "data": {}}"#.to_vec(),
            ),
        )
        .unwrap();
        let owner = Owner {
            token: "worker-1#1/2".into(),
            fence: 7,
        };
        let mut values: Vec<Vec<u8>> = vec![
            completed("svc", &id, 1_700_000_000_123_456),
            completed_fenced("svc", &id, 1_700_000_000_123_456, &owner),
            processing("svc", &id, 1_700_000_000_123_456),
            processing_fenced("svc", &id, 1_700_000_000_123_456, &owner),
        ];
        for tail in [
            r#""a": 1}"#,
            r#""status": "processing", "started_at": 5.0}"#,
            r#""st\u0061tus": "processing"}"#,
            r#""x": {"status": "processing"}}"#,
            r#""a": 1"#,
            r#""a": "\"status\""}"#,
            "}",
            "",
        ] {
            values.push(format!("{{\"status\": \"completed\", {tail}").into_bytes());
        }
        let mut shortcuts = 0;
        for v in &values {
            assert_eq!(
                parse_record(v),
                parse_record_fully(v),
                "{}",
                String::from_utf8_lossy(v)
            );
            shortcuts += usize::from(surely_completed(v));
        }
        assert!(shortcuts >= 4, "the shortcut was taken {shortcuts} times");
        assert!(!surely_completed(
            br#"{"status": "completed", "status": "processing"}"#
        ));
        assert_eq!(
            parse_record(br#"{"status": "completed", "status": "processing"}"#),
            RecordState::Processing {
                started_at: None,
                fence: None
            }
        );
    }

    /// A field name that would need escaping is refused: at compile time through [`field!`],
    /// and by the same check when [`Name::new`] runs at run time.
    #[test]
    #[should_panic(expected = "needs no escaping")]
    fn a_field_name_that_needs_escaping_is_refused() {
        Name::new(std::hint::black_box("a\"b"));
    }

    /// What the fenced scripts rely on: the record an acquire writes (head, token, tail) holds
    /// the lease whose tail names the same owner and token, for any token and hostile owner;
    /// and no other owner's or token's. (A property of these pure functions, checked here
    /// rather than on every acquire.)
    #[test]
    fn an_acquired_record_holds_its_own_lease_and_no_other() {
        let id = crate::key::derive_key(
            "p",
            "svc",
            &crate::Message::new(
                "t",
                br#"{"event_id": "e\u00e9", "event_type": "a.b", "data": {}}"#.to_vec(),
            ),
        )
        .unwrap();
        for token in ["host/1", "h\"o\\st/\u{e9}/2", ""] {
            for fence in [1, 1_764_315_206_000_000, u64::MAX] {
                let (head, tail) = processing_fenced_parts("svc", &id, 1_700_000_000_123_456, token);
                let record = join_fenced(&head, fence, &tail);
                let owner = Owner {
                    token: token.to_owned(),
                    fence,
                };
                assert!(holds_lease(&record, &lease_tail(&owner)), "{token} {fence}");
                assert_eq!(
                    record,
                    processing_fenced("svc", &id, 1_700_000_000_123_456, &owner)
                );
                let other = Owner {
                    token: format!("{token}x"),
                    fence,
                };
                assert!(!holds_lease(&record, &lease_tail(&other)));
                let later = Owner {
                    token: token.to_owned(),
                    fence: fence.wrapping_add(1),
                };
                assert!(!holds_lease(&record, &lease_tail(&later)));
            }
        }
    }
}
