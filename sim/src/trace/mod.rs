//! The run's history: every meaningful step as an event, in the order it happened.
//!
//! Events are stamped with virtual microseconds since the run started and the node that saw
//! them. The canonical form is JSON lines with sorted keys (`t_us`, `node`, `kind` first); its
//! SHA-256 is the run's fingerprint, so the same seed and build must give the same bytes. The
//! human form (one aligned line per event) is what `-v` prints and snapshots hold.

mod canonical;
pub mod event;
pub(crate) mod log;
mod tag;

pub use event::{typed, AcquireOutcome, Typed};

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

/// One step of the history: what happened ([`Typed`]), when, and where.
///
/// The event is kept as data, so readers (the checkers, the diagram) match it without parsing;
/// its fields by name ([`Event::fields`], from [`Typed`]'s serde form) are made only for the
/// canonical JSON line and the human line, and [`Event::parse`] reads a line back.
///
/// ```
/// use sim::Event;
///
/// let r = sim::Sim::new("duplicate-detection").unwrap().run(1);
/// let first: &Event = &r.events[0];
/// assert_eq!((first.t_us, first.node.as_str(), first.kind()), (0, "sim", "config"));
/// // The canonical JSON line (a trace file's, and what the fingerprint hashes) reads back.
/// assert!(first.json().starts_with(r#"{"t_us":0,"node":"sim","kind":"config","#));
/// for e in &r.events {
///     assert_eq!(Event::parse(&e.json()).unwrap(), *e);
/// }
/// // The human line, as `sim -v` prints it.
/// let end = r.events.iter().find(|e| e.kind() == "handler_end").unwrap();
/// assert_eq!(end.node, "worker-1");
/// assert!(end.human().ends_with("call=1 result=ok"));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Virtual microseconds since the start of the run.
    pub t_us: u64,
    /// The node that recorded it (`redis`, `worker-1`, `nemesis`, ...).
    pub node: Label,
    /// What happened.
    pub what: Typed,
}

impl Event {
    /// What happened (`deliver`, `redis`, `effect_applied`, ...).
    pub fn kind(&self) -> &'static str {
        self.what.kind()
    }

    /// The event as data.
    pub fn typed(&self) -> &Typed {
        &self.what
    }

    /// Everything but the time, node and kind, by name, as the canonical line has them.
    pub fn fields(&self) -> event::Fields {
        self.what.fields()
    }

    /// The canonical JSON line (no newline): `t_us`, `node` and `kind`, then the event's other
    /// fields sorted by name (nested objects too).
    pub fn json(&self) -> String {
        let fields = canonical::entries(&self.what)
            .expect("an event serializes")
            .expect("an event is an object");
        let kind = fields
            .iter()
            .find_map(|(k, v)| (k == "kind").then_some(v))
            .expect("an event has a kind");
        let mut out = Vec::with_capacity(256);
        std::io::Write::write_fmt(&mut out, format_args!("{{\"t_us\":{},\"node\":", self.t_us))
            .expect("write to a Vec");
        serde_json::to_writer(&mut out, self.node.as_str()).expect("a name writes");
        out.extend_from_slice(b",\"kind\":");
        out.extend_from_slice(kind);
        for (k, v) in fields.iter().filter(|(k, _)| *k != "kind") {
            out.push(b',');
            serde_json::to_writer(&mut out, k).expect("a key writes");
            out.push(b':');
            out.extend_from_slice(v);
        }
        out.push(b'}');
        String::from_utf8(out).expect("JSON is UTF-8")
    }

    /// Reads a canonical line ([`Event::json`]) back; an error names what is wrong with it.
    pub fn parse(line: &str) -> Result<Event, String> {
        let mut fields: event::Fields = serde_json::from_str(line).map_err(|e| e.to_string())?;
        let mut take = |name: &str| fields.remove(name).ok_or_else(|| format!("no `{name}`"));
        let t_us = take("t_us")?;
        let t_us = t_us
            .as_u64()
            .ok_or_else(|| format!("`t_us` = {t_us}: not a time in µs"))?;
        let node = match take("node")? {
            Value::String(node) => Label::from(node),
            other => return Err(format!("`node` = {other}: not a node's name")),
        };
        let what = match take("kind")? {
            Value::String(kind) => Typed::parse(&kind, &fields)?,
            other => return Err(format!("`kind` = {other}: not a kind")),
        };
        Ok(Event { t_us, node, what })
    }

    /// The human line: time in ms, node, kind, then `name=value` pairs, the event first, long
    /// values shortened (a key's hash to 8 digits, an event id to its first group, records to
    /// 60 characters). The JSON line keeps everything.
    pub fn human(&self) -> String {
        let mut out = format!(
            "{:>12.3}ms {:<10} {:<15}",
            self.t_us as f64 / 1000.0,
            self.node,
            self.kind()
        );
        let fields = self.fields();
        let first = ["event_id", "cmd", "key"];
        let ordered = first
            .iter()
            .filter_map(|k| fields.get_key_value(*k))
            .chain(fields.iter().filter(|(k, _)| !first.contains(&k.as_str())));
        for (k, v) in ordered {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            write!(out, " {k}={}", shorten(k, &text)).expect("write to string");
        }
        out.truncate(out.trim_end().len());
        out
    }
}

/// Shortens a value for the human form.
fn shorten(name: &str, text: &str) -> String {
    if name == "event_id" && text.len() == 36 && text.as_bytes()[8] == b'-' {
        return text[..8].to_owned();
    }
    if name == "key" {
        // `prefix:service:event_type:hash` -> `event_type:hash8`: the rest is the same all run.
        let parts: Vec<&str> = text.rsplitn(3, ':').collect();
        if let [hash, event_type, _] = parts.as_slice() {
            return format!("{event_type}:{}", &hash[..hash.len().min(8)]);
        }
    }
    if text.chars().count() > 60 {
        return text.chars().take(59).collect::<String>() + "…";
    }
    text.to_owned()
}

/// The shared, append-only history of one run. Cheap to clone (all clones append to one log).
#[derive(Clone, Default)]
pub struct Trace {
    events: Arc<Mutex<Vec<Event>>>,
    clock: Arc<RunClock>,
}

pub use crate::label::Label;
pub use crate::net::timer::RunClock;

impl Trace {
    /// An empty trace with room for `events` events (a run knows about how many it makes:
    /// growing the log by doubling copied every event about once more).
    pub fn with_capacity(events: usize) -> Self {
        Trace {
            events: Arc::new(Mutex::new(Vec::with_capacity(events))),
            clock: Arc::default(),
        }
    }

    /// Virtual microseconds since the run started: [`now_us`], through the run's clock.
    pub fn now_us(&self) -> u64 {
        self.clock.now_us()
    }

    /// The run's clock, shared with the nodes' wall clocks.
    pub fn clock(&self) -> Arc<RunClock> {
        self.clock.clone()
    }

    /// Appends `what`, seen by `node`, stamped with the current virtual time.
    pub fn emit(&self, node: &str, what: Typed) {
        self.emit_as(Label::from(node), what);
    }

    /// [`Trace::emit`] for a node name the caller already owns (no copy).
    pub fn emit_owned(&self, node: String, what: Typed) {
        self.emit_as(Label::from(node), what);
    }

    /// [`Trace::emit`] for a node's label (a static name costs no copy: see [`Label`]).
    pub fn emit_as(&self, node: Label, what: Typed) {
        let t_us = self.now_us();
        let mut events = self.events.lock().expect("trace lock");
        assert!(
            events.last().is_none_or(|e| e.t_us <= t_us),
            "virtual time went back"
        );
        let event = Event { t_us, node, what };
        tracing::debug!(target: "sim::trace", "{}", event.human());
        events.push(event);
    }

    /// A copy of every event so far.
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().expect("trace lock").clone()
    }

    /// Every event so far, taken out (the log goes on empty): for judging a run that is over,
    /// without copying its history.
    pub fn take(&self) -> Vec<Event> {
        std::mem::take(&mut *self.events.lock().expect("trace lock"))
    }

    /// The virtual time of the last event, if any.
    pub fn last_t_us(&self) -> Option<u64> {
        self.events.lock().expect("trace lock").last().map(|e| e.t_us)
    }

    /// The number of events so far.
    pub fn len(&self) -> usize {
        self.events.lock().expect("trace lock").len()
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Virtual microseconds since the run started (0 outside a simulation).
pub fn now_us() -> u64 {
    madsim::time::TimeHandle::try_current().map_or(0, |t| t.elapsed().as_micros() as u64)
}

/// The canonical JSON lines of `events`, each ending in a newline.
pub fn jsonl(events: &[Event]) -> String {
    let mut out = String::new();
    for e in events {
        out.push_str(&e.json());
        out.push('\n');
    }
    out
}

/// The human form of `events`.
pub fn human(events: &[Event]) -> String {
    let mut out = String::new();
    for e in events {
        out.push_str(&e.human());
        out.push('\n');
    }
    out
}

/// The run's fingerprint: SHA-256 of the canonical JSON lines, in hex.
pub fn fingerprint(events: &[Event]) -> String {
    let mut h = Sha256::new();
    for e in events {
        h.update(e.json().as_bytes());
        h.update(b"\n");
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_canonical_line_sorts_fields_and_escapes_strings() {
        let e = Event {
            t_us: 1500,
            node: "worker-1".into(),
            what: Typed::Seek {
                member: "m\"1".into(),
                partition: 0,
                offset: 7,
            },
        };
        assert_eq!(
            e.json(),
            r#"{"t_us":1500,"node":"worker-1","kind":"seek","member":"m\"1","offset":7,"partition":0}"#
        );
        assert_eq!(
            e.human(),
            "       1.500ms worker-1   seek            member=m\"1 offset=7 partition=0"
        );
        assert_eq!(fingerprint(std::slice::from_ref(&e)), fingerprint(&[e]));
    }
}
