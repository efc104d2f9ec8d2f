//! `sim replay [DIR]`: every entry of the corpus (default `seeds/`) run on its pinned seed and
//! judged against the `expect` it records; one line per entry, then the count. Exit 0 when
//! every entry is as it expects, else the worst entry's code; 2 when the corpus cannot be read
//! or an entry is not a valid scenario (named with its line and field).

use super::EXIT_USAGE;
use std::io::Write;
use std::path::Path;

pub(super) fn replay(dir: &Path, out: &mut dyn Write) -> i32 {
    let entries = match crate::scenario::corpus::entries(dir) {
        Ok(e) if e.is_empty() => {
            eprintln!("error: the corpus {} has no entries (*.toml)", dir.display());
            return EXIT_USAGE;
        }
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let _ = writeln!(out, "REPLAY {} entries={}", dir.display(), entries.len());
    let (mut worst, mut held) = (0, 0usize);
    for path in &entries {
        match crate::run::replay::replay_entry(path) {
            Ok(r) => {
                let mark = if r.code == 0 { "ok  " } else { "FAIL" };
                let _ = writeln!(
                    out,
                    "{mark} {} (seed {}): {} (expects {})",
                    path.display(),
                    r.seed,
                    r.verdict,
                    r.expected
                );
                if r.code != 0 {
                    let _ = writeln!(
                        out,
                        "  reproduce: cargo run -p sim -- --scenario {}",
                        path.display()
                    );
                }
                held += usize::from(r.code == 0);
                worst = worst.max(r.code);
            }
            Err(e) => {
                eprintln!("error: {e}");
                worst = worst.max(EXIT_USAGE);
            }
        }
    }
    let _ = writeln!(out, "replay: {held} of {} entries as they expect", entries.len());
    worst
}
