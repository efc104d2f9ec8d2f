//! The topic's log and the producer path: appending a record to its key's partition,
//! remembering each `(producer, sequence)` (and, with `idempotent_producer`, dropping a retried
//! one), and reading a partition from an offset (the module documentation's "Topic and records"
//! and "Producer").

use super::{partition_of, GroupEvent, KafkaModel, KafkaReply, Record};

impl KafkaModel {
    /// The number of records in `partition`.
    pub fn log_len(&self, partition: u32) -> u64 {
        self.partitions
            .get(partition as usize)
            .map_or(0, |l| l.len() as u64)
    }

    fn append(&mut self, record: Record) -> (u32, u64) {
        let partition = partition_of(&record.key, self.partitions.len() as u32);
        let log = &mut self.partitions[partition as usize];
        log.push(record);
        (partition, log.len() as u64 - 1)
    }

    pub(super) fn produce_seq(&mut self, producer: String, sequence: u64, record: Record) -> KafkaReply {
        let key = (producer, sequence);
        let Some(&(partition, original_offset)) = self.sequences.get(&key) else {
            let event_id = record.key.clone();
            let (partition, offset) = self.append(record);
            self.sequences.insert(key.clone(), (partition, offset));
            self.events.push(GroupEvent::Produced {
                event_id,
                partition,
                offset,
                producer: key.0,
                sequence: key.1,
                retry: false,
            });
            return KafkaReply::Produced { partition, offset };
        };
        let (producer, sequence) = key;
        let event_id = record.key.clone();
        if self.config.idempotent_producer {
            self.events.push(GroupEvent::ProduceDuplicate {
                event_id,
                partition,
                producer,
                sequence,
                original_offset,
                appended_offset: None,
            });
            return KafkaReply::Produced {
                partition,
                offset: original_offset,
            };
        }
        let (partition, offset) = self.append(record);
        self.events.push(GroupEvent::Produced {
            event_id: event_id.clone(),
            partition,
            offset,
            producer: producer.clone(),
            sequence,
            retry: true,
        });
        self.events.push(GroupEvent::ProduceDuplicate {
            event_id,
            partition,
            producer,
            sequence,
            original_offset,
            appended_offset: Some(offset),
        });
        KafkaReply::Produced { partition, offset }
    }

    /// Records of `partition` from `from`, at most `max`; `None` if there is no such partition.
    pub(super) fn read(&self, partition: u32, from: u64, max: usize) -> Option<Vec<(u64, Record)>> {
        let log = self.partitions.get(partition as usize)?;
        Some(
            log.iter()
                .enumerate()
                .skip(usize::try_from(from).unwrap_or(usize::MAX))
                .take(max)
                .map(|(o, r)| (o as u64, r.clone()))
                .collect(),
        )
    }
}
