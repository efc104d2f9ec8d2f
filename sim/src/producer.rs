//! The workload and the producer node that publishes it.
//!
//! The scenario's events are drawn from the run's `workload` stream before the simulation
//! starts: v2 envelopes with UUID-like ids and event types from the config, some sent with
//! `event_id`/`event_type` headers and some body-only. The producer publishes them in order,
//! retrying a produce whose ack it did not get (which may append the record twice, as a real
//! producer without idempotence does). Its progress survives its restarts.

use crate::config::SimConfig;
use crate::fields;
use crate::kafka::{KafkaReply, KafkaRequest, Record};
use crate::rpc::Client;
use crate::world::Shared;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::sync::Arc;
use std::time::Duration;

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

fn uuid(rng: &mut ChaCha8Rng) -> String {
    let b: [u8; 16] = rng.gen();
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The headers a producer that sends them puts on `event`.
fn headers(event: &WorkloadEvent) -> Vec<(String, Vec<u8>)> {
    vec![
        ("event_id".to_owned(), event.event_id.clone().into_bytes()),
        ("event_type".to_owned(), event.event_type.clone().into_bytes()),
        ("trace_id".to_owned(), event.correlation_id.clone().into_bytes()),
        ("source_service".to_owned(), b"sim_producer".to_vec()),
    ]
}

/// Draws the run's events.
pub fn workload(config: &SimConfig, rng: &mut ChaCha8Rng) -> Vec<WorkloadEvent> {
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

/// The producer node's main task: publishes each event (and its copies) in order.
pub async fn run(s: Arc<Shared>) {
    let client = Client::bind(s.reply_tags.clone()).await;
    let timeout = Duration::from_millis(s.config.call_timeout_ms);
    if s.config.panic_at_ms > 0 {
        let at = Duration::from_millis(s.config.panic_at_ms);
        madsim::task::spawn(async move {
            madsim::time::sleep(at).await;
            panic!("self-test panic in the producer node (panic_at_ms)");
        });
    }
    let copies = s.config.copies.max(1) as usize;
    loop {
        let next = *s.producer_next.lock().expect("producer progress");
        let Some(event) = s.workload.get(next / copies) else {
            return std::future::pending().await;
        };
        let copy = next % copies;
        let gap = if copy == 0 {
            event.gap_ms
        } else {
            s.config.copy_gap_ms
        };
        madsim::time::sleep(Duration::from_millis(gap)).await;
        let mut record = event.record.clone();
        if let Some(&with_headers) = s.config.copy_headers.get(copy) {
            record.headers = if with_headers { headers(event) } else { Vec::new() };
        }
        if let Some(&partition) = s.config.copy_partitions.get(copy) {
            record.key = key_for_partition(&event.event_id, copy, partition, s.config.partitions);
        } else if copy > 0 {
            // A key of its own puts the copy on another partition, so another worker gets it.
            record.key = copy_key(&event.event_id, copy, s.config.partitions);
        }
        loop {
            let req = KafkaRequest::ProduceSeq {
                producer: "producer".into(),
                sequence: next as u64,
                record: record.clone(),
            };
            match client.call(s.kafka_addr(), req, timeout).await {
                Ok(KafkaReply::Produced { .. }) => break,
                _ => {
                    s.trace.record(
                        "producer",
                        "produce_retry",
                        fields! {"event_id" => event.event_id.as_str()},
                    );
                    madsim::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        *s.producer_next.lock().expect("producer progress") = next + 1;
    }
}

/// A key for copy `copy` of `event_id` that lands on `partition`.
fn key_for_partition(event_id: &str, copy: usize, partition: u32, partitions: u32) -> String {
    (0..)
        .map(|salt| format!("{event_id}/{copy}/{salt}"))
        .find(|k| crate::kafka::partition_of(k, partitions) == partition)
        .expect("some salt hashes to every partition")
}

/// A key for copy `copy` of `event_id` that lands on a partition no earlier copy uses.
fn copy_key(event_id: &str, copy: usize, partitions: u32) -> String {
    let taken: Vec<u32> = (0..copy)
        .map(|c| {
            crate::kafka::partition_of(
                &if c == 0 {
                    event_id.to_owned()
                } else {
                    copy_key(event_id, c, partitions)
                },
                partitions,
            )
        })
        .collect();
    (0..)
        .map(|salt| format!("{event_id}/{copy}/{salt}"))
        .find(|k| !taken.contains(&crate::kafka::partition_of(k, partitions)))
        .expect("copies <= partitions, so a free partition exists")
}
