//! What a run shows its readers: the summary line every run prints, the Mermaid diagram, and
//! the reports of sweeps (JSON, JUnit).

pub mod mermaid;
pub use mermaid::*;

mod summary;
pub(crate) use summary::{first_difference, summary};

pub mod findings;
pub mod sweep;
