//! What a run shows its readers: the Mermaid diagram (and, later, sweep reports).

pub mod mermaid;
pub use mermaid::*;
