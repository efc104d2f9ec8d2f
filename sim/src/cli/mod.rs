//! The command line: run a seed, check its determinism, or key a message.
//!
//! ```text
//! sim [--seed N] [--protocol v2|fenced] [--database plain|unique|fenced] [--trace FILE]
//!     [--check-determinism] [-v]
//! sim key --service NAME [--prefix P] [--header NAME=VALUE]... [FILE|-]
//! ```
//! Exit codes, judged against the scenario's `expect`: 0 as expected (a pass, or exactly the
//! expected violations), 2 bad usage or input, 3 a correctness violation, 4 a liveness
//! violation (a limit reached included; correctness outranks it), 5 crash, 6 non-determinism,
//! 7 an expected violation did not appear. On any failure the last line is the command that
//! reproduces it. Errors go to stderr; the run's report to stdout.

use crate::model::db::DbMode;
use crate::run::RunResult;
use crate::scenario::config::{ProtocolKind, SimConfig};
use crate::trace;
use clap::{Parser, Subcommand, ValueEnum};
use std::io::{Read, Write};
use std::path::PathBuf;

/// The version and the commit it was built from.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("SIM_GIT_COMMIT"),
    ")"
);

/// Exit code for bad usage or input.
pub const EXIT_USAGE: i32 = 2;
/// Exit code when two runs of one seed differ.
pub const EXIT_NONDETERMINISM: i32 = 6;

#[derive(Parser, Debug)]
#[command(
    name = "sim",
    version = VERSION,
    about = "Deterministic simulation of idempotent Kafka consumers on Redis"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Sub>,
    /// The seed: everything random in the run derives from it (default: the scenario's).
    #[arg(long)]
    seed: Option<u64>,
    /// The scenario: an embedded one by name (see `sim scenarios`) or a TOML file.
    #[arg(long, global = true, value_name = "NAME|PATH")]
    scenario: Option<String>,
    /// The idempotency protocol the workers run.
    #[arg(long, value_enum, global = true)]
    protocol: Option<ProtocolArg>,
    /// How the database guards effects.
    #[arg(long, value_enum, global = true)]
    database: Option<DatabaseArg>,
    /// Write the trace as canonical JSON lines to FILE.
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,
    /// Run the seed twice on fresh threads and compare the traces byte for byte.
    #[arg(long, global = true)]
    check_determinism: bool,
    /// Print the human trace.
    #[arg(short, long)]
    verbose: bool,
    /// Write the trace as a Mermaid sequence diagram (in Markdown) to FILE.
    #[arg(long, value_name = "FILE")]
    mermaid: Option<PathBuf>,
    /// With --mermaid: only what concerns this event (its id, or a prefix of 4+ characters).
    #[arg(long, value_name = "EVENT_ID", requires = "mermaid")]
    focus: Option<String>,
}

#[derive(Subcommand, Debug)]
enum Sub {
    /// List the embedded scenarios with their descriptions.
    Scenarios,
    /// Measure speed: run seeds one after another and report runs, virtual time and trace
    /// events per wall second (build with --release).
    Bench {
        /// How many seeds, from 0.
        #[arg(long, default_value_t = 200)]
        count: u64,
    },
    /// Run a range of seeds and summarize (the flags of a single run apply to each).
    Sweep {
        /// First seed.
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// How many seeds.
        #[arg(long, default_value_t = 100)]
        count: u64,
        /// Seeds run at once (each on its own thread).
        #[arg(long, default_value_t = 2)]
        jobs: usize,
    },
    /// Print the Redis key the library derives for one Kafka message value.
    Key {
        /// The consuming service's name (the key's second segment).
        #[arg(long)]
        service: String,
        /// The key prefix.
        #[arg(long, default_value = idempotency::config::DEFAULT_KEY_PREFIX)]
        prefix: String,
        /// A Kafka header, NAME=VALUE (repeatable).
        #[arg(long = "header", value_name = "NAME=VALUE")]
        headers: Vec<String>,
        /// The message value: a file, or `-` (the default) for standard input.
        #[arg(default_value = "-")]
        file: String,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ProtocolArg {
    V2,
    Fenced,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum DatabaseArg {
    Plain,
    Unique,
    Fenced,
}

/// Runs the command line with `args` (the first is the program name), writing to `out`;
/// returns the exit code.
pub fn main_with(args: Vec<String>, out: &mut dyn Write) -> i32 {
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            eprint!("{e}");
            return EXIT_USAGE;
        }
        Err(e) => {
            // --help and --version: asked for, so on stdout.
            let _ = write!(out, "{e}");
            return 0;
        }
    };
    if let Err(e) = applicable(&cli) {
        eprintln!("error: {e}");
        return EXIT_USAGE;
    }
    match cli.command {
        Some(Sub::Key {
            service,
            prefix,
            headers,
            file,
        }) => key(&service, &prefix, &headers, &file, out),
        Some(Sub::Scenarios) => {
            for (name, text) in crate::scenario::EMBEDDED {
                let description = crate::scenario::parse(text, name)
                    .map(|c| c.description)
                    .unwrap_or_else(|e| e.to_string());
                let _ = writeln!(out, "{name:<28} {description}");
            }
            0
        }
        Some(Sub::Bench { count }) => match configure(&cli) {
            Ok((config, _)) => bench(&config, count, out),
            Err(code) => code,
        },
        Some(Sub::Sweep { from, count, jobs }) => match configure(&cli) {
            Ok((config, flags)) => sweep(
                &config,
                &flags,
                from,
                count,
                jobs.max(1),
                cli.check_determinism,
                out,
            ),
            Err(code) => code,
        },
        None => run(&cli, out),
    }
}

fn key(service: &str, prefix: &str, headers: &[String], file: &str, out: &mut dyn Write) -> i32 {
    let mut config = idempotency::Config::new(service);
    config.key_prefix = prefix.to_owned();
    if let Err(e) = config.validate() {
        eprintln!("error: {e}");
        return EXIT_USAGE;
    }
    let mut msg = idempotency::Message::new("cli", Vec::new());
    for h in headers {
        let Some((name, value)) = h.split_once('=') else {
            eprintln!("error: --header {h:?}: expected NAME=VALUE");
            return EXIT_USAGE;
        };
        msg = msg.with_header(name, value);
    }
    let read = if file == "-" {
        std::io::stdin().read_to_end(&mut msg.value).map(|_| ())
    } else {
        std::fs::read(file).map(|v| msg.value = v)
    };
    if let Err(e) = read {
        eprintln!("error: cannot read {file}: {e}");
        return EXIT_USAGE;
    }
    match idempotency::key::derive_key(prefix, service, &msg) {
        Ok(k) => {
            // The key alone first (for scripts), then what v2 writes into the records, as JSON.
            let json = |v: &idempotency::pyjson::PyValue| idempotency::pyjson::dumps(v, false);
            let _ = writeln!(out, "{}", k.key);
            let _ = writeln!(
                out,
                "path={} event_type={} event_id={} correlation_id={} source_service={}",
                k.path,
                k.event_type,
                json(&k.event_id),
                json(&k.correlation_id),
                json(&k.source_service)
            );
            0
        }
        Err(e) => {
            eprintln!(
                "error: {file}: no key ({}): {e}; v2 would run the handler without idempotency",
                e.kind()
            );
            EXIT_USAGE
        }
    }
}

/// Rejects flags that the chosen command would silently ignore.
fn applicable(cli: &Cli) -> Result<(), String> {
    let command = match &cli.command {
        None => return Ok(()),
        Some(Sub::Scenarios) => "scenarios",
        Some(Sub::Bench { .. }) => "bench",
        Some(Sub::Sweep { .. }) => "sweep",
        Some(Sub::Key { .. }) => "key",
    };
    // The flags of a single run only (sweep takes its seeds from --from/--count).
    let single_run: [(&str, bool); 5] = [
        ("--seed", cli.seed.is_some()),
        ("--trace", cli.trace.is_some()),
        ("--mermaid", cli.mermaid.is_some()),
        ("--focus", cli.focus.is_some()),
        ("--verbose", cli.verbose),
    ];
    let scenario_flags: [(&str, bool); 3] = [
        ("--scenario", cli.scenario.is_some()),
        ("--protocol", cli.protocol.is_some()),
        ("--database", cli.database.is_some()),
    ];
    let mut rejected: Vec<&str> = single_run
        .iter()
        .filter(|(_, set)| *set)
        .map(|(f, _)| *f)
        .collect();
    if matches!(command, "scenarios" | "key") {
        rejected.extend(scenario_flags.iter().filter(|(_, set)| *set).map(|(f, _)| *f));
    }
    if command != "sweep" && cli.check_determinism {
        rejected.push("--check-determinism");
    }
    match rejected.as_slice() {
        [] => Ok(()),
        flags => Err(format!(
            "`sim {command}` does not take {}; see `sim {command} --help`",
            flags.join(", ")
        )),
    }
}

/// Checks before a run that its output files can be written, so a bad path is found before
/// the run, not after it (where it would hide the verdict). Creates the files (empty).
fn check_writable(paths: &[&Option<PathBuf>]) -> Result<(), String> {
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
    let workload = crate::workload::workload(config, &mut crate::rng::stream(seed, "workload"));
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

/// The run's config from the command line, and the flags that reproduce it.
fn configure(cli: &Cli) -> Result<(SimConfig, String), i32> {
    let mut flags = String::new();
    let name = cli.scenario.as_deref().unwrap_or("default");
    let mut config = match crate::scenario::load(name) {
        Ok(c) => {
            if cli.scenario.is_some() {
                flags.push_str(&format!(" --scenario {name}"));
            }
            c
        }
        Err(e) => {
            eprintln!("error: {e}");
            return Err(EXIT_USAGE);
        }
    };
    if let Some(p) = cli.protocol {
        config.protocol = match p {
            ProtocolArg::V2 => ProtocolKind::V2,
            ProtocolArg::Fenced => ProtocolKind::Fenced,
        };
        flags.push_str(&format!(" --protocol {}", config.protocol.to_lib().name()));
    }
    if let Some(d) = cli.database {
        config.database = match d {
            DatabaseArg::Plain => DbMode::Plain,
            DatabaseArg::Unique => DbMode::Unique,
            DatabaseArg::Fenced => DbMode::Fenced,
        };
        flags.push_str(&format!(" --database {}", config.database.name()));
    }
    if let Err(e) = config.validate() {
        eprintln!("error: {e}");
        return Err(EXIT_USAGE);
    }
    Ok((config, flags))
}

fn run(cli: &Cli, out: &mut dyn Write) -> i32 {
    let (config, flags) = match configure(cli) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let seed = cli.seed.unwrap_or(config.seed);
    let checked = check_writable(&[&cli.trace, &cli.mermaid]).and_then(|()| {
        cli.focus
            .as_deref()
            .map_or(Ok(()), |f| check_focus(&config, seed, f))
    });
    if let Err(e) = checked {
        eprintln!("error: {e}");
        return EXIT_USAGE;
    }
    let reproduce = format!("cargo run -p sim -- --seed {seed}{flags}");
    let _ = writeln!(out, "SEED={seed}");
    for knob in config.knobs() {
        let _ = writeln!(out, "{knob}");
    }
    let result = crate::run::run(seed, &config);
    if cli.verbose {
        let _ = write!(out, "{}", trace::human(&result.events));
    }
    if let Some(path) = &cli.trace {
        if let Err(e) = std::fs::write(path, trace::jsonl(&result.events)) {
            eprintln!("error: cannot write {}: {e}", path.display());
            return EXIT_USAGE;
        }
    }
    if let Some(path) = &cli.mermaid {
        let title = format!("{} — seed {seed}", config.name);
        let diagram = crate::report::mermaid_markdown(&result.events, cli.focus.as_deref(), &title);
        if let Err(e) = std::fs::write(path, diagram) {
            eprintln!("error: cannot write {}: {e}", path.display());
            return EXIT_USAGE;
        }
    }
    let _ = writeln!(out, "{}", summary(&result));
    let violations = result.verdict.violations();
    for v in violations.iter().take(PRINTED_MAX) {
        let at = v
            .first_event
            .and_then(|i| result.events.get(i))
            .map(|e| format!("\n    first seen: {}", e.human().trim()));
        let _ = writeln!(out, "violation: {v}{}", at.unwrap_or_default());
    }
    print_rest(out, "violations", violations.len());
    for n in result.notes.iter().take(PRINTED_MAX) {
        let _ = writeln!(out, "note: {n}");
    }
    print_rest(out, "notes", result.notes.len());
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
    let mut code = run_exit_code(&result.verdict, &expected);
    if cli.check_determinism {
        let again = crate::run::run(seed, &config);
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
        let _ = writeln!(out, "reproduce: {reproduce}{check}");
    }
    code
}

/// Violations (and notes) printed per run; the rest are counted (all are in the trace).
pub const PRINTED_MAX: usize = 20;

/// Exit code when a scenario expects a violation and the run did not show it.
pub const EXIT_EXPECTATION_UNMET: i32 = 7;

fn print_rest(out: &mut dyn Write, what: &str, total: usize) {
    if total > PRINTED_MAX {
        let _ = writeln!(
            out,
            "... and {} more {what} ({total} in all; --trace FILE has every one)",
            total - PRINTED_MAX
        );
    }
}

/// A single run's exit code, judged against the scenario's expectation: 0 when it holds (a
/// pass where a pass is expected, or the expected violations and nothing else);
/// [`EXIT_EXPECTATION_UNMET`] when a violation was expected and the run passed; the verdict's
/// own code when anything else showed (a crash is always 5).
pub fn run_exit_code(verdict: &crate::run::Verdict, expected: &[String]) -> i32 {
    if matches!(verdict, crate::run::Verdict::Crash(_)) || expected.is_empty() {
        return verdict.exit_code();
    }
    if crate::check::as_expected(expected, verdict.violations()) {
        0
    } else if verdict.violations().is_empty() {
        EXIT_EXPECTATION_UNMET
    } else {
        verdict.exit_code()
    }
}

fn sweep(
    config: &SimConfig,
    flags: &str,
    from: u64,
    count: u64,
    jobs: usize,
    determinism: bool,
    out: &mut dyn Write,
) -> i32 {
    if count == 0 {
        eprintln!("error: sweep --count must be at least 1");
        return EXIT_USAGE;
    }
    if from.checked_add(count).is_none() {
        eprintln!(
            "error: sweep --from {from} --count {count} runs past the last seed ({}): lower --from or --count",
            u64::MAX
        );
        return EXIT_USAGE;
    }
    let _ = writeln!(
        out,
        "SWEEP from={from} count={count} jobs={jobs} check_determinism={determinism}"
    );
    for knob in config.knobs() {
        let _ = writeln!(out, "{knob}");
    }
    let started = std::time::Instant::now();
    let seeds: Vec<u64> = (from..from + count).collect();
    let mut verdicts: std::collections::BTreeMap<&'static str, u64> = Default::default();
    let mut faults: std::collections::BTreeMap<String, usize> = Default::default();
    let (mut duplicates, mut virtual_us, mut worst, mut passed) = (0usize, 0u64, 0i32, 0u64);
    let expected = config.expect.kinds();
    let (mut showing, mut unexpected) = (0u64, 0u64);
    let mut kafka = crate::check::kafka::KafkaStats::default();
    for chunk in seeds.chunks(jobs) {
        let results: Vec<(RunResult, Option<String>)> = std::thread::scope(|scope| {
            let handles: Vec<_> = chunk
                .iter()
                .map(|&seed| {
                    scope.spawn(move || {
                        let r = crate::run::run(seed, config);
                        let diff = determinism
                            .then(|| first_difference(&r, &crate::run::run(seed, config)))
                            .flatten();
                        (r, diff)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a sweep thread"))
                .collect()
        });
        for (r, diff) in results {
            *verdicts.entry(r.verdict.name()).or_default() += 1;
            for (k, n) in &r.faults {
                *faults.entry(k.clone()).or_default() += n;
            }
            duplicates += r.duplicates;
            kafka += &r.kafka;
            if !expected.is_empty() && crate::check::as_expected(&expected, r.verdict.violations()) {
                showing += 1;
            }
            let crashed = matches!(r.verdict, crate::run::Verdict::Crash(_));
            let seed_ok = !crashed && crate::check::only_expected(&expected, r.verdict.violations());
            if !seed_ok {
                unexpected += 1;
            }
            virtual_us += r.virtual_us;
            // A seed is as expected when it shows nothing but the scenario's expected
            // violations (a seed of a violation-expecting scenario may also pass; the sweep
            // as a whole must show them at least once).
            let mut code = if seed_ok { 0 } else { r.verdict.exit_code() };
            if let Some(d) = &diff {
                let _ = writeln!(out, "seed {} NON-DETERMINISM: {d}", r.seed);
                code = EXIT_NONDETERMINISM;
            }
            if code != 0 {
                let _ = writeln!(out, "seed {}: {}", r.seed, summary(&r));
                for v in r.verdict.violations().iter().take(3) {
                    let _ = writeln!(out, "  violation: {v}");
                }
                let check = if determinism { " --check-determinism" } else { "" };
                let _ = writeln!(
                    out,
                    "  reproduce: cargo run -p sim -- --seed {}{flags}{check}",
                    r.seed
                );
            }
            worst = worst.max(code);
            passed += u64::from(code == 0);
        }
    }
    let verdicts: Vec<String> = verdicts.iter().map(|(k, n)| format!("{k}:{n}")).collect();
    let faults: Vec<String> = faults.iter().map(|(k, n)| format!("{k}:{n}")).collect();
    let _ = writeln!(
        out,
        "sweep: seeds={count} verdicts={} duplicates={duplicates} faults={} virtual_s={:.0} wall_s={:.1}",
        verdicts.join(","),
        faults.join(","),
        virtual_us as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    let _ = writeln!(
        out,
        "kafka: rebalances={} redeliveries={} rejected_commits={} zombie_commits_rejected={} duplicate_records={} duplicate_deliveries={}",
        kafka.rebalances,
        kafka.redeliveries,
        kafka.rejected_commits,
        kafka.zombie_commits_rejected,
        kafka.producer_duplicates,
        kafka.duplicate_deliveries
    );
    if !expected.is_empty() {
        let _ = writeln!(
            out,
            "expected {}: shown on {showing} of {} seeds; seeds with anything else: {unexpected}",
            expected.join(" or "),
            seeds.len()
        );
    }
    if !expected.is_empty() && showing == 0 && worst == 0 {
        let _ = writeln!(
            out,
            "expectation unmet: no seed showed {} (exit {EXIT_EXPECTATION_UNMET})",
            expected.join(" or ")
        );
        worst = EXIT_EXPECTATION_UNMET;
    }
    let _ = writeln!(
        out,
        "sweep: {passed} passed, {} failed (a seed passes when its verdict is as the scenario expects)",
        seeds.len() as u64 - passed
    );
    worst
}

fn bench(config: &SimConfig, count: u64, out: &mut dyn Write) -> i32 {
    let profile = if cfg!(debug_assertions) {
        "debug (use --release for numbers)"
    } else {
        "release"
    };
    let _ = writeln!(
        out,
        "BENCH scenario={} seeds=0..{count} build={profile}",
        config.name
    );
    let started = std::time::Instant::now();
    let (mut virtual_us, mut events, mut slowest) = (0u64, 0usize, (0u64, std::time::Duration::ZERO));
    for seed in 0..count {
        let r = crate::run::run(seed, config);
        virtual_us += r.virtual_us;
        events += r.events.len();
        if r.wall > slowest.1 {
            slowest = (seed, r.wall);
        }
    }
    let wall = started.elapsed().as_secs_f64().max(1e-9);
    let _ = writeln!(
        out,
        "bench: {count} runs in {wall:.2} s: {:.1} runs/s, {:.2} ms/run, {:.0} virtual s per wall s, {:.0} trace events/s; slowest seed {} ({} ms)",
        count as f64 / wall,
        wall * 1000.0 / count.max(1) as f64,
        virtual_us as f64 / 1e6 / wall,
        events as f64 / wall,
        slowest.0,
        slowest.1.as_millis()
    );
    0
}

/// One line: verdict and counts.
pub fn summary(r: &RunResult) -> String {
    let faults: Vec<String> = r.faults.iter().map(|(k, n)| format!("{k}:{n}")).collect();
    format!(
        "verdict={} events={} produced={} applied={} duplicates={} faults={} rebalances={} redeliveries={} rejected_commits={} duplicate_records={} virtual_s={:.3} wall_ms={} trace_events={} trace_sha256={}",
        r.verdict.name(),
        r.events_total,
        r.produced,
        r.applied,
        r.duplicates,
        if faults.is_empty() { "none".to_owned() } else { faults.join(",") },
        r.kafka.rebalances,
        r.kafka.redeliveries,
        r.kafka.rejected_commits,
        r.kafka.producer_duplicates,
        r.virtual_us as f64 / 1e6,
        r.wall.as_millis(),
        r.events.len(),
        r.fingerprint()
    )
}

/// Where two runs' traces first differ, if they do.
pub fn first_difference(a: &RunResult, b: &RunResult) -> Option<String> {
    for (i, (x, y)) in a.events.iter().zip(&b.events).enumerate() {
        let (x, y) = (x.json(), y.json());
        if x != y {
            return Some(format!("event #{i} differs:\n  first:  {x}\n  second: {y}"));
        }
    }
    (a.events.len() != b.events.len())
        .then(|| format!("the traces have {} and {} events", a.events.len(), b.events.len()))
}

struct SimTime;

impl tracing_subscriber::fmt::time::FormatTime for SimTime {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        write!(w, "{:>12}us", trace::now_us())
    }
}

/// With `RUST_LOG` set, `tracing` output for this thread, stamped with virtual time (the node
/// is in madsim's span). The guard keeps it installed.
pub fn sim_logger() -> Option<tracing::subscriber::DefaultGuard> {
    let filter = std::env::var("RUST_LOG").ok().filter(|f| !f.is_empty())?;
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_timer(SimTime)
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .finish();
    Some(tracing::subscriber::set_default(subscriber))
}
