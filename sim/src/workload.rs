//! The workload: the run's events, drawn from its `workload` stream before the simulation
//! starts: v2 envelopes with UUID-like ids and event types from the config, some sent with
//! `event_id`/`event_type` headers and some body-only.

use crate::model::kafka::Record;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// One event of the workload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkloadEvent {
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
    let mut s = String::with_capacity(36);
    for (i, x) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push(char::from(HEX[usize::from(x >> 4)]));
        s.push(char::from(HEX[usize::from(x & 0xF)]));
    }
    s
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
}

/// Draws the run's events.
pub fn workload(config: &WorkloadConfig, rng: &mut ChaCha8Rng) -> Vec<WorkloadEvent> {
    let gap_ms_max = config.produce_gap_ms_max;
    (0..config.events)
        .map(|i| {
            let event_id = uuid(rng);
            let event_type = config.event_types[rng.gen_range(0..config.event_types.len())].clone();
            let with_headers = rng.gen_bool(config.headers_share);
            let correlation_id = uuid(rng);
            let envelope = serde_json::json!({
                "event_id": event_id,
                "event_type": event_type,
                "event_timestamp": format!("2025-11-28T07:33:{:02}Z", i % 60),
                "source_service": "sim_producer",
                "schema_version": 1,
                "correlation_id": correlation_id,
                "data_schema_uri": null,
                "data": {"essay_id": format!("essay-{i}"), "words": rng.gen_range(10..5000), "score": rng.gen_range(0.0..1.0)},
                "metadata": null,
            });
            let mut event = WorkloadEvent {
                event_id: event_id.clone(),
                event_type,
                with_headers,
                correlation_id,
                record: Record { key: event_id.clone(), headers: Vec::new(), value: envelope.to_string().into_bytes() },
                gap_ms: rng.gen_range(0..=gap_ms_max),
            };
            if with_headers {
                event.record.headers = headers(&event);
            }
            event
        })
        .collect()
}
