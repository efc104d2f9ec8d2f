//! `sim findings`: swarm sweeps of every arm (a protocol and database under test), the
//! findings table with trigger statistics, and each finding shrunk to a reproduction.
//!
//! Each arm runs the same seeds of the swarm base with its protocol, database and failure
//! policy set; every seed's violations become labels (`check::why::labels`: a repeated effect
//! carries the mechanism that let it in), counted with the seed's drawn features in a
//! [`Tally`] (fixed-size: memory does not grow with the seeds). Shards write their tallies
//! (`--report`) and `--merge` adds them up. The whole tally renders as a Markdown table, one
//! row per finding: how many seeds of each arm show it and the first, which features trigger
//! and which suppress it, and (with `--shrink DIR`) its first seed shrunk to the smallest run
//! that still shows it, saved as a corpus entry whose replay checks the mechanism too.

use super::EXIT_USAGE;
use crate::model::db::DbMode;
use crate::report::findings::{classify, ArmTally, Role, Tally, FORMAT};
use crate::report::sweep::Shard;
use crate::scenario::config::{CorpusMeta, FailurePolicyKind, ProtocolKind, SimConfig};
use crate::shrink::{self, Budget, Fingerprint, Outcome};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One configuration under test: the swarm base with these set.
#[derive(Clone, Copy, Debug)]
pub struct Arm {
    /// Its name in tables and reports.
    pub name: &'static str,
    /// The workers' protocol.
    pub protocol: ProtocolKind,
    /// The database's guard.
    pub database: DbMode,
    /// What workers do when Redis fails.
    pub on_redis_failure: FailurePolicyKind,
}

impl Arm {
    /// The base with this arm's knobs.
    pub fn apply(&self, base: &SimConfig) -> SimConfig {
        let mut c = base.clone();
        c.protocol = self.protocol;
        c.database = self.database;
        c.on_redis_failure = self.on_redis_failure;
        c
    }

    /// The flags that select it on the command line. The failure policy has none (a scenario
    /// file sets it): a fail-closed arm's finding reproduces through its shrunk entry
    /// (`--shrink`), and without one its command says so.
    fn flags(&self) -> String {
        let protocol = match self.protocol {
            ProtocolKind::V2 => "v2",
            ProtocolKind::PythonV2 => "python-v2",
            ProtocolKind::Fenced => "fenced",
        };
        let database = match self.database {
            DbMode::Plain => "plain",
            DbMode::Unique => "unique",
            DbMode::Fenced => "fenced",
        };
        format!("--protocol {protocol} --database {database}")
    }
}

/// Every arm, in the table's column order: v2 as the Python services run it (the library's
/// v2, and `python-v2` with the Python original's exception path), then the fenced
/// protocol with each database guard, and fenced failing closed.
pub const ARMS: &[Arm] = &[
    Arm {
        name: "v2+plain",
        protocol: ProtocolKind::V2,
        database: DbMode::Plain,
        on_redis_failure: FailurePolicyKind::FailOpen,
    },
    Arm {
        name: "python-v2+plain",
        protocol: ProtocolKind::PythonV2,
        database: DbMode::Plain,
        on_redis_failure: FailurePolicyKind::FailOpen,
    },
    Arm {
        name: "fenced+unique",
        protocol: ProtocolKind::Fenced,
        database: DbMode::Unique,
        on_redis_failure: FailurePolicyKind::FailOpen,
    },
    Arm {
        name: "fenced+fenced",
        protocol: ProtocolKind::Fenced,
        database: DbMode::Fenced,
        on_redis_failure: FailurePolicyKind::FailOpen,
    },
    Arm {
        name: "fenced+unique+fail_closed",
        protocol: ProtocolKind::Fenced,
        database: DbMode::Unique,
        on_redis_failure: FailurePolicyKind::FailClosed,
    },
];

/// What `sim findings` was asked.
#[derive(Clone, Debug)]
pub struct FindingsArgs {
    /// First seed.
    pub from: u64,
    /// Seeds per arm.
    pub count: u64,
    /// Seeds at once.
    pub jobs: usize,
    /// Only this shard's seeds.
    pub shard: Option<String>,
    /// Only these arms (by name); empty: all.
    pub arms: Vec<String>,
    /// Write the tally as JSON here.
    pub report: Option<PathBuf>,
    /// Sum these tallies instead of running seeds.
    pub merge: Vec<PathBuf>,
    /// Replace the table between the markers in this file.
    pub readme: Option<PathBuf>,
    /// Shrink each finding's first seed and save it here as a corpus entry.
    pub shrink: Option<PathBuf>,
    /// Wall seconds each shrink may take.
    pub shrink_seconds: u64,
}

/// The README markers the table goes between.
pub const BEGIN: &str = "<!-- findings:begin (sim findings --readme README.md rewrites this) -->";
/// The end marker.
pub const END: &str = "<!-- findings:end -->";

/// The features' names, in the tally's order (none for a base that is not a swarm: its seeds
/// differ only in their random draws, so there is nothing to classify them by).
fn feature_names(base: &SimConfig) -> Vec<String> {
    features(0, base).into_iter().map(|(n, _)| n).collect()
}

/// What seed `seed` of `base` drew, as features.
fn features(seed: u64, base: &SimConfig) -> Vec<(String, bool)> {
    if base.swarm {
        crate::scenario::swarm::draw(seed, base).1.features()
    } else {
        Vec::new()
    }
}

/// Runs `sim findings`. A base that is not a swarm runs too, with no features to classify
/// by: that is how a fixed scenario's findings compare with the swarm's.
pub(super) fn findings(base: &SimConfig, args: &FindingsArgs, out: &mut dyn Write) -> i32 {
    let arms: Vec<Arm> = if args.arms.is_empty() {
        ARMS.to_vec()
    } else {
        let mut chosen = Vec::new();
        for name in &args.arms {
            match ARMS.iter().find(|a| a.name == name) {
                Some(a) => chosen.push(*a),
                None => {
                    let names: Vec<&str> = ARMS.iter().map(|a| a.name).collect();
                    eprintln!("error: --arms: unknown arm {name:?}; valid: {}", names.join(", "));
                    return EXIT_USAGE;
                }
            }
        }
        chosen
    };
    let tally = if args.merge.is_empty() {
        let shard = match args.shard.as_deref().map(Shard::parse).transpose() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: --shard: {e}");
                return EXIT_USAGE;
            }
        };
        sweep_arms(base, &arms, args, shard, out)
    } else {
        match read_and_merge(&args.merge) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_USAGE;
            }
        }
    };
    if let Some(path) = &args.report {
        let json = serde_json::to_string_pretty(&tally).expect("a tally serializes");
        if let Err(e) = crate::report::sweep::write_atomic(path, json.as_bytes()) {
            eprintln!("error: cannot write {}: {e}", path.display());
            return EXIT_USAGE;
        }
    }
    let shrunk = match &args.shrink {
        Some(dir) if tally.shards.len() <= 1 || !args.merge.is_empty() => {
            shrink_all(base, &tally, dir, args.shrink_seconds, out)
        }
        _ => BTreeMap::new(),
    };
    let table = render(&tally, &shrunk);
    let _ = writeln!(out, "{table}");
    if let Some(path) = &args.readme {
        if let Err(e) = replace_section(path, &table) {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
        let _ = writeln!(out, "findings: the table in {} is rewritten", path.display());
    }
    0
}

/// Runs every arm's seeds (this shard's) and counts them.
fn sweep_arms(
    base: &SimConfig,
    arms: &[Arm],
    args: &FindingsArgs,
    shard: Option<Shard>,
    out: &mut dyn Write,
) -> Tally {
    let names = feature_names(base);
    let mut tally = Tally {
        format: FORMAT,
        scenario: base.name.clone(),
        build: super::VERSION.to_owned(),
        from: args.from,
        count: args.count,
        shards: shard.iter().map(|s| s.to_string()).collect(),
        features: names,
        arms: BTreeMap::new(),
    };
    let end = args.from.saturating_add(args.count);
    for arm in arms {
        let config = arm.apply(base);
        let started = Instant::now();
        let mut counts = ArmTally::default();
        crate::run::pool::in_order(
            args.from..end,
            args.jobs,
            |seed| {
                if shard.is_some_and(|s| !s.owns(args.from, seed)) {
                    return None;
                }
                // Drawn once: the seed runs its draw, whose features classify it.
                let (r, on) = if config.swarm {
                    let (drawn, d) = crate::scenario::swarm::draw(seed, &config);
                    let on: Vec<bool> = d.features().into_iter().map(|(_, on)| on).collect();
                    (crate::run::run(seed, &drawn), on)
                } else {
                    (crate::run::run(seed, &config), Vec::new())
                };
                let labels: Vec<String> = shrink::fingerprint(&r).0.into_iter().collect();
                Some((on, labels))
            },
            |seed, result| {
                if let Some((on, labels)) = result {
                    counts.add(seed, &on, &labels);
                }
                true
            },
        );
        let failing: u64 = counts.findings.values().map(|f| f.seeds).max().unwrap_or(0);
        let _ = writeln!(
            out,
            "findings: {}: {} seeds in {:.1} s, {} distinct findings (the commonest in {} seeds)",
            arm.name,
            counts.seeds,
            started.elapsed().as_secs_f64(),
            counts.findings.len(),
            failing
        );
        tally.arms.insert(arm.name.to_owned(), counts);
    }
    tally
}

fn read_and_merge(paths: &[PathBuf]) -> Result<Tally, String> {
    let mut parts = Vec::new();
    for p in paths {
        let text = std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
        let t: Tally = serde_json::from_str(&text)
            .map_err(|e| format!("{}: not a findings report: {e}", p.display()))?;
        if t.format != FORMAT {
            return Err(format!(
                "{}: format {} (this build reads {FORMAT})",
                p.display(),
                t.format
            ));
        }
        parts.push((p.display().to_string(), t));
    }
    Tally::merge(&parts)
}

/// A finding shrunk: the corpus entry and its size.
#[derive(Clone, Debug)]
pub struct ShrunkFinding {
    /// The entry's path.
    pub path: PathBuf,
    /// Its `[[schedule]]` entries.
    pub faults: usize,
    /// Its events published.
    pub events: usize,
    /// Its trace's events.
    pub trace_events: usize,
}

/// The arm a finding is first found in (the table's order), and its counts there.
fn home<'a>(tally: &'a Tally, label: &str) -> Option<(&'a str, &'a ArmTally)> {
    ARMS.iter()
        .filter_map(|a| tally.arms.get_key_value(a.name))
        .find(|(_, t)| t.findings.contains_key(label))
        .map(|(n, t)| (n.as_str(), t))
}

/// Shrinks each finding's first seed (in its home arm) to the smallest run that still shows
/// it, within `seconds` each, and saves it in `dir` as a corpus entry.
fn shrink_all(
    base: &SimConfig,
    tally: &Tally,
    dir: &Path,
    seconds: u64,
    out: &mut dyn Write,
) -> BTreeMap<String, ShrunkFinding> {
    let labels: BTreeSet<&String> = tally.arms.values().flat_map(|a| a.findings.keys()).collect();
    let mut done = BTreeMap::new();
    for label in labels {
        let Some((arm_name, arm)) = home(tally, label) else {
            continue;
        };
        let spec = ARMS.iter().find(|a| a.name == arm_name).expect("a known arm");
        let seed = arm.findings[label].first_seed;
        match shrink_one(&spec.apply(base), spec, seed, label, dir, seconds) {
            Ok(s) => {
                let _ = writeln!(
                    out,
                    "findings: {label} ({arm_name}, seed {seed}) shrunk to {}, {}, {} trace events: {}",
                    plural(s.faults, "fault"),
                    plural(s.events, "event"),
                    s.trace_events,
                    s.path.display()
                );
                done.insert(label.clone(), s);
            }
            Err(e) => {
                let _ = writeln!(out, "findings: {label} ({arm_name}, seed {seed}) not shrunk: {e}");
            }
        }
    }
    done
}

/// What the shrinker keeps for one finding: the run shows `label` (whatever else it shows).
fn project(o: Outcome, label: &str) -> Outcome {
    if o.fingerprint.0.contains(label) {
        Outcome {
            fingerprint: Fingerprint(BTreeSet::from([label.to_owned()])),
            ..o
        }
    } else {
        o
    }
}

/// The file name of a finding's entry.
fn entry_name(arm: &str, label: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect()
    };
    format!("finding-{}-{}.toml", clean(arm), clean(label).replace("--", "-"))
}

fn shrink_one(
    config: &SimConfig,
    arm: &Arm,
    seed: u64,
    label: &str,
    dir: &Path,
    seconds: u64,
) -> Result<ShrunkFinding, String> {
    let first = crate::run::run(seed, config);
    let mut start = config.with_faults_explicit(seed, &first.drawn);
    start.name = entry_name(arm.name, label).trim_end_matches(".toml").to_owned();
    let target = Fingerprint(BTreeSet::from([label.to_owned()]));
    let mut run = |c: &SimConfig| project(Outcome::of(&crate::run::run(c.seed, c)), label);
    let budget = Budget {
        max_runs: 500,
        max_time: Duration::from_secs(seconds),
    };
    let shrunk = shrink::shrink(&start, &target, &mut run, budget, &mut |_| {})
        .map_err(|shrink::NotShrunk::Differs(got)| format!("the explicit run gave {got}"))?;
    let mut entry = shrunk.config.clone();
    let r = crate::run::run(entry.seed, &entry);
    let mut kinds: Vec<&str> = r.verdict.violations().iter().map(|v| v.kind).collect();
    kinds.sort();
    kinds.dedup();
    let size = shrink::Size::of(&entry);
    entry.description = format!(
        "{label}: seed {seed} of the swarm, {}, shrunk ({} faults, {} events)",
        arm.name, size.faults, size.events
    );
    entry.expect = match kinds.as_slice() {
        [] => return Err("the shrunk run passes".into()),
        [one] => crate::scenario::config::Expect::One((*one).to_owned()),
        many => crate::scenario::config::Expect::Any(many.iter().map(|k| (*k).to_owned()).collect()),
    };
    entry.corpus = Some(CorpusMeta {
        found: super::now_utc(),
        origin: format!(
            "cargo run -p sim -- --scenario {} {} --seed {seed}",
            config.name,
            arm.flags()
        ),
        note: format!("finding {label} of `sim findings`, shrunk"),
        finding: Some(label.to_owned()),
    });
    entry
        .validate()
        .map_err(|e| format!("the shrunk entry is not valid: {e}"))?;
    let text = format!(
        "# A finding of `sim findings`: {label}, first in seed {seed} of the swarm ({}),\n\
         # shrunk to the smallest run found that still shows it. `sim replay` checks it\n\
         # shows the same violation kinds and still names the mechanism.\n\
         # Replay: cargo run -p sim -- --scenario FILE\n{}",
        arm.name,
        entry.to_toml()
    );
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join(entry_name(arm.name, label));
    std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(ShrunkFinding {
        path,
        faults: size.faults,
        events: size.events,
        trace_events: r.events.len(),
    })
}

/// `n` and its noun, plural when `n` is not 1.
fn plural(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

/// A share as a percentage with one decimal.
fn pct(x: f64) -> String {
    format!("{:.0}%", 100.0 * x)
}

/// The findings table in Markdown.
pub fn render(tally: &Tally, shrunk: &BTreeMap<String, ShrunkFinding>) -> String {
    let arms: Vec<&str> = ARMS
        .iter()
        .map(|a| a.name)
        .filter(|n| tally.arms.contains_key(*n))
        .collect();
    let mut labels: Vec<&String> = tally
        .arms
        .values()
        .flat_map(|a| a.findings.keys())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    // The commonest first, by the arm each is first found in.
    labels.sort_by_key(|l| {
        let (name, arm) = home(tally, l).expect("a label is some arm's");
        let order = arms.iter().position(|a| *a == name).unwrap_or(usize::MAX);
        (order, std::cmp::Reverse(arm.findings[*l].seeds), (*l).clone())
    });
    let mut s = String::new();
    let seeds: Vec<String> = arms
        .iter()
        .map(|a| format!("{} {}", a, tally.arms[*a].seeds))
        .collect();
    s.push_str(&format!(
        "Seeds {}..{} of `{}` per arm ({}; build {}). Each cell: seeds that show the finding (the first). \
         Triggers and suppressors: the share of the finding's seeds with the feature on, its 95 % Wilson interval, \
         against the share of all seeds (Groce et al. 2013).\n\n",
        tally.from,
        tally.from + tally.count,
        tally.scenario,
        seeds.join(", "),
        tally.build
    ));
    s.push_str("| finding |");
    for a in &arms {
        s.push_str(&format!(" {a} |"));
    }
    s.push_str(" triggers | suppressors | shrunk | reproduce |\n|---|");
    for _ in &arms {
        s.push_str("---:|");
    }
    s.push_str("---|---|---|---|\n");
    for label in labels {
        s.push_str(&format!("| `{label}` |"));
        for a in &arms {
            match tally.arms[*a].findings.get(label) {
                Some(f) => s.push_str(&format!(" {} ({}) |", f.seeds, f.first_seed)),
                None => s.push_str(" 0 |"),
            }
        }
        let (home_name, arm) = home(tally, label).expect("a label is some arm's");
        let roles = classify(&tally.features, arm, &arm.findings[label]);
        let show = |role: Role| -> String {
            let mut picked: Vec<_> = roles.iter().filter(|c| c.role == role).collect();
            picked.sort_by(|a, b| {
                (b.share - b.base)
                    .abs()
                    .partial_cmp(&(a.share - a.base).abs())
                    .expect("shares are numbers")
            });
            // The three that move the share most: the rest are in the report.
            let parts: Vec<String> = picked
                .iter()
                .take(3)
                .map(|c| {
                    format!(
                        "{} {} [{}–{}] vs {}",
                        c.feature,
                        pct(c.share),
                        pct(c.interval.0),
                        pct(c.interval.1),
                        pct(c.base)
                    )
                })
                .collect();
            if parts.is_empty() {
                "—".into()
            } else {
                parts.join("; ")
            }
        };
        let (size, reproduce) = match shrunk.get(label.as_str()) {
            Some(f) => (
                format!(
                    "{}, {}, {} trace events",
                    plural(f.faults, "fault"),
                    plural(f.events, "event"),
                    f.trace_events
                ),
                format!("`cargo run -p sim -- --scenario {}`", f.path.display()),
            ),
            None => {
                let spec = ARMS.iter().find(|a| a.name == home_name).expect("a known arm");
                (
                    "—".into(),
                    format!(
                        "`cargo run -p sim -- --scenario {} {} --seed {}`{}",
                        tally.scenario,
                        spec.flags(),
                        arm.findings[label].first_seed,
                        if spec.on_redis_failure == FailurePolicyKind::FailOpen {
                            ""
                        } else {
                            " with `on_redis_failure = \"fail_closed\"` in a copy of the scenario"
                        }
                    ),
                )
            }
        };
        s.push_str(&format!(
            " {} | {} | {size} | {reproduce} |\n",
            show(Role::Trigger),
            show(Role::Suppressor)
        ));
    }
    s
}

/// Replaces what is between [`BEGIN`] and [`END`] in `path` with `table`.
fn replace_section(path: &Path, table: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let (Some(a), Some(b)) = (text.find(BEGIN), text.find(END)) else {
        return Err(format!(
            "{}: no findings section (the lines {BEGIN} and {END})",
            path.display()
        ));
    };
    if b < a {
        return Err(format!(
            "{}: the findings end marker comes before its begin",
            path.display()
        ));
    }
    let new = format!("{}{BEGIN}\n{table}{END}{}", &text[..a], &text[b + END.len()..]);
    std::fs::write(path, new).map_err(|e| format!("cannot write {}: {e}", path.display()))
}
