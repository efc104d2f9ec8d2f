//! The pure state machines the nodes serve: Redis, the Kafka broker, the database. Plain Rust,
//! time passed in, no madsim and no trace: tested without a runtime, and reused by the
//! differential test against real Redis. Nothing here imports the rest of the simulator.

pub mod db;
pub mod kafka;
pub mod redis;
