//! The workload and the producer node that publishes it.
//!
//! The scenario's events are drawn from the run's `workload` stream before the simulation
//! starts: v2 envelopes with UUID-like ids and event types from the config, some sent with
//! `event_id`/`event_type` headers and some body-only. The producer publishes them in order,
//! retrying a produce whose ack it did not get (which may append the record twice, as a real
//! producer without idempotence does). Its progress survives its restarts.

use crate::fields;
use crate::model::kafka::{KafkaReply, KafkaRequest};
use crate::net::rpc::Client;
use crate::run::Shared;
use crate::workload::headers;
use std::sync::Arc;
use std::time::Duration;

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
        .find(|k| crate::model::kafka::partition_of(k, partitions) == partition)
        .expect("some salt hashes to every partition")
}

/// A key for copy `copy` of `event_id` that lands on a partition no earlier copy uses.
fn copy_key(event_id: &str, copy: usize, partitions: u32) -> String {
    let taken: Vec<u32> = (0..copy)
        .map(|c| {
            crate::model::kafka::partition_of(
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
        .find(|k| !taken.contains(&crate::model::kafka::partition_of(k, partitions)))
        .expect("copies <= partitions, so a free partition exists")
}
