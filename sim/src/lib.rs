//! A deterministic simulation harness for idempotent event consumers, on madsim.
//!
//! One run is a seed plus a [`scenario::config::SimConfig`]: [`run::run`] builds simulated Redis,
//! Kafka, database, producer and worker nodes on a fresh thread and runtime, lets the
//! [`fault::nemesis`] inject faults during a safety phase, heals everything for a liveness phase, and
//! judges the recorded [`trace`] and the database's record with the [`check`]ers. The same seed
//! and build give the same trace, byte for byte.
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
#![deny(missing_docs)]

pub mod check;
pub mod cli;
pub mod fault;
pub mod knob;
pub mod model;
pub mod net;
pub mod node;
pub mod report;
pub mod rng;
pub mod run;
pub mod scenario;
pub mod trace;
pub mod workload;
