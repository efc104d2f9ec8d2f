//! A single run (the command without a subcommand): the seed and scenario, the knobs the
//! command line changed (every knob under `-v`), the summary, the violations and notes, the
//! verdict against the scenario's expectation, and with `--check-determinism` a second run
//! compared byte for byte. Its exit code is [`crate::run::Verdict::exit_code_against`]; on a
//! failure the last lines are the focused diagram's command and the one that reproduces it.

use super::{configure, Cli, Configured, EXIT_NONDETERMINISM, EXIT_USAGE};
use crate::report::{first_difference, summary};
use crate::scenario::config::SimConfig;
use crate::trace;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Violations (and notes) printed per run without `-v`; the rest are counted (`-v` prints
/// every one).
pub const PRINTED_MAX: usize = 20;

/// Checks before a run that its output files can be written, so a bad path is found before
/// the run, not after it (where it would hide the verdict). Creates the files (empty).
pub(super) fn check_writable(paths: &[&Option<PathBuf>]) -> Result<(), String> {
    for path in paths.iter().copied().flatten() {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}

/// Checks that `--focus` names an event of the run's workload (at least 4 characters of its
/// id), before the run.
fn check_focus(config: &SimConfig, seed: u64, focus: &str) -> Result<(), String> {
    let prefix = focus.trim().to_lowercase();
    if prefix.chars().count() < crate::report::FOCUS_CHARS_MIN {
        return Err(format!(
            "--focus {focus:?}: give at least {} characters of an event id",
            crate::report::FOCUS_CHARS_MIN
        ));
    }
    let workload = crate::workload::workload(&config.workload(), &mut crate::rng::stream(seed, "workload"));
    if workload
        .iter()
        .any(|e| e.event_id.to_lowercase().starts_with(&prefix))
    {
        Ok(())
    } else {
        Err(format!(
            "--focus {focus:?} matches no event of seed {seed} (its {} events' ids are in the trace)",
            workload.len()
        ))
    }
}

pub(super) fn run(cli: &Cli, out: &mut dyn Write) -> i32 {
    let configured = match configure(&cli.scenario) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let Configured { config, flags, .. } = &configured;
    let (config, flags) = (config, flags.as_str());
    let seed = cli.seed.unwrap_or(config.seed);
    let checked = check_writable(&[&cli.trace, &cli.mermaid, &cli.save_scenario]).and_then(|()| {
        cli.focus
            .as_deref()
            .map_or(Ok(()), |f| check_focus(config, seed, f))
    });
    if let Err(e) = checked {
        eprintln!("error: {e}");
        return EXIT_USAGE;
    }
    let reproduce = format!("cargo run -p sim -- --seed {seed}{flags}");
    let _ = writeln!(out, "SEED={seed} scenario={}", config.name);
    for line in configured.header() {
        let _ = writeln!(out, "{line}");
    }
    // A swarm base's seed runs its own draw: say what was drawn, and show its knobs.
    let this_run = config.for_seed(seed);
    if config.swarm {
        let _ = writeln!(out, "{}", this_run.description);
    }
    if cli.verbose {
        for knob in this_run.knobs() {
            let _ = writeln!(out, "{knob}");
        }
    }
    let result = crate::run::run(seed, config);
    if cli.verbose {
        // Numbered as violations name their trace events (`#143`: the JSONL's 0-based line).
        for (i, e) in result.events.iter().enumerate() {
            let _ = writeln!(out, "#{i:<5} {}", e.human());
        }
    }
    if let Some(path) = &cli.trace {
        if let Err(e) = std::fs::write(path, trace::jsonl(&result.events)) {
            eprintln!("error: cannot write {}: {e}", path.display());
            return EXIT_USAGE;
        }
    }
    if let Some(path) = &cli.mermaid {
        if let Err(e) = write_mermaid(path, &config.name, seed, &result, cli.focus.as_deref()) {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    }
    if let Some(path) = &cli.save_scenario {
        let saved = config.with_faults_explicit(seed, &result.drawn);
        if let Err(e) = saved.validate() {
            eprintln!(
                "error: cannot save the scenario: {e} (the run drew {} faults)",
                result.drawn.len()
            );
            return EXIT_USAGE;
        }
        let text = format!(
            "# Saved by `sim --seed {seed}{flags} --save-scenario`: the run's config with the\n\
             # nemesis's {} faults as [[schedule]] entries and random faults off.\n\
             # Replay: cargo run -p sim -- --scenario FILE\n{}",
            result.drawn.len(),
            saved.to_toml()
        );
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("error: cannot write {}: {e}", path.display());
            return EXIT_USAGE;
        }
    }
    if let Some(dir) = &cli.save_corpus {
        let origin = format!("cargo run -p sim -- --seed {seed}{flags}");
        match save_corpus(dir, config, seed, &result, origin, cli.note.as_deref()) {
            Ok(line) => eprintln!("{line}"),
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_USAGE;
            }
        }
    }
    let _ = writeln!(out, "{}", summary(&result));
    let violations = result.verdict.violations();
    let printed_max = if cli.verbose { usize::MAX } else { PRINTED_MAX };
    for v in violations.iter().take(printed_max) {
        let at = v
            .first_event
            .and_then(|i| result.events.get(i))
            .map(|e| format!("\n    first seen: {}", e.human().trim()));
        let _ = writeln!(out, "violation: {v}{}", at.unwrap_or_default());
        if let Some(why) = crate::check::why::explain(&result.events, v) {
            let _ = writeln!(out, "    why: {why}");
        }
    }
    print_rest(out, "violations", violations.len(), printed_max);
    for n in result.notes.iter().take(printed_max) {
        let _ = writeln!(out, "note: {n}");
        if let Some(why) = crate::check::why::explain(&result.events, n) {
            let _ = writeln!(out, "    why: {why}");
        }
    }
    print_rest(out, "notes", result.notes.len(), printed_max);
    if let crate::run::Verdict::Crash(msg) = &result.verdict {
        let _ = writeln!(out, "crash: {msg}");
    }
    let expected = config.expect.kinds();
    let as_expected = !matches!(result.verdict, crate::run::Verdict::Crash(_))
        && crate::check::as_expected(&expected, result.verdict.violations());
    let _ = writeln!(
        out,
        "expected: {} ({})",
        if expected.is_empty() {
            "pass".to_owned()
        } else {
            expected.join(" or ")
        },
        if as_expected {
            "as expected"
        } else {
            "NOT as expected"
        }
    );
    let mut code = result.verdict.exit_code_against(&expected);
    if cli.check_determinism {
        let again = crate::run::run(seed, config);
        match first_difference(&result, &again) {
            None => {
                let _ = writeln!(
                    out,
                    "determinism: the same trace twice ({} events, sha256 {})",
                    result.events.len(),
                    result.fingerprint()
                );
            }
            Some(diff) => {
                let _ = writeln!(out, "NON-DETERMINISM: {diff}");
                code = EXIT_NONDETERMINISM;
            }
        }
    }
    if code != 0 {
        let check = if cli.check_determinism {
            " --check-determinism"
        } else {
            ""
        };
        if let Some(focus) = violations.iter().find_map(|v| focus_of(&v.event_id)) {
            let _ = writeln!(out, "diagram: {reproduce} --mermaid failure.md --focus {focus}");
        }
        let _ = writeln!(out, "reproduce: {reproduce}{check}");
    }
    code
}

/// Writes `result`'s trace (a run of seed `seed` of the scenario `name`) to `path` as a
/// Mermaid sequence diagram in Markdown, only what concerns the event `focus` when given: what
/// `--mermaid` writes (`sim shrink --mermaid` too).
pub(super) fn write_mermaid(
    path: &Path,
    name: &str,
    seed: u64,
    result: &crate::run::RunResult,
    focus: Option<&str>,
) -> Result<(), String> {
    let title = format!("{name} — seed {seed}");
    let ending = crate::report::Ending::of(result);
    let diagram = crate::report::mermaid_markdown(&result.events, Some(&ending), focus, &title);
    std::fs::write(path, diagram).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Saves seed `seed`'s run `result` of `config` to the corpus `dir` (its drawn faults made
/// explicit, expecting the violations it showed), found by the command `origin`, with `note`:
/// what `--save-corpus` does (`sim shrink --save-corpus` too). Returns the line saying where.
pub(super) fn save_corpus(
    dir: &Path,
    config: &SimConfig,
    seed: u64,
    result: &crate::run::RunResult,
    origin: String,
    note: Option<&str>,
) -> Result<String, String> {
    let shown: Vec<&str> = result.verdict.violations().iter().map(|v| v.kind).collect();
    let note = note.unwrap_or("saved by --save-corpus");
    let saved = crate::scenario::corpus::save_entry(
        dir,
        config,
        seed,
        &result.drawn,
        &shown,
        crate::scenario::config::CorpusMeta {
            found: super::now_utc(),
            origin,
            note: note.to_string(),
            finding: None,
        },
    );
    match saved {
        Ok((path, written)) => Ok(format!(
            "corpus: {} {}",
            if written { "saved" } else { "kept the existing" },
            path.display()
        )),
        Err(e) => Err(format!("cannot save the corpus entry: {e}")),
    }
}

/// What `--focus` takes for a violation's event: the id's first group (a focus needs at least
/// [`crate::report::FOCUS_CHARS_MIN`] characters), or nothing when the violation names no event.
pub(super) fn focus_of(event_id: &str) -> Option<&str> {
    let first = event_id.split('-').next().unwrap_or("");
    let focus = if first.chars().count() >= crate::report::FOCUS_CHARS_MIN {
        first
    } else {
        event_id
    };
    (focus.chars().count() >= crate::report::FOCUS_CHARS_MIN).then_some(focus)
}

fn print_rest(out: &mut dyn Write, what: &str, total: usize, printed: usize) {
    if total > printed {
        let _ = writeln!(
            out,
            "... and {} more {what} ({total} in all; -v prints every one)",
            total - printed
        );
    }
}
