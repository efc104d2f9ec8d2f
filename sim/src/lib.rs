//! A deterministic simulation harness for idempotent event consumers, on madsim.
//!
//! A run is a seed plus a scenario ([`SimConfig`]): simulated Redis, Kafka, database, producer
//! and worker nodes on a fresh thread and runtime, faults during a safety phase, everything
//! healed for a liveness phase, and a verdict judged from the recorded history ([`Event`]) and
//! the models' state. The same seed and build give the same history, byte for byte.
//!
//! ```
//! // A scenario shipped in `scenarios/`, run on its pinned seed, twice.
//! let sim = sim::Sim::new("duplicate-detection").unwrap();
//! let seed = sim.config().seed;
//! let first = sim.run(seed);
//! assert_eq!(first.verdict, sim::Verdict::Pass);
//! assert_eq!(first.applied, 1);
//! assert_eq!(first.fingerprint(), sim.run(seed).fingerprint());
//! ```
//!
//! # Testing your own consumer
//! [`Sim`] puts your [`Handler`] into every simulated worker and your [`Checker`]s beside the
//! built-in ones, and runs a seed, a sweep or a shrink from a plain `#[test]`, or a seed on the
//! current runtime inside `#[madsim::test]`. The README's "Test your own consumer" walks
//! through `examples/orders`.
//!
//! # The API
//! Everything a test needs is re-exported here, and only that is kept stable:
//! - running: [`Sim`], and what it returns: [`RunResult`] (with [`KafkaStats`]), its [`Verdict`] and
//!   [`Violation`]s, a [`Sweep`] of [`Failure`]s (each with its [`Size`]), a [`Shrunk`] run
//!   (its [`Fingerprint`], [`Outcome`], [`Stop`]) within a [`Budget`];
//! - your code inside: [`Handler`] ([`HandlerFuture`]) and its context [`Cx`] ([`Commit`]);
//! - your checks: [`Checker`], reading an [`Input`] and reporting [`Violation`]s of a
//!   [`Severity`];
//! - the history: [`Event`], typed as [`Typed`] ([`AcquireOutcome`]), and the database's
//!   [`Effect`]s;
//! - faults as data: [`Fault`], [`FaultPoint`], [`ScheduledFault`] (its [`Trigger`]), on nodes named by
//!   [`NodeName`];
//! - the settings: [`SimConfig`], every setting's type in [`config`], and [`ScenarioError`]
//!   for a scenario that cannot be read.
//!
//! The crate's parts (the models, the transport, the nodes, the checkers, the CLI) are private:
//! the `sim` binary and this workspace's tests reach them through a hidden module that is not
//! API. Their layers, from the bottom up (each imports only those below; `farm-studio look`
//! draws them): `net` (the topology and our transport on madsim's clock), `knob`, `model` (the
//! pure state machines: Redis, the Kafka broker, the database), `fault` (faults as data, the
//! nemesis's decisions), `trace` (the history), `workload`, `node` (the adapters: each serves a
//! model or runs a client loop and never reaches into the world), `check` (one file per
//! checker), `scenario` (the config, ranges, validation), `run` (one seed: the world, the
//! phases, the verdict; many seeds through a pool), `report`, `shrink`, `harness` ([`Sim`]) and
//! `cli`.
#![deny(missing_docs)]

mod check;
mod cli;
mod fault;
mod harness;
mod knob;
mod label;
mod model;
mod net;
mod node;
mod report;
mod rng;
mod run;
mod scenario;
mod shrink;
mod trace;
mod workload;

/// The crate's parts, for the `sim` binary and this workspace's own tests. Not API: nothing in
/// here is kept stable for other crates; a user's test needs only what the crate root
/// re-exports.
#[doc(hidden)]
pub mod internal {
    #[allow(missing_docs)]
    pub mod check {
        pub use crate::check::*;
    }
    #[allow(missing_docs)]
    pub mod cli {
        pub use crate::cli::*;
    }
    #[allow(missing_docs)]
    pub mod fault {
        pub use crate::fault::*;
    }
    #[allow(missing_docs)]
    pub mod harness {
        pub use crate::harness::*;
    }
    #[allow(missing_docs)]
    pub mod knob {
        pub use crate::knob::*;
    }
    #[allow(missing_docs)]
    pub mod model {
        pub use crate::model::*;
    }
    #[allow(missing_docs)]
    pub mod net {
        pub use crate::net::*;
    }
    #[allow(missing_docs)]
    pub mod node {
        pub use crate::node::*;
    }
    #[allow(missing_docs)]
    pub mod report {
        pub use crate::report::*;
    }
    #[allow(missing_docs)]
    pub mod rng {
        pub use crate::rng::*;
    }
    #[allow(missing_docs)]
    pub mod run {
        pub use crate::run::*;
    }
    #[allow(missing_docs)]
    pub mod scenario {
        pub use crate::scenario::*;
    }
    #[allow(missing_docs)]
    pub mod shrink {
        pub use crate::shrink::*;
    }
    #[allow(missing_docs)]
    pub mod trace {
        pub use crate::trace::*;
    }
    #[allow(missing_docs)]
    pub mod workload {
        pub use crate::workload::*;
    }
}

pub use check::kafka::KafkaStats;
pub use check::{Checker, Input, Severity, Violation};
pub use fault::schedule::{ScheduledFault, Trigger};
pub use fault::{Fault, FaultPoint};
pub use harness::{Failure, Sim, Sweep};
pub use label::Label;
pub use model::db::Effect;
pub use net::topology::NodeName;
pub use node::worker::handler::{Commit, Cx, Handler, HandlerFuture};
pub use run::{RunResult, Verdict};
pub use scenario::config;
pub use scenario::config::SimConfig;
pub use scenario::ScenarioError;
pub use shrink::{Budget, Fingerprint, Outcome, Shrunk, Size, Stop};
pub use trace::{AcquireOutcome, Event, Typed};
