//! Verdicts that tell the truth: a run cut short by a limit still judges what it saw
//! ([`limits`]); a user's handler and checkers are judged like the built-in ones ([`harness`]). The corpus, every entry giving the verdict it records, is its own target
//! (`tests/corpus.rs`, one test per entry).

mod harness;
mod limits;
mod lost;
