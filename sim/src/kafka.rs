//! The Kafka broker, minimal: one topic, N partitions, committed offsets for one group.
//!
//! A record's partition is a deterministic hash of its key; order is kept per partition; the
//! log and the committed offsets survive a broker restart (they are on its disk). Consumers
//! fetch from an offset and commit "the next offset to read"; a restarted consumer resumes from
//! its last commit, so uncommitted records are delivered again. (Consumer groups and
//! rebalances come later; for now partitions are assigned statically.)

/// A record as produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The record key (the event id).
    pub key: String,
    /// Headers in order.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The value (a v2 envelope).
    pub value: Vec<u8>,
}

/// A request to the broker.
#[derive(Clone, Debug)]
pub enum KafkaRequest {
    /// Append a record; the reply is its partition and offset.
    Produce(Record),
    /// Up to `max` records of `partition` from offset `from`.
    Fetch {
        /// The partition.
        partition: u32,
        /// The first offset wanted.
        from: u64,
        /// At most this many.
        max: usize,
    },
    /// The group's next offset to read for `partition` becomes `offset`.
    Commit {
        /// The partition.
        partition: u32,
        /// The next offset to read.
        offset: u64,
        /// Who commits (for the trace).
        member: String,
    },
    /// The group's committed offsets, per partition.
    Committed,
}

/// The broker's reply.
#[derive(Clone, Debug)]
pub enum KafkaReply {
    /// Where a produced record went.
    Produced {
        /// Its partition.
        partition: u32,
        /// Its offset.
        offset: u64,
    },
    /// Fetched records with their offsets.
    Records(Vec<(u64, Record)>),
    /// The commit was stored.
    Committed,
    /// Committed offsets, per partition.
    Offsets(Vec<u64>),
}

/// The broker's state: a pure state machine.
#[derive(Clone, Debug)]
pub struct KafkaModel {
    partitions: Vec<Vec<Record>>,
    committed: Vec<u64>,
}

/// The partition of `key` among `n`: FNV-1a, stable across builds and platforms.
pub fn partition_of(key: &str, n: u32) -> u32 {
    assert!(n > 0, "a topic has at least one partition");
    let mut h: u64 = 0xcbf29ce484222325;
    for b in key.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    (h % n as u64) as u32
}

impl KafkaModel {
    /// An empty topic of `partitions` partitions.
    pub fn new(partitions: u32) -> Self {
        KafkaModel {
            partitions: vec![Vec::new(); partitions as usize],
            committed: vec![0; partitions as usize],
        }
    }

    /// Handles one request.
    pub fn handle(&mut self, req: KafkaRequest) -> KafkaReply {
        match req {
            KafkaRequest::Produce(record) => {
                let partition = partition_of(&record.key, self.partitions.len() as u32);
                let log = &mut self.partitions[partition as usize];
                log.push(record);
                KafkaReply::Produced {
                    partition,
                    offset: log.len() as u64 - 1,
                }
            }
            KafkaRequest::Fetch { partition, from, max } => {
                let log = self
                    .partitions
                    .get(partition as usize)
                    .map_or(&[][..], Vec::as_slice);
                let records = log
                    .iter()
                    .enumerate()
                    .skip(from as usize)
                    .take(max)
                    .map(|(o, r)| (o as u64, r.clone()))
                    .collect();
                KafkaReply::Records(records)
            }
            KafkaRequest::Commit {
                partition, offset, ..
            } => {
                if let Some(c) = self.committed.get_mut(partition as usize) {
                    *c = offset;
                }
                KafkaReply::Committed
            }
            KafkaRequest::Committed => KafkaReply::Offsets(self.committed.clone()),
        }
    }

    /// The number of records in `partition`.
    pub fn log_len(&self, partition: u32) -> u64 {
        self.partitions
            .get(partition as usize)
            .map_or(0, |l| l.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(key: &str) -> Record {
        Record {
            key: key.into(),
            headers: vec![],
            value: key.as_bytes().to_vec(),
        }
    }

    #[test]
    fn records_keep_their_order_per_partition_and_fetch_resumes_from_an_offset() {
        let mut k = KafkaModel::new(3);
        let mut placed = Vec::new();
        for i in 0..20 {
            let KafkaReply::Produced { partition, offset } =
                k.handle(KafkaRequest::Produce(rec(&format!("e{i}"))))
            else {
                panic!()
            };
            assert_eq!(partition, partition_of(&format!("e{i}"), 3));
            placed.push((partition, offset));
        }
        let p = placed[0].0;
        let KafkaReply::Records(all) = k.handle(KafkaRequest::Fetch {
            partition: p,
            from: 0,
            max: 100,
        }) else {
            panic!()
        };
        assert_eq!(all.len() as u64, k.log_len(p));
        assert!(all.windows(2).all(|w| w[0].0 + 1 == w[1].0));
        let KafkaReply::Records(tail) = k.handle(KafkaRequest::Fetch {
            partition: p,
            from: 1,
            max: 1,
        }) else {
            panic!()
        };
        assert_eq!(tail, vec![all[1].clone()]);
    }

    #[test]
    fn commits_are_what_a_restarted_consumer_resumes_from() {
        let mut k = KafkaModel::new(2);
        k.handle(KafkaRequest::Commit {
            partition: 1,
            offset: 5,
            member: "w".into(),
        });
        let KafkaReply::Offsets(o) = k.handle(KafkaRequest::Committed) else {
            panic!()
        };
        assert_eq!(o, vec![0, 5]);
    }
}

/// The broker node's main task: serve requests until killed. The log and the offsets live in
/// the world (the broker's disk), so a restart loses nothing acknowledged.
pub async fn serve(s: std::sync::Arc<crate::world::Shared>) {
    use crate::fields;
    crate::rpc::serve(move |req: KafkaRequest, from| {
        let trace = match &req {
            KafkaRequest::Produce(r) => Some(("produce", r.key.clone(), None)),
            KafkaRequest::Commit { partition, offset, member } => {
                Some(("offset_commit", member.clone(), Some((*partition, *offset))))
            }
            _ => None,
        };
        let reply = s.kafka.lock().expect("kafka state").handle(req);
        match (trace, &reply) {
            (Some(("produce", id, _)), KafkaReply::Produced { partition, offset }) => s.trace.record(
                "kafka",
                "produce",
                fields! {"event_id" => id, "partition" => *partition, "offset" => *offset, "from" => s.node_of(from)},
            ),
            (Some((_, member, Some((partition, offset)))), _) => s.trace.record(
                "kafka",
                "offset_commit",
                fields! {"member" => member, "partition" => partition, "offset" => offset},
            ),
            _ => {}
        }
        reply
    })
    .await
}
