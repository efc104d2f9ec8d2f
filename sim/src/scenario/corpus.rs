//! The regression corpus (`seeds/`): one scenario file per entry, each a seed that once found
//! something, written so that it keeps meaning the same run.
//!
//! An entry is a complete scenario: the config the seed ran with, its nemesis's faults made
//! explicit as `[[schedule]]` entries with random faults off (so a change in how random draws
//! fall cannot make it meaningless), the seed pinned, `expect` set to what it showed, and a
//! `[corpus]` table saying when and how it was found, with a one-line note. An entry that
//! expects violations must still show them when replayed (a harness that stops finding a known
//! bug has regressed); when the bug is fixed, its `expect` becomes `"pass"` and stays so.
//! `sim sweep --save-failures DIR` and `sim --save-corpus DIR` write entries; `sim replay` and
//! the `corpus` test target run them.

use super::config::{CorpusMeta, Expect, SimConfig};
use crate::fault::schedule::ScheduledFault;
use std::path::{Path, PathBuf};

/// The entry's file name: `<scenario>-seed<seed>.toml`, the name reduced to `[a-z0-9_-]`.
pub fn file_name(scenario: &str, seed: u64) -> String {
    let name: String = scenario
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("{name}-seed{seed}.toml")
}

/// Writes `text` as `dir/name`, creating `dir`; an existing entry of that name is kept (the
/// first finding stays as found). Returns the path and whether it was written.
pub fn save(dir: &Path, name: &str, text: &str) -> Result<(PathBuf, bool), String> {
    use std::io::Write;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join(name);
    // `create_new`: of two sweeps saving one seed at once, one writes and the other keeps it.
    let mut file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok((path, false)),
        Err(e) => return Err(format!("cannot write {}: {e}", path.display())),
    };
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok((path, true))
}

/// Saves seed `seed` of `config`, which drew `drawn`, as an entry expecting the violation kinds
/// `shown` (none: a pass), in `dir` under [`file_name`] (see [`save`]): what `--save-corpus` and
/// `sweep --save-failures` both do. `meta` says when (the caller's wall clock: this module never
/// reads one, as nothing a run uses may) and how it was found; its note is cut to one line.
pub fn save_entry(
    dir: &Path,
    config: &SimConfig,
    seed: u64,
    drawn: &[ScheduledFault],
    shown: &[&str],
    meta: CorpusMeta,
) -> Result<(PathBuf, bool), String> {
    let mut saved = config.with_faults_explicit(seed, drawn);
    let mut kinds: Vec<String> = shown.iter().map(|k| k.to_string()).collect();
    kinds.sort();
    kinds.dedup();
    saved.expect = match kinds.as_slice() {
        [] => Expect::One("pass".into()),
        [one] => Expect::One(one.clone()),
        _ => Expect::Any(kinds.clone()),
    };
    let note = meta.note.lines().next().unwrap_or("").to_string();
    saved.corpus = Some(CorpusMeta { note, ..meta });
    saved
        .validate()
        .map_err(|e| format!("the entry would not be a valid scenario: {e}"))?;
    let text = format!(
        "# A corpus entry: seed {seed} of `{}` with its {} drawn faults made explicit.\n\
         # Replay: cargo run -p sim -- --scenario FILE (or `sim replay` for the whole corpus).\n\
         # `expect` is what it showed when found; once the bug is fixed, set it to \"pass\".\n{}",
        config.name,
        drawn.len(),
        saved.to_toml()
    );
    save(dir, &file_name(&config.name, seed), &text)
}

/// The entries of the corpus in `dir`: its `*.toml` files, by name.
pub fn entries(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let read =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read the corpus {}: {e}", dir.display()))?;
    let mut out = Vec::new();
    for item in read {
        let path = item
            .map_err(|e| format!("cannot read the corpus {}: {e}", dir.display()))?
            .path();
        if path.extension().is_some_and(|x| x == "toml") && path.is_file() {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_plain() {
        assert_eq!(file_name("v2-takeover-race", 13), "v2-takeover-race-seed13.toml");
        assert_eq!(file_name("../x y", 1), "___x_y-seed1.toml");
    }

    fn meta_of(origin: &str, note: &str, found: &str) -> CorpusMeta {
        CorpusMeta {
            found: found.into(),
            origin: origin.into(),
            note: note.into(),
            finding: None,
        }
    }

    #[test]
    fn an_entry_is_a_scenario_that_expects_what_it_showed_and_is_never_overwritten() {
        let config = crate::scenario::load("default").unwrap();
        let dir = std::env::temp_dir().join(format!("sim-corpus-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let shown = ["lost_event", "duplicate_effect", "lost_event"];
        let (path, written) = save_entry(
            &dir,
            &config,
            5,
            &[],
            &shown,
            meta_of("sim --seed 5", "two bugs\nand more", "2026-12-02T19:00:00Z"),
        )
        .unwrap();
        assert!(written && path.ends_with("default-seed5.toml"));
        let back = crate::scenario::load(&path.display().to_string()).unwrap();
        assert_eq!(back.seed, 5);
        assert!(!back.faults.random);
        assert_eq!(back.expect.kinds(), ["duplicate_effect", "lost_event"]);
        let meta = back.corpus.unwrap();
        assert_eq!(
            (meta.origin.as_str(), meta.note.as_str()),
            ("sim --seed 5", "two bugs")
        );
        assert_eq!(meta.found, "2026-12-02T19:00:00Z");
        let before = std::fs::read_to_string(&path).unwrap();
        let (_, written) = save_entry(&dir, &config, 5, &[], &[], meta_of("o", "n", "later")).unwrap();
        assert!(!written);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            before,
            "the first finding stays"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
