//! The command line: run a seed, check its determinism, or key a message.
//!
//! ```text
//! sim [--seed N] [--scenario NAME|PATH] [--protocol v2|fenced|python-v2] [--database plain|unique|fenced]
//!     [--worker-protocols P1,P2,...]
//!     [--trace FILE] [--mermaid FILE [--focus EVENT_ID]] [--save-scenario FILE]
//!     [--save-corpus DIR [--note TEXT]] [--check-determinism] [-v]
//! sim [SCENARIO FLAGS] sweep [SCENARIO FLAGS] [--seeds A..B | --from N --count M |
//!     --seed-base git] [--duration T] [--jobs N (1..=256)] [--shard K/N|auto] [--report F]
//!     [--junit F] [--save-failures DIR] [--shrink DIR] [--stop-after-failures M]
//!     [--check-determinism]
//! sim [SCENARIO FLAGS] bench [SCENARIO FLAGS] [--count N] [--jobs N] [--json F] ...
//! sim [SCENARIO FLAGS] shrink [SCENARIO FLAGS] [--seed N] [--out FILE] [--max-runs N]
//!     [--max-seconds S] [--mermaid FILE] [--save-corpus DIR [--note TEXT]]
//! sim merge REPORTS... [--report F] [--junit F]
//! sim replay [DIR]
//! sim key --service NAME [--prefix P] [--header NAME=VALUE]... [FILE|-]
//! ```
//! SCENARIO FLAGS are `--scenario`, `--protocol`, `--database` and `--worker-protocols`: a
//! single run's, and each seed's of a sweep or a bench, given before the subcommand or after
//! it (not both).
//!
//! Exit codes, judged against the scenario's `expect`: 0 as expected (a pass, or exactly the
//! expected violations), 2 bad usage or input, 3 a correctness violation, 4 a liveness
//! violation (a limit reached included; correctness outranks it), 5 crash, 6 non-determinism,
//! 7 an expected violation did not appear. On any failure the last line is the command that
//! reproduces it. Errors go to stderr; the run's report to stdout.
//!
//! This file holds what every command shares: the arguments, the check that no flag is given
//! to a command that would ignore it, the scenario the flags configure, and the dispatch. Each
//! command is its own file: `run` (a single seed, the default), `sweep`, `merge`, `replay`,
//! `bench` and `key`.

mod bench;
mod findings;
mod key;
mod merge;
mod replay;
mod run;
mod shrink;
mod sweep;

pub use run::PRINTED_MAX;

use crate::model::db::DbMode;
use crate::scenario::config::{ProtocolKind, SimConfig};
use clap::{Parser, Subcommand, ValueEnum};
use std::io::Write;
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

/// Exit code when a scenario expects a violation and the run did not show it.
pub use crate::run::verdict::EXIT_EXPECTATION_UNMET;

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
    #[arg(long, allow_hyphen_values = true, value_parser = parse_seed)]
    seed: Option<u64>,
    #[command(flatten)]
    scenario: ScenarioFlags,
    /// Write the trace as canonical JSON lines to FILE.
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,
    /// Run the seed twice on fresh threads and compare the traces byte for byte.
    #[arg(long)]
    check_determinism: bool,
    /// Print every knob, the human trace (each line numbered as violations name it: `#0` is
    /// the trace's first line) and every violation and note.
    #[arg(short, long)]
    verbose: bool,
    /// Write the trace as a Mermaid sequence diagram (in Markdown) to FILE.
    #[arg(long, value_name = "FILE")]
    mermaid: Option<PathBuf>,
    /// With --mermaid: only what concerns this event (its id, or a prefix of 4+ characters).
    #[arg(long, value_name = "EVENT_ID", requires = "mermaid")]
    focus: Option<String>,
    /// Write the run's config to FILE as a scenario with the nemesis's faults made explicit
    /// (`[[schedule]]` entries, random faults off, the seed pinned): `--scenario FILE`
    /// replays the same run.
    #[arg(long, value_name = "FILE")]
    save_scenario: Option<PathBuf>,
    /// Save the run to DIR as a corpus entry (a scenario file with the faults made explicit,
    /// expecting what it showed); see `sim replay`.
    #[arg(long, value_name = "DIR")]
    save_corpus: Option<PathBuf>,
    /// With --save-corpus: the entry's one-line note.
    #[arg(long, value_name = "TEXT", requires = "save_corpus")]
    note: Option<String>,
}

/// The flags that choose and change the scenario: a single run's, and each seed's in a sweep
/// or a bench (given before the subcommand or after it).
#[derive(clap::Args, Debug, Default, Clone)]
struct ScenarioFlags {
    /// The scenario: an embedded one by name (see `sim scenarios`) or a TOML file.
    #[arg(long, value_name = "NAME|PATH")]
    scenario: Option<String>,
    /// The idempotency protocol the workers run (python-v2: v2 with the Python original's
    /// exception path, which calls a failed handler again without a lock).
    #[arg(long, value_enum)]
    protocol: Option<ProtocolArg>,
    /// How the database guards effects.
    #[arg(long, value_enum)]
    database: Option<DatabaseArg>,
    /// Each worker's protocol, comma-separated (worker-N runs the N-th): a mixed fleet on
    /// the same Redis keys, e.g. `v2,fenced,fenced`.
    #[arg(long, value_enum, value_delimiter = ',', value_name = "PROTOCOLS")]
    worker_protocols: Option<Vec<ProtocolArg>>,
}

impl ScenarioFlags {
    fn any(&self) -> Vec<&'static str> {
        let mut set = Vec::new();
        if self.scenario.is_some() {
            set.push("--scenario");
        }
        if self.protocol.is_some() {
            set.push("--protocol");
        }
        if self.database.is_some() {
            set.push("--database");
        }
        if self.worker_protocols.is_some() {
            set.push("--worker-protocols");
        }
        set
    }

    /// The flags given before the subcommand with those given after it; one given in both
    /// places is an error.
    fn with(&self, after: &ScenarioFlags, command: &str) -> Result<ScenarioFlags, String> {
        let twice: Vec<&str> = self
            .any()
            .into_iter()
            .filter(|f| after.any().contains(f))
            .collect();
        if !twice.is_empty() {
            return Err(format!(
                "{} given both before and after `{command}`: give each once",
                twice.join(", ")
            ));
        }
        Ok(ScenarioFlags {
            scenario: after.scenario.clone().or_else(|| self.scenario.clone()),
            protocol: after.protocol.or(self.protocol),
            database: after.database.or(self.database),
            worker_protocols: after
                .worker_protocols
                .clone()
                .or_else(|| self.worker_protocols.clone()),
        })
    }
}

/// The most seeds a sweep or a bench runs at once: each runs on one thread, so more jobs than
/// cores only share them, and each holds a runtime's memory.
pub const MAX_JOBS: u64 = 256;

/// A seed: an unsigned 64-bit integer, said so when a negative one is given.
fn parse_seed(text: &str) -> Result<u64, String> {
    text.trim().parse::<u64>().map_err(|_| {
        let why = if text.trim().starts_with('-') {
            "seeds are unsigned"
        } else {
            "not a whole number"
        };
        format!("{why}: a seed is a whole number from 0 to {}", u64::MAX)
    })
}

#[derive(Subcommand, Debug)]
enum Sub {
    /// List the embedded scenarios with their descriptions.
    Scenarios,
    /// Measure speed: run seeds one after another and report runs, virtual time and trace
    /// events per wall second (build with --release).
    Bench {
        #[command(flatten)]
        scenario: ScenarioFlags,
        /// Seeds for seeds/s and the floor, from 0 (at least 1).
        #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..))]
        count: u64,
        /// Jobs for the all-cores figure (default: every core; at most 256, and never more
        /// than --count).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=MAX_JOBS))]
        jobs: Option<u64>,
        /// Seeds swept for the second peak-memory reading (the first is after 100).
        #[arg(long, default_value_t = 10_000)]
        rss_seeds: u64,
        /// Event counts of the cost-per-event runs, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "1000,3000,10000")]
        scale_events: Vec<u32>,
        /// Seeds counted under callgrind for instructions per seed, when `valgrind` is on
        /// PATH and the build is a release (0: not counted).
        #[arg(long, default_value_t = 5)]
        callgrind_seeds: u64,
        /// Also write the figures as JSON to FILE.
        #[arg(long, value_name = "FILE")]
        json: Option<String>,
    },
    /// Run many seeds and summarize, with reports for CI. Seeds: --seeds A..B, or
    /// --from/--count (default 0 and 100), or --seed-base git.
    ///
    /// Each seed runs as `sim --seed N` would with the run flags that apply to a sweep:
    /// --scenario, --protocol, --database and --check-determinism (before `sweep` or after
    /// it). A single run's --seed, --trace, --mermaid, --focus, --save-scenario, --save-corpus
    /// and -v do not apply: a failing seed's `reproduce:` command is the run to give them to.
    Sweep {
        #[command(flatten)]
        scenario: ScenarioFlags,
        /// Run each seed twice on fresh threads and compare the traces byte for byte.
        #[arg(long)]
        check_determinism: bool,
        /// First seed.
        #[arg(long, allow_hyphen_values = true, value_parser = parse_seed)]
        from: Option<u64>,
        /// How many seeds (default 100; with --duration, as many as fit).
        #[arg(long)]
        count: Option<u64>,
        /// The seeds A..B (B not included), in place of --from and --count.
        #[arg(long, value_name = "A..B")]
        seeds: Option<String>,
        /// Derive the first seed from the build's commit, so every commit's sweep covers new
        /// seeds (the header prints it; any failing seed replays with --seed).
        #[arg(long, value_enum, value_name = "git")]
        seed_base: Option<SeedBaseArg>,
        /// Run seeds until this much wall time has passed (e.g. 90s, 10m).
        #[arg(long, value_name = "TIME")]
        duration: Option<String>,
        /// Seeds run at once, each on its own thread (at most 256; never more than the seeds).
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=MAX_JOBS))]
        jobs: u64,
        /// Run only shard K of N (a stable part of the seeds), or `auto`: K from
        /// JOB_COMPLETION_INDEX (0-based, as a Kubernetes Indexed Job sets it) and N from
        /// SIM_SHARD_COUNT.
        #[arg(long, value_name = "K/N|auto")]
        shard: Option<String>,
        /// Write a JSON report to FILE, rewritten atomically at every failure found.
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
        /// Write a JUnit XML report to FILE at the end.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
        /// Stop once this many seeds have failed.
        #[arg(long, value_name = "M")]
        stop_after_failures: Option<u64>,
        /// Save the first seed of each distinct failure to DIR as a corpus entry (faults made
        /// explicit), as it is found.
        #[arg(long, value_name = "DIR")]
        save_failures: Option<PathBuf>,
        /// Shrink the first seed of each distinct failure as it is found (as `sim shrink` does,
        /// each within 500 runs and 60 s) and write it to DIR; the reports carry its path and
        /// size.
        #[arg(long, value_name = "DIR")]
        shrink: Option<PathBuf>,
    },
    /// Shrink a failing seed: its run made explicit (faults as [[schedule]] entries), then
    /// smaller and smaller configs that fail the same way (the same violation kinds), until
    /// nothing shrinks or the budget is spent; writes the result as a scenario file and
    /// replays it twice.
    Shrink {
        #[command(flatten)]
        scenario: ScenarioFlags,
        /// The failing seed (default: the scenario's).
        #[arg(long, allow_hyphen_values = true, value_parser = parse_seed)]
        seed: Option<u64>,
        /// Write the shrunk scenario to FILE (default: shrunk-<scenario>-seed-<N>.toml).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Most runs the shrink may make.
        #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..))]
        max_runs: u64,
        /// Most wall seconds the shrink may take (then it reports the best so far).
        #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
        max_seconds: u64,
        /// Write the shrunk run as a Mermaid sequence diagram (in Markdown) to FILE, focused on
        /// its violating event.
        #[arg(long, value_name = "FILE")]
        mermaid: Option<PathBuf>,
        /// Save the shrunk run to DIR as a corpus entry (expecting what it shows); see `sim
        /// replay`.
        #[arg(long, value_name = "DIR")]
        save_corpus: Option<PathBuf>,
        /// With --save-corpus: the entry's one-line note.
        #[arg(long, value_name = "TEXT", requires = "save_corpus")]
        note: Option<String>,
    },
    /// Swarm sweeps of every arm (v2 and python-v2 on a plain database, fenced with each
    /// database guard, fenced failing closed) and the findings table: per finding, the seeds that show it in
    /// each arm, the features of a seed's draw that trigger and suppress it, and with --shrink
    /// its first seed shrunk and saved as a corpus entry.
    Findings {
        /// The base: a swarm (`swarm = true`), or any scenario to compare its findings with.
        #[arg(long, value_name = "NAME|PATH", default_value = "swarm")]
        scenario: String,
        /// First seed.
        #[arg(long, default_value_t = 0, value_parser = parse_seed)]
        from: u64,
        /// Seeds per arm.
        #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
        count: u64,
        /// Seeds run at once (at most 256).
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=MAX_JOBS))]
        jobs: u64,
        /// Run only shard K of N of the seeds; `--merge` adds the shards' reports up.
        #[arg(long, value_name = "K/N")]
        shard: Option<String>,
        /// Only these arms, comma-separated (default: all).
        #[arg(long, value_delimiter = ',', value_name = "ARM,...")]
        arms: Vec<String>,
        /// Write the counts as JSON to FILE (what --merge reads).
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
        /// Add up these reports instead of running seeds.
        #[arg(long, value_name = "REPORT", num_args = 1..)]
        merge: Vec<PathBuf>,
        /// Rewrite the findings table in FILE (between its findings markers).
        #[arg(long, value_name = "FILE")]
        readme: Option<PathBuf>,
        /// Shrink each finding's first seed and save it in DIR as a corpus entry.
        #[arg(long, value_name = "DIR")]
        shrink: Option<PathBuf>,
        /// Wall seconds each shrink may take.
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
        shrink_seconds: u64,
    },
    /// Run every entry of the regression corpus and check each gives the verdict it records.
    Replay {
        /// The corpus: a directory of entries (scenario files).
        #[arg(default_value = "seeds", value_name = "DIR")]
        dir: PathBuf,
    },
    /// Combine the JSON reports of a sweep's shards into the report of the whole sweep.
    Merge {
        /// The shard reports (each written by `sweep --shard K/N --report FILE`).
        #[arg(required = true, value_name = "REPORT")]
        reports: Vec<PathBuf>,
        /// Write the merged JSON report to FILE.
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
        /// Write the merged JUnit XML report to FILE.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum SeedBaseArg {
    /// The first seed is derived from the build's commit.
    Git,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ProtocolArg {
    V2,
    Fenced,
    PythonV2,
}

impl ProtocolArg {
    fn kind(self) -> ProtocolKind {
        match self {
            ProtocolArg::V2 => ProtocolKind::V2,
            ProtocolArg::Fenced => ProtocolKind::Fenced,
            ProtocolArg::PythonV2 => ProtocolKind::PythonV2,
        }
    }
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
        }) => key::key(&service, &prefix, &headers, &file, out),
        Some(Sub::Scenarios) => {
            for (name, text) in crate::scenario::EMBEDDED {
                let description = crate::scenario::parse(text, name)
                    .map(|c| c.description)
                    .unwrap_or_else(|e| e.to_string());
                let _ = writeln!(out, "{name:<28} {description}");
            }
            0
        }
        Some(Sub::Bench {
            ref scenario,
            count,
            jobs,
            rss_seeds,
            ref scale_events,
            callgrind_seeds,
            ref json,
        }) => match configure_for(&cli, scenario, "bench") {
            Ok(Configured { config, args, .. }) => {
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
                let sizes = bench::Sizes {
                    seeds: count,
                    jobs: jobs.unwrap_or(cores).clamp(1, MAX_JOBS).min(count) as usize,
                    rss_seeds,
                    scale_events: scale_events.clone(),
                    callgrind_seeds,
                };
                bench::bench(&config, &args, &sizes, json.as_deref(), out)
            }
            Err(code) => code,
        },
        Some(Sub::Sweep {
            ref scenario,
            check_determinism,
            from,
            count,
            ref seeds,
            seed_base,
            ref duration,
            jobs,
            ref shard,
            ref report,
            ref junit,
            stop_after_failures,
            ref save_failures,
            shrink: ref shrink_dir,
        }) => match configure_for(&cli, scenario, "sweep") {
            Ok(configured) => {
                let args = sweep::SweepArgs {
                    from,
                    count,
                    seeds: seeds.clone(),
                    seed_base_git: seed_base == Some(SeedBaseArg::Git),
                    duration: duration.clone(),
                    jobs: jobs as usize,
                    shard: shard.clone(),
                    report: report.clone(),
                    junit: junit.clone(),
                    stop_after_failures,
                    save_failures: save_failures.clone(),
                    shrink: shrink_dir.clone(),
                    check_determinism: check_determinism || cli.check_determinism,
                };
                sweep::sweep(&configured, &args, out)
            }
            Err(code) => code,
        },
        Some(Sub::Shrink {
            ref scenario,
            seed,
            out: ref out_file,
            max_runs,
            max_seconds,
            ref mermaid,
            ref save_corpus,
            ref note,
        }) => {
            if seed.is_some() && cli.seed.is_some() {
                eprintln!("error: --seed given both before and after `shrink`: give it once");
                return EXIT_USAGE;
            }
            match configure_for(&cli, scenario, "shrink") {
                Ok(configured) => {
                    let args = shrink::ShrinkArgs {
                        seed: seed.or(cli.seed),
                        out: out_file.clone(),
                        budget: shrink::budget(max_runs, max_seconds),
                        mermaid: mermaid.clone(),
                        save_corpus: save_corpus.clone(),
                        note: note.clone(),
                    };
                    shrink::shrink(&configured, &args, out)
                }
                Err(code) => code,
            }
        }
        Some(Sub::Replay { ref dir }) => replay::replay(dir, out),
        Some(Sub::Findings {
            ref scenario,
            from,
            count,
            jobs,
            ref shard,
            ref arms,
            ref report,
            ref merge,
            ref readme,
            shrink: ref shrink_dir,
            shrink_seconds,
        }) => match crate::scenario::load(scenario) {
            Ok(base) => {
                let args = findings::FindingsArgs {
                    from,
                    count,
                    jobs: jobs as usize,
                    shard: shard.clone(),
                    arms: arms.clone(),
                    report: report.clone(),
                    merge: merge.clone(),
                    readme: readme.clone(),
                    shrink: shrink_dir.clone(),
                    shrink_seconds,
                };
                findings::findings(&base, &args, out)
            }
            Err(e) => {
                eprintln!("error: {e}");
                EXIT_USAGE
            }
        },
        Some(Sub::Merge {
            ref reports,
            ref report,
            ref junit,
        }) => merge::merge(reports, report.as_deref(), junit.as_deref(), out),
        None => run::run(&cli, out),
    }
}

/// Now, in UTC (RFC 3339, seconds): when a corpus entry was found. The command line's wall
/// clock, read outside any run.
fn now_utc() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// Rejects flags that the chosen command would silently ignore.
fn applicable(cli: &Cli) -> Result<(), String> {
    let command = match &cli.command {
        None => return Ok(()),
        Some(Sub::Scenarios) => "scenarios",
        Some(Sub::Bench { .. }) => "bench",
        Some(Sub::Sweep { .. }) => "sweep",
        Some(Sub::Merge { .. }) => "merge",
        Some(Sub::Replay { .. }) => "replay",
        Some(Sub::Findings { .. }) => "findings",
        Some(Sub::Shrink { .. }) => "shrink",
        Some(Sub::Key { .. }) => "key",
    };
    // The flags of a single run only (sweep takes its seeds from --from/--count).
    let single_run: [(&str, bool); 7] = [
        ("--seed", cli.seed.is_some()),
        ("--trace", cli.trace.is_some()),
        ("--save-scenario", cli.save_scenario.is_some()),
        ("--save-corpus", cli.save_corpus.is_some()),
        ("--mermaid", cli.mermaid.is_some()),
        ("--focus", cli.focus.is_some()),
        ("--verbose", cli.verbose),
    ];
    let mut rejected: Vec<&str> = single_run
        .iter()
        // (A shrink is of one seed: its --seed may come before `shrink`.)
        .filter(|(flag, set)| *set && !(command == "shrink" && *flag == "--seed"))
        .map(|(f, _)| *f)
        .collect();
    if matches!(command, "scenarios" | "key" | "merge" | "replay" | "findings") {
        rejected.extend(cli.scenario.any());
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

/// The run's config as the command line makes it.
pub(super) struct Configured {
    /// The config the seeds run: the scenario's file with the command line's overrides, its
    /// description marked when an override changed what it describes.
    pub config: SimConfig,
    /// The flags that reproduce it (` --scenario X --protocol v2`), empty for the default, as
    /// a shell reads them (a value with spaces or quotes is quoted).
    pub flags: String,
    /// The same flags, one argument each (for starting this executable again).
    pub args: Vec<String>,
    /// The knobs (`name=value`) the command line changed from the scenario's file.
    pub overrides: Vec<String>,
}

impl Configured {
    /// The lines a run or a sweep starts with, after its first: the scenario's description
    /// and the knobs the command line changed (every knob is under `-v`, in the trace's first
    /// event and in a saved scenario).
    pub fn header(&self) -> Vec<String> {
        vec![
            format!("description: {}", self.config.description),
            format!(
                "overrides: {} (every knob: -v, the trace's first line, --save-scenario)",
                if self.overrides.is_empty() {
                    "none".to_owned()
                } else {
                    self.overrides.join(" ")
                }
            ),
        ]
    }
}

/// The config of the command line's scenario flags given before `command` and after it.
fn configure_for(cli: &Cli, after: &ScenarioFlags, command: &str) -> Result<Configured, i32> {
    match cli.scenario.with(after, command) {
        Ok(flags) => configure(&flags),
        Err(e) => {
            eprintln!("error: {e}");
            Err(EXIT_USAGE)
        }
    }
}

/// The knobs of `config` that differ from `file`'s (the description aside).
fn changed_knobs(file: &SimConfig, config: &SimConfig) -> Vec<String> {
    let before = file.knobs();
    config
        .knobs()
        .into_iter()
        .filter(|k| !before.contains(k) && !k.starts_with("description="))
        .collect()
}

/// The run's config from the command line, and the flags that reproduce it.
fn configure(cli: &ScenarioFlags) -> Result<Configured, i32> {
    let mut args: Vec<String> = Vec::new();
    let name = cli.scenario.as_deref().unwrap_or("default");
    let mut config = match crate::scenario::load(name) {
        Ok(c) => {
            if cli.scenario.is_some() {
                args.extend(["--scenario".into(), name.to_owned()]);
            }
            c
        }
        Err(e) => {
            eprintln!("error: {e}");
            return Err(EXIT_USAGE);
        }
    };
    let file = config.clone();
    if let Some(p) = cli.protocol {
        config.protocol = p.kind();
        args.extend(["--protocol".into(), config.protocol.name().to_owned()]);
    }
    if let Some(list) = &cli.worker_protocols {
        config.worker_protocols = list.iter().map(|p| p.kind()).collect();
        let names: Vec<&str> = config.worker_protocols.iter().map(|p| p.name()).collect();
        args.extend(["--worker-protocols".into(), names.join(",")]);
    }
    if let Some(d) = cli.database {
        config.database = match d {
            DatabaseArg::Plain => DbMode::Plain,
            DatabaseArg::Unique => DbMode::Unique,
            DatabaseArg::Fenced => DbMode::Fenced,
        };
        args.extend(["--database".into(), config.database.name().to_owned()]);
    }
    if let Err(e) = config.validate() {
        eprintln!("error: {e}");
        return Err(EXIT_USAGE);
    }
    let overrides = changed_knobs(&file, &config);
    if !overrides.is_empty() {
        // The file's description was written for the file's knobs: say which no longer hold.
        config.description = format!("{} (overridden: {})", config.description, overrides.join(" "));
    }
    let flags = args.iter().map(|a| format!(" {}", shell_word(a))).collect();
    Ok(Configured {
        config,
        flags,
        args,
        overrides,
    })
}

/// `arg` as one word for a POSIX shell: as it is when it is plain, else in single quotes.
fn shell_word(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./,:=+@%".contains(&b));
    if plain {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}
