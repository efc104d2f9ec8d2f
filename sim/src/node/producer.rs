//! The producer node: publishes the workload's events (`crate::workload`) in order,
//! retrying a produce whose ack it did not get (which may append the record twice, as a real
//! producer without idempotence does). Its progress survives its restarts.

use super::NodeCtx;
use crate::fault::Progress;
use crate::model::kafka::{KafkaReply, KafkaRequest};
use crate::net::topology::NodeName;
use crate::trace::Typed;
use crate::workload::{headers, WorkloadEvent};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Salts tried to find a copy's key that hashes to the partition wanted: with at most 1_000
/// partitions, FNV-1a spreads this many over every one of them by far.
const KEY_SALTS_MAX: u32 = 1_000_000;

/// How long the producer waits before retrying a produce whose ack it did not get.
const RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// The producer's own settings.
#[derive(Clone, Debug)]
pub struct ProducerConfig {
    /// Records per event: the event and its copies.
    pub copies: usize,
    /// The pause before each copy after the first.
    pub copy_gap_ms: u64,
    /// Per copy: sent with headers or body-only (else as drawn).
    pub copy_headers: Vec<bool>,
    /// Per copy: the partition it goes to (else one no earlier copy uses).
    pub copy_partitions: Vec<u32>,
    /// The topic's partitions.
    pub partitions: u32,
    /// How long a produce may take.
    pub call_timeout_ms: u64,
    /// A self-test: panic at this virtual time (0: never).
    pub panic_at_ms: u64,
}

/// The producer's lasting state: what to publish, and how far it got (its progress survives
/// its restarts, as a producer's outbox would).
pub struct ProducerNode {
    /// The events.
    pub workload: Arc<Vec<WorkloadEvent>>,
    /// Records published so far (acknowledged).
    pub next: Mutex<usize>,
    /// Its settings.
    pub config: ProducerConfig,
}

/// The producer node's main task: publishes each event (and its copies) in order.
pub async fn run(ctx: NodeCtx, node: Arc<ProducerNode>) {
    let client = ctx.client().await;
    let cfg = &node.config;
    let timeout = Duration::from_millis(cfg.call_timeout_ms);
    if cfg.panic_at_ms > 0 {
        let at = Duration::from_millis(cfg.panic_at_ms);
        madsim::task::spawn(async move {
            crate::net::timer::sleep(at).await;
            panic!("self-test panic in the producer node (panic_at_ms)");
        });
    }
    let copies = cfg.copies.max(1);
    loop {
        let next = *node.next.lock().expect("producer progress");
        let Some(event) = node.workload.get(next / copies) else {
            return std::future::pending().await;
        };
        let copy = next % copies;
        let gap = if copy == 0 { event.gap_ms } else { cfg.copy_gap_ms };
        crate::net::timer::sleep(Duration::from_millis(gap)).await;
        let mut record = event.record.clone();
        if let Some(&with_headers) = cfg.copy_headers.get(copy) {
            record.headers = if with_headers {
                headers(event).into()
            } else {
                Arc::new([])
            };
        }
        if let Some(&partition) = cfg.copy_partitions.get(copy) {
            record.key = key_for_partition(&event.event_id, copy, partition, cfg.partitions);
        } else if copy > 0 {
            // A key of its own puts the copy on another partition, so another worker gets it.
            record.key = copy_key(&event.event_id, copy, cfg.partitions);
        }
        loop {
            let req = KafkaRequest::ProduceSeq {
                producer: "producer".into(),
                sequence: next as u64,
                record: record.clone(),
            };
            match client.call(NodeName::Kafka.addr(), req, timeout).await {
                Ok(KafkaReply::Produced { .. }) => break,
                _ => {
                    ctx.emit(Typed::ProduceRetry {
                        event_id: event.event_id.clone(),
                    });
                    crate::net::timer::sleep(RETRY_BACKOFF).await;
                }
            }
        }
        *node.next.lock().expect("producer progress") = next + 1;
        ctx.control.progress(Progress::Published(next + 1));
    }
}

/// A key for copy `copy` of `event_id` that lands on `partition`.
fn key_for_partition(event_id: &str, copy: usize, partition: u32, partitions: u32) -> String {
    (0..KEY_SALTS_MAX)
        .map(|salt| format!("{event_id}/{copy}/{salt}"))
        .find(|k| crate::model::kafka::partition_of(k, partitions) == partition)
        .expect("one of KEY_SALTS_MAX salts hashes to every partition")
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
    (0..KEY_SALTS_MAX)
        .map(|salt| format!("{event_id}/{copy}/{salt}"))
        .find(|k| !taken.contains(&crate::model::kafka::partition_of(k, partitions)))
        .expect("copies <= partitions, so one of KEY_SALTS_MAX salts lands on a free partition")
}
