//! Verdicts that tell the truth: a run cut short by a limit still judges what happened, and
//! correctness outranks liveness in the exit code.

use sim::internal::model::db::DbMode;
use sim::internal::run::{self, Verdict};
use sim::internal::scenario::config::{ProtocolKind, SimConfig};

fn kinds(v: &Verdict) -> Vec<&'static str> {
    v.violations().iter().map(|v| v.kind).collect()
}

/// v2 on a plain database double-applies under the default faults; a step limit that stops
/// the run midway must not hide the duplicates that already happened. (Seed 3 since joins and
/// fetches are long polls: seed 7 reaches the limit before its first duplicate now. 2,000
/// steps since a call no longer polls its caller for nothing: a whole default run takes about
/// 3,000, and 4,000 let seed 3 finish.)
#[test]
fn a_step_limit_still_judges_the_history_so_far() {
    let config = SimConfig {
        protocol: ProtocolKind::V2,
        database: DbMode::Plain,
        steps_max: 2000,
        ..SimConfig::default()
    };
    let r = run::run(3, &config);
    assert!(r.duplicates > 0, "seed 3 double-applies before the limit: {r:?}");
    let k = kinds(&r.verdict);
    assert_eq!(k.first(), Some(&"step_limit"), "{k:?}");
    assert!(
        k.contains(&"duplicate_effect"),
        "the duplicates are judged: {k:?}"
    );
    assert!(
        !k.contains(&"lost_event"),
        "end-state checks do not judge a run cut short: {k:?}"
    );
    assert!(
        matches!(r.verdict, Verdict::Correctness(_)),
        "correctness outranks liveness"
    );
    assert_eq!(r.verdict.exit_code(), 3);
}

/// The watchdog stops a run that overruns its real time; its verdict keeps the trace recorded
/// so far and judges it, and the run's thread is told to stop.
#[test]
fn a_watchdog_verdict_keeps_and_judges_the_trace_so_far() {
    let config = SimConfig {
        protocol: ProtocolKind::V2,
        database: DbMode::Plain,
        events: 20_000,
        watchdog_s: 1,
        ..SimConfig::default()
    };
    let r = run::run(7, &config);
    let k = kinds(&r.verdict);
    assert_eq!(k.first(), Some(&"watchdog"), "{k:?}");
    assert!(
        r.events.len() > 100,
        "the trace so far is kept: {} events",
        r.events.len()
    );
}

/// Runs the `sim` binary on a scenario file holding `toml`, with `RUST_BACKTRACE=1` (so a
/// panic would print its backtrace too); returns the exit code, stdout and stderr.
fn sim_binary(name: &str, toml: &str) -> (i32, String, String) {
    let dir = std::env::temp_dir().join(format!("sim-limits-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(&file, toml).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sim"))
        .arg("--scenario")
        .arg(&file)
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Whether `stderr` shows a panic: the hook's message, a backtrace, or madsim's task context.
fn shows_a_panic(stderr: &str) -> bool {
    [
        "panicked at",
        "stack backtrace",
        "RUST_BACKTRACE",
        "context: node=",
    ]
    .iter()
    .any(|s| stderr.contains(s))
}

/// A limit is a verdict, not a crash: a run stopped by its step limit or by the watchdog
/// prints its verdict and exit code, and nothing of a panic on stderr.
#[test]
fn a_limit_stops_the_run_without_a_panic_on_stderr() {
    let (code, out, err) = sim_binary("steps", "name = \"steps\"\nsteps_max = 2000\n");
    assert_eq!(code, 4, "{out}\n{err}");
    assert!(out.contains("verdict=liveness"), "{out}");
    assert!(out.contains("violation: step_limit"), "{out}");
    assert!(!shows_a_panic(&err), "stderr: {err}");

    let (code, out, err) = sim_binary(
        "watchdog",
        "name = \"watchdog\"\nevents = 100000\nwatchdog_s = 1\n",
    );
    assert_eq!(code, 4, "{out}\n{err}");
    assert!(out.contains("violation: watchdog"), "{out}");
    assert!(!shows_a_panic(&err), "stderr: {err}");
}

/// A real crash still reports its panic on stderr, with exit code 5.
#[test]
fn a_crash_still_reports_its_panic() {
    let (code, out, err) = sim_binary("crash", "name = \"crash\"\npanic_at_ms = 1500\n");
    assert_eq!(code, 5, "{out}\n{err}");
    assert!(out.contains("verdict=crash"), "{out}");
    assert!(
        err.contains("panicked at") && err.contains("self-test panic"),
        "stderr: {err}"
    );
}
