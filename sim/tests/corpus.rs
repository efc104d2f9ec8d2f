//! The regression corpus as tests: every entry in `seeds/` (a scenario file with its faults
//! explicit and its seed pinned) is one test named after its file, so `cargo test` and nextest
//! list, filter and report entries by name. Each runs its seed and must give the verdict its
//! `expect` records (a fixed bug stays fixed; a known bug is still found). `sim replay` runs the
//! same check from the command line ([`sim::internal::run::replay::replay_entry`] for both).

use libtest_mimic::{Arguments, Failed, Trial};
use std::path::PathBuf;

fn main() {
    let args = Arguments::from_args();
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../seeds"));
    let entries = sim::internal::scenario::corpus::entries(&dir).unwrap_or_else(|e| panic!("{e}"));
    assert!(entries.len() >= 10, "the corpus lost entries: {entries:?}");
    let mut trials: Vec<Trial> = entries
        .into_iter()
        .map(|path| {
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            Trial::test(name, move || {
                let r = sim::internal::run::replay::replay_entry(&path).map_err(Failed::from)?;
                if r.code == 0 {
                    return Ok(());
                }
                Err(format!(
                    "seed {} gave {} but the entry expects {} (exit {}): cargo run -p sim -- --scenario {}",
                    r.seed,
                    r.verdict,
                    r.expected,
                    r.code,
                    path.display()
                )
                .into())
            })
        })
        .collect();
    // Every entry carries its `[corpus]` table: when, how, and what it shows.
    trials.push(Trial::test(
        "every_entry_says_when_and_how_it_was_found",
        move || {
            for path in sim::internal::scenario::corpus::entries(&dir).map_err(Failed::from)? {
                let config =
                    sim::internal::scenario::load(&path.display().to_string()).map_err(|e| e.to_string())?;
                let meta = config
                    .corpus
                    .ok_or_else(|| format!("{}: no [corpus] table", path.display()))?;
                if meta.found.is_empty() || meta.origin.is_empty() || meta.note.is_empty() {
                    return Err(format!("{}: [corpus] needs found, origin and note", path.display()).into());
                }
                if config.faults.random {
                    return Err(format!(
                        "{}: random faults on; an entry's faults are explicit",
                        path.display()
                    )
                    .into());
                }
            }
            Ok(())
        },
    ));
    libtest_mimic::run(&args, trials).exit();
}
