//! What a run shows its readers: the summary line every run prints and the Mermaid diagram
//! (and, later, sweep reports).

pub mod mermaid;
pub use mermaid::*;

mod summary;
pub(crate) use summary::{first_difference, summary};
