//! The workload: the run's events, drawn from its `workload` stream before the simulation
//! starts: v2 envelopes with UUID-like ids and event types from the config, some sent with
//! `event_id`/`event_type` headers and some body-only.

use crate::model::kafka::Record;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// One event of the workload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkloadEvent {
    /// Its place in the drawn workload, from 0 (what a `[[schedule]]` entry's `event` names;
    /// with `keep_events`, the place among the events drawn, not among those kept).
    pub index: u32,
    /// The event id.
    pub event_id: String,
    /// The event type.
    pub event_type: String,
    /// Sent with headers (else body-only).
    pub with_headers: bool,
    /// Its correlation id (the `trace_id` header).
    pub correlation_id: String,
    /// What goes on the wire.
    pub record: Record,
    /// Pause before publishing it.
    pub gap_ms: u64,
}

/// Sixteen random bytes as a lowercase 8-4-4-4-12 hex UUID text.
fn uuid(rng: &mut ChaCha8Rng) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let b: [u8; 16] = rng.gen();
    let mut text = [b'-'; 36];
    let mut at = 0;
    for (i, x) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            at += 1;
        }
        text[at] = HEX[usize::from(x >> 4)];
        text[at + 1] = HEX[usize::from(x & 0xF)];
        at += 2;
    }
    std::str::from_utf8(&text).expect("hex and dashes").to_owned()
}

/// The headers a producer that sends them puts on `event`.
pub(crate) fn headers(event: &WorkloadEvent) -> Vec<(String, Vec<u8>)> {
    vec![
        ("event_id".to_owned(), event.event_id.clone().into_bytes()),
        ("event_type".to_owned(), event.event_type.clone().into_bytes()),
        ("trace_id".to_owned(), event.correlation_id.clone().into_bytes()),
        ("source_service".to_owned(), b"sim_producer".to_vec()),
    ]
}

/// What to draw: the scenario's workload knobs.
#[derive(Clone, Debug)]
pub struct WorkloadConfig {
    /// How many events.
    pub events: u32,
    /// Each event's type, drawn from these.
    pub event_types: Vec<String>,
    /// The share of events sent with headers.
    pub headers_share: f64,
    /// The longest pause before publishing an event.
    pub produce_gap_ms_max: u64,
    /// The places of the events to keep (sorted, each below `events`); empty: every one.
    pub keep_events: Vec<u32>,
}

/// Draws the run's events: all `events` of them, as ever, then keeps those `keep_events`
/// lists (if it lists any). Dropping an event never redraws another: each kept event keeps its
/// id, key, headers, body and place, and its pause absorbs the pauses of the dropped events
/// before it, so it is published when it would have been in the full workload (give or take
/// the dropped events' round trips).
pub fn workload(config: &WorkloadConfig, rng: &mut ChaCha8Rng) -> Vec<WorkloadEvent> {
    let drawn = draw(config, rng);
    if config.keep_events.is_empty() {
        return drawn;
    }
    let mut kept = Vec::with_capacity(config.keep_events.len());
    let mut carried_ms = 0;
    for mut event in drawn {
        if config.keep_events.binary_search(&event.index).is_ok() {
            event.gap_ms += carried_ms;
            carried_ms = 0;
            kept.push(event);
        } else {
            carried_ms += event.gap_ms;
        }
    }
    kept
}

/// The event's v2 envelope as JSON text, written directly: the text `serde_json` gives for the
/// same object (keys sorted, no spaces), without building the object first (a tenth of the
/// cost; this runs for every event of every seed).
fn envelope(
    i: u32,
    event_id: &str,
    event_type: &str,
    correlation_id: &str,
    words: i32,
    score: f64,
) -> Vec<u8> {
    // Written straight into one buffer of the right size: `format!` over a `serde_json`
    // string per field cost ~6,000 instructions an event. Strings and the float are written as
    // `serde_json` writes them (the test below compares the two texts).
    let mut out = Vec::with_capacity(400 + event_type.len());
    let mut int = itoa::Buffer::new();
    out.extend_from_slice(b"{\"correlation_id\":");
    json_str(&mut out, correlation_id);
    out.extend_from_slice(b",\"data\":{\"essay_id\":\"essay-");
    out.extend_from_slice(int.format(i).as_bytes());
    out.extend_from_slice(b"\",\"score\":");
    serde_json::to_writer(&mut out, &score).expect("writing to a Vec cannot fail");
    out.extend_from_slice(b",\"words\":");
    out.extend_from_slice(int.format(words).as_bytes());
    out.extend_from_slice(b"},\"data_schema_uri\":null,\"event_id\":");
    json_str(&mut out, event_id);
    let second = i % 60;
    out.extend_from_slice(b",\"event_timestamp\":\"2025-11-28T07:33:");
    out.extend_from_slice(&[b'0' + (second / 10) as u8, b'0' + (second % 10) as u8]);
    out.extend_from_slice(b"Z\",\"event_type\":");
    json_str(&mut out, event_type);
    out.extend_from_slice(b",\"metadata\":null,\"schema_version\":1,\"source_service\":\"sim_producer\"}");
    out
}

/// `s` as a JSON string, as `serde_json` writes it: a string with nothing to escape (no `"`,
/// `\\` or control character; the ids are hex) goes between quotes as it is.
fn json_str(out: &mut Vec<u8>, s: &str) {
    // A fold with no early exit, which the compiler turns into a few wide compares.
    let escapes = s
        .bytes()
        .fold(false, |any, b| any | (b < 0x20) | (b == b'"') | (b == b'\\'));
    if !escapes {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        serde_json::to_writer(out, s).expect("writing to a Vec cannot fail");
    }
}

/// Draws all `events` events from `rng`.
fn draw(config: &WorkloadConfig, rng: &mut ChaCha8Rng) -> Vec<WorkloadEvent> {
    let gap_ms_max = config.produce_gap_ms_max;
    (0..config.events)
        .map(|i| {
            let event_id = uuid(rng);
            let event_type = config.event_types[rng.gen_range(0..config.event_types.len())].clone();
            let with_headers = rng.gen_bool(config.headers_share);
            let correlation_id = uuid(rng);
            let words: i32 = rng.gen_range(10..5000);
            let score: f64 = rng.gen_range(0.0..1.0);
            let envelope = envelope(i, &event_id, &event_type, &correlation_id, words, score);
            let mut event = WorkloadEvent {
                index: i,
                event_id: event_id.clone(),
                event_type,
                with_headers,
                correlation_id,
                record: Record {
                    key: event_id.clone(),
                    headers: std::sync::Arc::new([]),
                    value: envelope.into(),
                },
                gap_ms: rng.gen_range(0..=gap_ms_max),
            };
            if with_headers {
                event.record.headers = headers(&event).into();
            }
            event
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The envelope written by hand is the text `serde_json` writes for the same object (as
    /// the workload built it before), event types that need escaping included.
    #[test]
    fn the_envelope_is_serde_jsons_text_of_the_object() {
        for (i, event_type, score) in [
            (0, "huleedu.essay.registered.v1", 0.5),
            (61, "a \"quoted\" type \\ with\ncontrol é", 1e-7),
            (4_000_000_000, "", 0.9999999999999999),
        ] {
            let object = serde_json::json!({
                "event_id": "e-1",
                "event_type": event_type,
                "event_timestamp": format!("2025-11-28T07:33:{:02}Z", i % 60),
                "source_service": "sim_producer",
                "schema_version": 1,
                "correlation_id": "c-1",
                "data_schema_uri": null,
                "data": {"essay_id": format!("essay-{i}"), "words": 4999, "score": score},
                "metadata": null,
            });
            assert_eq!(
                String::from_utf8(envelope(i, "e-1", event_type, "c-1", 4999, score)).unwrap(),
                object.to_string()
            );
        }
    }

    /// Keeping some events keeps each of them as drawn (id, key, headers, body, place) and
    /// moves its pause so it is published when it would have been among them all.
    #[test]
    fn keep_events_keeps_the_kept_events_as_drawn() {
        let mut config = crate::scenario::config::SimConfig {
            events: 10,
            ..Default::default()
        }
        .workload();
        let all = workload(&config, &mut crate::rng::stream(3, "workload"));
        config.keep_events = vec![2, 7];
        let kept = workload(&config, &mut crate::rng::stream(3, "workload"));
        assert_eq!(kept.len(), 2);
        for (k, i) in kept.iter().zip([2usize, 7]) {
            assert_eq!(k.index as usize, i);
            assert_eq!(
                (&k.event_id, &k.record.key, &k.record.headers),
                (&all[i].event_id, &all[i].record.key, &all[i].record.headers)
            );
            assert_eq!(k.record.value, all[i].record.value);
        }
        let start = |to: usize| all[..=to].iter().map(|e| e.gap_ms).sum::<u64>();
        assert_eq!(kept[0].gap_ms, start(2));
        assert_eq!(kept[0].gap_ms + kept[1].gap_ms, start(7));
    }

    /// `keep_events` must name drawn events, sorted, each once: the error names the entry.
    #[test]
    fn keep_events_is_validated() {
        let bad = |keep: Vec<u32>| {
            crate::scenario::config::SimConfig {
                events: 5,
                keep_events: keep,
                ..Default::default()
            }
            .validate()
            .unwrap_err()
        };
        assert!(
            bad(vec![1, 5]).starts_with("`keep_events[1]` = 5 is out of range"),
            "{}",
            bad(vec![1, 5])
        );
        assert!(bad(vec![3, 1]).contains("`keep_events[1]` = 1: the list must be sorted"));
        assert!(bad(vec![1, 1]).contains("each event once"));
        let text = "name = \"x\"\nevents = 5\nkeep_events = [0, 9]\n";
        let e = crate::scenario::parse(text, "x.toml").unwrap_err();
        assert_eq!(
            (e.line, e.field.as_deref()),
            (Some(3), Some("keep_events[1]")),
            "{e}"
        );
    }
}
