//! Replaying a corpus entry (see [`crate::scenario::corpus`]): run its pinned seed and judge
//! the verdict against the `expect` it records, as a single run is judged. `sim replay` and the
//! `corpus` test target (one test per entry) both call [`replay_entry`].

use crate::run::{self, Verdict};
use std::path::Path;

/// What replaying one entry gave.
#[derive(Clone, Debug)]
pub struct Replayed {
    /// The seed run.
    pub seed: u64,
    /// 0 when the verdict is as the entry expects; else the single run's exit code.
    pub code: i32,
    /// The verdict and its violation kinds (`pass`, `correctness: lost_event`, ...).
    pub verdict: String,
    /// What the entry expects (`pass`, or its kinds).
    pub expected: String,
}

/// Runs the entry at `path`; `Err` when it is not a valid scenario file (the error names the
/// file, line and field).
pub fn replay_entry(path: &Path) -> Result<Replayed, String> {
    let config = crate::scenario::load(&path.display().to_string()).map_err(|e| e.to_string())?;
    let r = run::run(config.seed, &config);
    let expected = config.expect.kinds();
    let mut kinds: Vec<&str> = r.verdict.violations().iter().map(|v| v.kind).collect();
    kinds.sort();
    kinds.dedup();
    // A finding's entry must still show its finding, mechanism and all: a harness that still
    // finds the duplicate but for another reason has changed what it finds.
    let finding = config.corpus.as_ref().and_then(|m| m.finding.clone());
    let missing = finding.as_ref().filter(|label| {
        !crate::check::why::labels(&r.events, r.verdict.violations()).contains(label.as_str())
    });
    let verdict = match &r.verdict {
        Verdict::Crash(m) => format!("crash: {}", m.lines().next().unwrap_or("")),
        v if kinds.is_empty() => v.name().to_string(),
        v => format!("{}: {}", v.name(), kinds.join(" + ")),
    };
    Ok(Replayed {
        seed: config.seed,
        code: match missing {
            Some(_) if r.verdict.exit_code_against(&expected) == 0 => {
                crate::run::verdict::EXIT_EXPECTATION_UNMET
            }
            _ => r.verdict.exit_code_against(&expected),
        },
        verdict: match missing {
            Some(_) => format!("{verdict} (without {})", finding.as_deref().unwrap_or_default()),
            None => verdict,
        },
        expected: match (&finding, expected.is_empty()) {
            (Some(label), _) => format!("{} with {label}", expected.join(" or ")),
            (None, true) => "pass".into(),
            (None, false) => expected.join(" or "),
        },
    })
}
