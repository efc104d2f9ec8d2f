//! Verdicts that tell the truth: a run cut short by a limit still judges what it saw
//! ([`limits`]), and every seed of the corpus gives the verdict it records ([`corpus`]).

mod corpus;
mod limits;
