//! Determinism, the product: the same seed and build give the same bytes in one process, in
//! two, and over many seeds ([`same_bytes`]); a run's faults saved as a scenario replay the
//! same run ([`replay`]).

mod replay;
mod same_bytes;
