//! A Kafka message as the consumer sees it: where it came from, its headers and its value.
//!
//! The library never talks to Kafka itself; the caller (a real consumer or the simulator's
//! worker) builds a [`Message`] from whatever client it uses.

/// One delivered Kafka record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Topic the record was read from.
    pub topic: String,
    /// Partition within the topic.
    pub partition: i32,
    /// Offset within the partition.
    pub offset: i64,
    /// Headers in wire order; a name may repeat (the last occurrence wins when read).
    pub headers: Vec<(String, Vec<u8>)>,
    /// The record's value: for v2 services, a JSON event envelope.
    pub value: Vec<u8>,
}

impl Message {
    /// A message with no headers on partition 0, offset 0 of `topic`.
    pub fn new(topic: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        Message {
            topic: topic.into(),
            partition: 0,
            offset: 0,
            headers: Vec::new(),
            value: value.into(),
        }
    }

    /// Adds a header (builder style).
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The value of the last header called `name`, if any.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }
}
