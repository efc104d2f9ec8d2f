//! A deterministic simulation harness for idempotent event consumers, on madsim.
//!
//! One run is a seed plus a [`scenario::config::SimConfig`]: [`run::run`] builds simulated
//! Redis, Kafka, database, producer and worker nodes on a fresh thread and runtime, lets faults
//! happen during a safety phase, heals everything for a liveness phase, and judges the recorded
//! [`trace`] and the models' state with the [`check`]ers. The same seed and build give the same
//! trace, byte for byte.
//!
//! ```
//! // A scenario shipped in `scenarios/`, run on its pinned seed, twice.
//! let config = sim::scenario::load("duplicate-detection").unwrap();
//! let first = sim::run::run(config.seed, &config);
//! assert_eq!(first.verdict, sim::run::Verdict::Pass);
//! assert_eq!(first.applied, 1);
//! let again = sim::run::run(config.seed, &config);
//! assert_eq!(first.fingerprint(), again.fingerprint());
//! ```
//!
//! # Testing your own consumer
//! [`Sim`] puts your [`Handler`] into every simulated worker and your [`Checker`]s beside the
//! built-in ones, and runs a seed, a sweep or a shrink from a plain `#[test]` ([`harness`];
//! the README's "Test your own consumer" walks through `examples/orders`). The types a test
//! meets are re-exported here: [`Cx`], [`Commit`], [`Input`], [`Violation`], [`RunResult`],
//! [`Verdict`], [`Failure`], [`Sweep`], [`Shrunk`], the typed history ([`Event`], [`Typed`])
//! and faults as data ([`Fault`], [`FaultPoint`]); [`config`] holds the settings' types
//! (`config::FailurePolicyKind::FailClosed` in a `Sim::configure`).
//!
//! # The parts, from the bottom up
//! Each layer imports only those below it (no circle; `farm-studio look` draws it).
//! - [`net`]: the topology ([`net::topology::NodeName`], the only place names and addresses
//!   are made), our own transport on madsim's clock (rules as data: latency, clogs, cut
//!   links) and request/response over it.
//! - [`knob`]: a knob's range, shared by validation, the nemesis and the docs.
//! - [`model`]: the pure state machines (Redis, the Kafka broker, the database): time passed
//!   in, no madsim, no trace, tested alone and against real Redis.
//! - [`fault`]: faults as data. One vocabulary ([`fault::Fault`]) for scenario files, the
//!   nemesis and the trace; the nemesis's pure decisions. Faults act through two traits:
//!   [`fault::Verbs`] (what the world does to a node) and [`fault::NodeFaults`] (what a node
//!   does to itself).
//! - [`trace`]: the history as typed events (canonical JSON lines, fingerprint, human form)
//!   and the logger.
//! - [`workload`]: the events, drawn from the seed before the run.
//! - [`node`]: the adapters. Each node gets a [`node::NodeCtx`] and its lasting state, serves a
//!   model or runs a client loop, and *reports* deliveries, held locks and fault points through
//!   [`fault::Control`]; it never reaches into the world.
//! - [`check`]: one file per checker, a registry of every kind a run can report; checkers read
//!   the history and model snapshots only.
//! - [`scenario`]: [`scenario::config::SimConfig`] (each subsystem's config, aggregated), the
//!   ranges, validation and the embedded files.
//! - [`run`]: one seed on a fresh thread and runtime: the [`run::world::World`] (nodes and fault
//!   verbs), what is in force and when it heals ([`run::faults`]), the phases
//!   ([`run::control`]), the verdict; many seeds through [`run::pool`]; the bench's floor.
//! - [`report`]: the summary line and the Mermaid diagram.
//! - [`shrink`]: from a failing run to the smallest config found that fails the same way
//!   (pure over a "run this config" closure).
//! - [`harness`]: the builder a user's test drives ([`Sim`]).
//! - [`cli`]: one file per subcommand.
#![deny(missing_docs)]

pub mod check;
pub mod cli;
pub mod fault;
pub mod harness;
pub mod knob;
pub mod model;
pub mod net;
pub mod node;
pub mod report;
pub mod rng;
pub mod run;
pub mod scenario;
pub mod shrink;
pub mod trace;
pub mod workload;

pub use check::{Checker, Input, Severity, Violation};
pub use fault::{Fault, FaultPoint};
pub use harness::{Failure, Sim, Sweep};
pub use node::worker::handler::{Commit, Cx, Handler, HandlerFuture};
pub use run::{RunResult, Verdict};
pub use scenario::config;
pub use scenario::config::SimConfig;
pub use shrink::{Budget, Shrunk};
pub use trace::{Event, Typed};
