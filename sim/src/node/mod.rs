//! The node adapters: each serves a [`crate::model`] state machine (or runs a client loop) on
//! the simulated network.
//!
//! A node gets a small [`NodeCtx`] (its name, clock, trace handle and the [`Control`] it reports
//! to), its own config, and its *lasting state*: what must survive its crashes (the broker's
//! log, the database, Redis's disk, a worker's random stream), kept outside its tasks as
//! madsim's per-node subsystems keep theirs. The node also owns its faults on itself
//! ([`crate::fault::NodeFaults`]) and heals them when told. It never reaches into the rest of
//! the world: it reports, and the world decides.

use crate::fault::Control;
use crate::net::rpc::Client;
use crate::net::topology::NodeName;
use crate::net::transport::Network;
use crate::trace::{Trace, Typed};
use clock::NodeClock;
use std::sync::Arc;

pub mod clock;
pub mod db;
pub mod kafka;
pub mod producer;
pub mod redis;
pub mod worker;

/// What a node knows of the world.
#[derive(Clone)]
pub struct NodeCtx {
    /// Its name.
    pub name: NodeName,
    /// Its host's wall clock (kept across restarts).
    pub clock: NodeClock,
    /// The run's history.
    pub trace: Trace,
    /// Where it reports what the world may act on.
    pub control: Arc<dyn Control>,
    /// The run's network, which it serves and calls on.
    pub net: Arc<Network>,
}

impl NodeCtx {
    /// Records `event` as this node.
    pub fn emit(&self, event: Typed) {
        self.trace.emit_as(self.name.label(), event);
    }

    /// A new RPC client on this node.
    pub async fn client(&self) -> Client {
        Client::new(self.net.clone(), self.name)
    }
}
