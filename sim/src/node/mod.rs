//! The node adapters: each serves a [`crate::model`] state machine (or runs a client loop) on
//! the simulated network.

pub mod clock;
pub mod db;
pub mod kafka;
pub mod producer;
pub mod redis;
pub mod worker;
