//! `sim shrink`: a failing seed's run made explicit (as `--save-scenario` writes it), shrunk by
//! [`crate::shrink`] to the smallest config found that fails with the same fingerprint, written
//! as a scenario file and replayed twice.
//!
//! It prints each candidate (what it changed; still failing the same way, passing, or failing
//! differently), the final size against the original, which faults are each necessary, any
//! which knobs could vary without losing the failure (each tried alone on the result), any
//! other failure met on the way (each written as its own scenario file), and why it stopped;
//! with `--mermaid FILE` the shrunk run's diagram, focused on its violating event, and with
//! `--save-corpus DIR [--note TEXT]` the shrunk run as a corpus entry.
//! Exit codes: 0 when the seed passes (nothing to shrink), 2 bad input, 6 when the explicit
//! config does not fail as the seed did or the result does not replay identically; otherwise
//! the shrunk run's own code (3 correctness, 4 liveness, 5 crash), as running the file gives.

use super::{Configured, EXIT_NONDETERMINISM, EXIT_USAGE};
use crate::scenario::config::SimConfig;
use crate::shrink::{self, Budget, Outcome, Shrunk, Size};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What `sim shrink` was asked.
pub(super) struct ShrinkArgs {
    /// The seed.
    pub seed: Option<u64>,
    /// Where to write the result (default `shrunk-<scenario>-seed-<N>.toml`).
    pub out: Option<PathBuf>,
    /// The budget.
    pub budget: Budget,
    /// Where to write the shrunk run's diagram, focused on its violating event.
    pub mermaid: Option<PathBuf>,
    /// The corpus to save the shrunk run to.
    pub save_corpus: Option<PathBuf>,
    /// The corpus entry's note.
    pub note: Option<String>,
}

fn run_outcome(c: &SimConfig) -> Outcome {
    Outcome::of(&crate::run::run(c.seed, c))
}

/// `n` and `what`, plural unless one.
fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

fn secs(us: u64) -> String {
    format!("{:.1} s", us as f64 / 1e6)
}

/// The size lines: each measure, original -> shrunk.
fn sizes(s: &Shrunk) -> Vec<String> {
    let (a, b) = (Size::of(&s.original), Size::of(&s.config));
    vec![
        format!("  faults:       {} -> {}", a.faults, b.faults),
        format!("  events:       {} -> {}", a.events, b.events),
        format!("  workers:      {} -> {}", a.workers, b.workers),
        format!("  partitions:   {} -> {}", a.partitions, b.partitions),
        format!("  copies:       {} -> {}", a.copies, b.copies),
        format!("  safety phase: {} s -> {} s", a.safety_s, b.safety_s),
        format!(
            "  trace events: {} -> {}",
            s.original_outcome.trace_events, s.outcome.trace_events
        ),
        format!(
            "  virtual time: {} -> {}",
            secs(s.original_outcome.virtual_us),
            secs(s.outcome.virtual_us)
        ),
    ]
}

/// The "could vary:" section: each knob tried at other values on the result and whether the
/// failure held (empty when the budget stopped the shrink before).
fn could_vary(s: &Shrunk) -> Vec<String> {
    let Some(varied) = &s.varied else {
        return Vec::new();
    };
    let mut out =
        vec!["could vary (each knob tried alone on the result; \"holds\": fails the same way):".to_owned()];
    out.extend(varied.iter().map(|v| format!("  {v}")));
    if varied.is_empty() {
        out.push("  nothing tried: the budget ended first".to_owned());
    }
    out
}

/// The file a finding is written to: `out` with `suffix` before its extension.
fn beside(out: &Path, suffix: &str) -> PathBuf {
    let stem = out.file_stem().and_then(|s| s.to_str()).unwrap_or("shrunk");
    out.with_file_name(format!("{stem}{suffix}.toml"))
}

/// Why a shrink gave no file.
pub(super) enum Failed {
    /// The run made explicit does not fail as the seed did (what it gave).
    Differs(shrink::Fingerprint),
    /// The run could not be made explicit, or the file not written: the message.
    Input(String),
}

/// Shrinks `seed`'s run `result` of `config` (which fails with `target`) within `budget`,
/// `on_step` seeing each candidate, and writes the result to `path` as a scenario file whose
/// header says what it shows. Returns the shrink and the file's text.
pub(super) fn shrink_to_file(
    config: &SimConfig,
    flags: &str,
    seed: u64,
    result: &crate::run::RunResult,
    path: &Path,
    budget: Budget,
    on_step: &mut dyn FnMut(&shrink::Step),
) -> Result<(Shrunk, String), Failed> {
    let target = shrink::fingerprint(result);
    let mut start = config.with_faults_explicit(seed, &result.drawn);
    start
        .validate()
        .map_err(|e| Failed::Input(format!("cannot make the run explicit: {e}")))?;
    start.name = format!("{}-seed-{seed}-shrunk", config.name);
    let shrunk = match shrink::shrink(&start, &target, &mut run_outcome, budget, on_step) {
        Ok(s) => s,
        Err(shrink::NotShrunk::Differs(got)) => return Err(Failed::Differs(got)),
    };
    let mut file = shrunk.config.clone();
    let (a, b) = (Size::of(&shrunk.original), Size::of(&file));
    file.description = format!(
        "seed {seed} of {}{flags} shrunk: fails with {target} ({}, {})",
        config.name,
        count(b.faults, "fault"),
        count(b.events, "event")
    );
    let mut header = vec![
        format!("# Made by `sim shrink --seed {seed}{flags}`: the smallest run found that fails"),
        format!("# as seed {seed} of `{}` does, with {target}.", config.name),
        format!(
            "# From {} faults, {} events, {} workers, {} trace events, {} virtual",
            a.faults,
            a.events,
            a.workers,
            shrunk.original_outcome.trace_events,
            secs(shrunk.original_outcome.virtual_us)
        ),
        format!(
            "# to {}, {}, {}, {} trace events, {} virtual,",
            count(b.faults, "fault"),
            count(b.events, "event"),
            count(b.workers as usize, "worker"),
            shrunk.outcome.trace_events,
            secs(shrunk.outcome.virtual_us)
        ),
        format!(
            "# in {} runs ({:.1} s; stopped: {}).",
            shrunk.runs,
            shrunk.elapsed.as_secs_f64(),
            shrunk.stop
        ),
        "# The workload is the seed's, drawn for `events` as ever; `keep_events` lists the".into(),
        "# events published (each as drawn). The faults are [[schedule]] entries, random off.".into(),
        "# Replay: cargo run -p sim -- --scenario FILE".into(),
    ];
    header.extend(could_vary(&shrunk).into_iter().map(|l| format!("# {l}")));
    let text = format!("{}\n{}", header.join("\n"), file.to_toml());
    std::fs::write(path, &text)
        .map_err(|e| Failed::Input(format!("cannot write {}: {e}", path.display())))?;
    Ok((shrunk, text))
}

pub(super) fn shrink(configured: &Configured, args: &ShrinkArgs, out: &mut dyn Write) -> i32 {
    let Configured { config, flags, .. } = configured;
    let seed = args.seed.unwrap_or(config.seed);
    let path = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("shrunk-{}-seed-{seed}.toml", config.name)));
    if let Err(e) = super::run::check_writable(&[&Some(path.clone()), &args.mermaid]) {
        eprintln!("error: {e}");
        return EXIT_USAGE;
    }
    let _ = writeln!(out, "shrink: seed {seed} of {}{flags}", config.name);
    let result = crate::run::run(seed, config);
    let target = shrink::fingerprint(&result);
    if target.passes() {
        let _ = writeln!(out, "seed {seed} passes: nothing to shrink");
        let _ = std::fs::remove_file(&path);
        return 0;
    }
    let _ = writeln!(
        out,
        "fails with: {target} ({} faults drawn, {} trace events); shrinking within {} runs and {} s",
        result.drawn.len(),
        result.events.len(),
        args.budget.max_runs,
        args.budget.max_time.as_secs()
    );
    let mut n = 0;
    let mut print = |step: &shrink::Step| {
        n += 1;
        let _ = writeln!(out, "  {n:>3}. {step}");
    };
    let (shrunk, text) = match shrink_to_file(config, flags, seed, &result, &path, args.budget, &mut print) {
        Ok(done) => done,
        Err(Failed::Differs(got)) => {
            eprintln!(
                "error: seed {seed} fails with {target}, but its run made explicit (its faults as \
                 [[schedule]] entries) gives {got}: it cannot be shrunk (report this: --save-scenario \
                 should replay the run)"
            );
            return EXIT_NONDETERMINISM;
        }
        Err(Failed::Input(e)) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let _ = writeln!(
        out,
        "shrunk: still fails with {target}; {} runs in {:.1} s; stopped: {}",
        shrunk.runs,
        shrunk.elapsed.as_secs_f64(),
        shrunk.stop
    );
    for line in sizes(&shrunk) {
        let _ = writeln!(out, "{line}");
    }
    let necessary = match &shrunk.necessary {
        Some(each) => each
            .iter()
            .zip(&shrunk.config.schedule)
            .enumerate()
            .map(|(i, (needed, f))| {
                let entry = serde_json::to_string(f).unwrap_or_default();
                let word = if *needed {
                    "necessary (without it the run passes or fails differently)"
                } else {
                    "not necessary alone"
                };
                format!("schedule[{i}] {entry}: {word}")
            })
            .collect(),
        None => vec!["unknown: the budget stopped the shrink first".to_owned()],
    };
    let _ = writeln!(out, "faults:");
    for line in &necessary {
        let _ = writeln!(out, "  {line}");
    }
    for line in could_vary(&shrunk) {
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(out, "written: {}", path.display());
    let name = &shrunk.original.name;
    for (k, (fp, other)) in shrunk.others.iter().enumerate() {
        let other_path = beside(&path, &format!(".other-{}", k + 1));
        let mut other = other.clone();
        other.name = format!("{name}-other-{}", k + 1);
        other.description = format!("met while shrinking seed {seed}: fails with {fp}");
        let note = format!(
            "# Met by `sim shrink --seed {seed}{flags}`: a candidate that fails with {fp}, not\n\
             # {target} (another finding, not shrunk).\n"
        );
        match std::fs::write(&other_path, format!("{note}{}", other.to_toml())) {
            Ok(()) => {
                let _ = writeln!(out, "another finding: {fp}: {}", other_path.display());
            }
            Err(e) => eprintln!("warning: cannot write {}: {e}", other_path.display()),
        }
    }
    // Trust, but check: the file as written, parsed back and run twice.
    let replayed = match crate::scenario::parse(&text, &path.display().to_string()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: the shrunk scenario does not load: {e}");
            return EXIT_NONDETERMINISM;
        }
    };
    let first = crate::run::run(replayed.seed, &replayed);
    let second = crate::run::run(replayed.seed, &replayed);
    let (f1, f2) = (first.fingerprint(), second.fingerprint());
    if f1 != f2 || shrink::fingerprint(&first) != target {
        eprintln!(
            "error: the shrunk scenario does not replay: traces {f1} and {f2}, fingerprint {}",
            shrink::fingerprint(&first)
        );
        return EXIT_NONDETERMINISM;
    }
    let _ = writeln!(
        out,
        "replayed twice: identical traces (trace_sha256={f1}), fails with {target}"
    );
    if let Some(file) = &args.mermaid {
        let violations = first.verdict.violations();
        let focus = violations.iter().find_map(|v| super::run::focus_of(&v.event_id));
        if let Err(e) = super::run::write_mermaid(file, &replayed.name, replayed.seed, &first, focus) {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
        let on = focus.map(|f| format!(", focused on {f}")).unwrap_or_default();
        let _ = writeln!(out, "diagram: {}{on}", file.display());
    }
    if let Some(dir) = &args.save_corpus {
        let origin = format!("cargo run -p sim -- shrink --seed {seed}{flags}");
        match super::run::save_corpus(
            dir,
            &replayed,
            replayed.seed,
            &first,
            origin,
            args.note.as_deref(),
        ) {
            Ok(line) => {
                let _ = writeln!(out, "{line}");
            }
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_USAGE;
            }
        }
    }
    let _ = writeln!(
        out,
        "reproduce: cargo run -p sim -- --scenario {}",
        path.display()
    );
    first.verdict.exit_code()
}

/// The budget from the flags.
pub(super) fn budget(max_runs: u64, max_seconds: u64) -> Budget {
    Budget {
        max_runs,
        max_time: Duration::from_secs(max_seconds),
    }
}
