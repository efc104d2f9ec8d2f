//! Scenario files: a whole run except the seed, in TOML ([`SimConfig`]'s fields; see
//! `scenarios/README.md`). Every file in `scenarios/` is embedded in the binary, so
//! `--scenario NAME` works from any directory; `--scenario PATH` loads a file.
//!
//! A broken file gets an error with the file, line, column and field, and the valid values
//! where there are some; unknown fields are errors; nothing panics.

pub mod config;
pub mod corpus;
mod ranges;
mod resolve;
pub mod swarm;
mod validate;

use crate::scenario::config::SimConfig;
use std::fmt;

/// The scenarios shipped in `scenarios/`, by name. A test checks this list against the folder.
pub const EMBEDDED: &[(&str, &str)] = &[
    ("default", include_str!("../../../scenarios/default.toml")),
    ("canary", include_str!("../../../scenarios/canary.toml")),
    ("swarm", include_str!("../../../scenarios/swarm.toml")),
    (
        "async-confirm-crash-plain",
        include_str!("../../../scenarios/async-confirm-crash-plain.toml"),
    ),
    (
        "async-confirm-crash-unique",
        include_str!("../../../scenarios/async-confirm-crash-unique.toml"),
    ),
    (
        "commit-before-processing",
        include_str!("../../../scenarios/commit-before-processing.toml"),
    ),
    (
        "commit-every-n",
        include_str!("../../../scenarios/commit-every-n.toml"),
    ),
    (
        "duplicate-detection",
        include_str!("../../../scenarios/duplicate-detection.toml"),
    ),
    (
        "exception-releases-lock",
        include_str!("../../../scenarios/exception-releases-lock.toml"),
    ),
    (
        "fail-closed-outage",
        include_str!("../../../scenarios/fail-closed-outage.toml"),
    ),
    (
        "fail-open-outage",
        include_str!("../../../scenarios/fail-open-outage.toml"),
    ),
    (
        "gc-pause-fenced",
        include_str!("../../../scenarios/gc-pause-fenced.toml"),
    ),
    ("gc-pause-v2", include_str!("../../../scenarios/gc-pause-v2.toml")),
    (
        "header-body-keys",
        include_str!("../../../scenarios/header-body-keys.toml"),
    ),
    (
        "kafka-zombie",
        include_str!("../../../scenarios/kafka-zombie.toml"),
    ),
    (
        "producer-duplicates",
        include_str!("../../../scenarios/producer-duplicates.toml"),
    ),
    (
        "producer-idempotent",
        include_str!("../../../scenarios/producer-idempotent.toml"),
    ),
    (
        "race-five-workers",
        include_str!("../../../scenarios/race-five-workers.toml"),
    ),
    (
        "mixed-fleet-harsh",
        include_str!("../../../scenarios/mixed-fleet-harsh.toml"),
    ),
    (
        "mixed-fleet-v2-takeover",
        include_str!("../../../scenarios/mixed-fleet-v2-takeover.toml"),
    ),
    (
        "python-v2-exception",
        include_str!("../../../scenarios/python-v2-exception.toml"),
    ),
    (
        "redis-clock-jump",
        include_str!("../../../scenarios/redis-clock-jump.toml"),
    ),
    (
        "redis-restart-everysec",
        include_str!("../../../scenarios/redis-restart-everysec.toml"),
    ),
    (
        "stale-lock-recovery",
        include_str!("../../../scenarios/stale-lock-recovery.toml"),
    ),
    (
        "ttl-lifecycle",
        include_str!("../../../scenarios/ttl-lifecycle.toml"),
    ),
    (
        "v2-stale-takeover-skew",
        include_str!("../../../scenarios/v2-stale-takeover-skew.toml"),
    ),
    (
        "v2-takeover-race",
        include_str!("../../../scenarios/v2-takeover-race.toml"),
    ),
];

/// Why a scenario could not be loaded.
///
/// ```
/// // A scenario file with a misspelt field.
/// let path = std::env::temp_dir().join(format!("misspelt-{}.toml", std::process::id()));
/// std::fs::write(&path, "name = \"misspelt\"\ndescription = \"a typo\"\nevnets = 3\n").unwrap();
/// let err = sim::Sim::new(path.to_str().unwrap()).unwrap_err();
/// std::fs::remove_file(&path).unwrap();
/// assert_eq!(err.file, path.to_str().unwrap());
/// assert_eq!((err.line, err.column), (Some(3), Some(1)));
/// assert_eq!(err.field.as_deref(), Some("evnets"));
/// assert!(err.message.contains("`events`"), "it suggests the nearest field: {err}");
///
/// // A name that is neither an embedded scenario nor a file: the message lists the embedded.
/// let err = sim::Sim::new("no-such-scenario").unwrap_err();
/// assert_eq!(err.line, None);
/// assert!(err.message.contains("duplicate-detection"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    /// The file (or embedded name).
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// The field at fault, when known.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
            if let Some(c) = self.column {
                write!(f, ":{c}")?;
            }
        }
        if let Some(field) = &self.field {
            write!(f, ": field `{field}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ScenarioError {}

/// The embedded scenario `name`, or the file at `name_or_path`.
pub fn load(name_or_path: &str) -> Result<SimConfig, ScenarioError> {
    if let Some((name, text)) = EMBEDDED.iter().find(|(n, _)| *n == name_or_path) {
        return parse(text, &format!("scenarios/{name}.toml"));
    }
    match std::fs::read_to_string(name_or_path) {
        Ok(text) => parse(&text, name_or_path),
        Err(e) => Err(ScenarioError {
            file: name_or_path.to_owned(),
            line: None,
            column: None,
            field: None,
            message: format!(
                "cannot read it ({e}); it is not an embedded scenario either: {}",
                EMBEDDED.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
            ),
        }),
    }
}

/// 1-based line and column of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// The dotted name of the key on the line at `offset`, with its `[table]` prefix.
fn field_at(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or("");
    let key = line
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"').to_owned())?;
    let table = text[..line_start].lines().rev().find_map(|l| {
        let l = l.trim();
        l.strip_prefix("[[")
            .and_then(|t| t.strip_suffix("]]"))
            .or_else(|| l.strip_prefix('[').and_then(|t| t.strip_suffix(']')))
    });
    Some(match table {
        Some(t) => format!("{}.{key}", t.trim()),
        None => key,
    })
}

/// For a parse error at `offset` that points at a `[[schedule]]` line: the entry's key the
/// `message` is about (`schedule[2].node`) and its 1-based line. An unknown field names its
/// key, an unknown variant is the `fault` tag's, a mistyped value is found by its text; any
/// other error (a missing field) names the entry, on its header line.
fn schedule_key(text: &str, offset: usize, message: &str) -> Option<(String, usize)> {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    if text[line_start..].lines().next()?.trim() != "[[schedule]]" {
        return None;
    }
    let index = text[..line_start]
        .lines()
        .filter(|l| l.trim() == "[[schedule]]")
        .count();
    let named = |prefix: &str| {
        message
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix('`'))
            .and_then(|rest| rest.split('`').next())
            .map(str::to_owned)
    };
    let key = named("unknown field ")
        .or_else(|| named("unknown variant ").map(|_| "fault".to_owned()))
        .or_else(|| named("missing field "))
        .or_else(|| {
            // `invalid type: string "x", expected u64`: the entry's key whose value is that.
            let value = message
                .strip_prefix("invalid type: ")
                .or_else(|| message.strip_prefix("invalid value: "))?
                .split(", expected")
                .next()?;
            // serde quotes a string as `"x"` and a number as `` `3` ``.
            let value = value.split_once(' ').map_or(value, |(_, v)| v).trim();
            let value = value
                .strip_prefix('`')
                .and_then(|v| v.strip_suffix('`'))
                .unwrap_or(value);
            text[line_start..]
                .lines()
                .skip(1)
                .take_while(|l| !l.trim().starts_with('['))
                .filter_map(|l| l.split_once('='))
                .find(|(_, v)| v.split('#').next().unwrap_or("").trim() == value)
                .map(|(k, _)| k.trim().to_owned())
        });
    let header_line = line_col(text, line_start).0;
    Some(match key {
        Some(key) => {
            let field = format!("schedule[{index}].{key}");
            let line = locate(text, &field).unwrap_or(header_line);
            (field, line)
        }
        None => (format!("schedule[{index}]"), header_line),
    })
}

/// Where `field` (as `validate` names it: `faults.gap_ms_min`, `schedule[2]`,
/// `schedule[2].at_ms`, `copy_partitions[1]`) is set in `text`.
fn locate(text: &str, field: &str) -> Option<usize> {
    if let Some(rest) = field.strip_prefix("schedule[") {
        let (i, key) = rest.split_once(']')?;
        let i: usize = i.parse().ok()?;
        let header = text
            .lines()
            .enumerate()
            .filter(|(_, l)| l.trim() == "[[schedule]]")
            .nth(i)
            .map(|(n, _)| n)?;
        let key = key.strip_prefix('.');
        let line = key.and_then(|key| {
            text.lines()
                .enumerate()
                .skip(header + 1)
                .take_while(|(_, l)| !l.trim().starts_with('['))
                .find(|(_, l)| l.split_once('=').is_some_and(|(k, _)| k.trim() == key))
                .map(|(n, _)| n)
        });
        return Some(line.unwrap_or(header) + 1);
    }
    // A list's element is on its list's line.
    let field = field.split('[').next().unwrap_or(field);
    let (table, key) = match field.rsplit_once('.') {
        Some((t, k)) => (Some(t), k),
        None => (None, field),
    };
    let mut current: Option<String> = None;
    for (n, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.starts_with('[') {
            current = Some(l.trim_matches(|c| c == '[' || c == ']').trim().to_owned());
            continue;
        }
        let same_table = current.as_deref() == table;
        if same_table && l.split_once('=').is_some_and(|(k, _)| k.trim() == key) {
            return Some(n + 1);
        }
    }
    None
}

/// A `[[schedule]]` entry with every trigger field set: what its fields are named.
fn every_trigger_field() -> crate::fault::schedule::ScheduledFault {
    crate::fault::schedule::ScheduledFault {
        at_ms: Some(0),
        point: Some(crate::fault::FaultPoint::AfterAcquire),
        by: Some(crate::net::topology::NodeName::Worker(1)),
        after_ms: Some(0),
        on_delivery: Some(1),
        while_holding: Some(crate::net::topology::NodeName::Worker(1)),
        event: Some(0),
        duration_ms: Some(1),
        fault: crate::fault::Fault::Crash { node: None },
    }
}

/// Every field a `[[schedule]]` entry may have: the triggers' and every fault's.
fn schedule_fields() -> Vec<String> {
    let trigger = every_trigger_field();
    let mut fields: Vec<String> = serde_json::to_value(trigger)
        .ok()
        .and_then(|v| v.as_object().map(|m| m.keys().cloned().collect()))
        .unwrap_or_default();
    for fault in crate::fault::Fault::examples() {
        for name in fault.fields().keys() {
            if !fields.contains(name) {
                fields.push(name.clone());
            }
        }
    }
    fields
}

/// The known name nearest to `unknown` (a typo's fix), if one is near enough.
fn nearest<'a>(unknown: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    known
        .into_iter()
        .map(|k| (strsim::jaro_winkler(unknown, k), k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

/// serde's "unknown field" message with the nearest field suggested. In a `[[schedule]]`
/// entry serde can only name the fault's own fields (the entry's are flattened into it), so
/// there the message lists every field an entry may have instead.
fn suggest(message: &str, in_schedule: bool) -> String {
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return message.to_owned();
    };
    let unknown = rest.split('`').next().unwrap_or("");
    if in_schedule {
        let fields = schedule_fields();
        if fields.iter().any(|f| f == unknown) {
            // Another fault's field (`node` on a `latency`): serde names what this one takes.
            return message.to_owned();
        }
        let hint = nearest(unknown, fields.iter().map(String::as_str))
            .map_or(String::new(), |k| format!(": did you mean `{k}`?"));
        return format!(
            "unknown field `{unknown}`{hint} (an entry's fields: {})",
            fields.join(", ")
        );
    }
    // `unknown field `x`, expected one of `a`, `b``: the candidates are the quoted names.
    let expected = rest.split_once("expected").map_or("", |(_, e)| e);
    let known: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    match nearest(unknown, known) {
        Some(k) => format!("unknown field `{unknown}`: did you mean `{k}`? ({message})"),
        None => message.to_owned(),
    }
}

/// Parses and validates a scenario's text; `file` names it in errors.
pub fn parse(text: &str, file: &str) -> Result<SimConfig, ScenarioError> {
    let err = |line, column, field, message| ScenarioError {
        file: file.to_owned(),
        line,
        column,
        field,
        message,
    };
    let has_content = text
        .lines()
        .map(str::trim)
        .any(|l| !l.is_empty() && !l.starts_with('#'));
    if !has_content {
        return Err(err(
            None,
            None,
            None,
            "the file is empty: a scenario needs at least `name` and `description`".into(),
        ));
    }
    let config: SimConfig = toml::from_str(text).map_err(|e| {
        let message = e.message().trim().to_owned();
        let span = e.span();
        // A schedule entry is read whole (its fault's fields are flattened into it), so its
        // errors point at the entry's `[[schedule]]` line: find the key they are about.
        if let Some((field, line)) = span.clone().and_then(|s| schedule_key(text, s.start, &message)) {
            return err(Some(line), None, Some(field), suggest(&message, true));
        }
        let (line, column) = span.clone().map(|s| line_col(text, s.start)).unzip();
        let field = span.and_then(|s| field_at(text, s.start));
        err(line, column, field, suggest(&message, false))
    })?;
    let named = text
        .lines()
        .any(|l| l.split_once('=').is_some_and(|(k, _)| k.trim() == "name"));
    if !named || config.name.is_empty() {
        return Err(err(
            None,
            None,
            Some("name".into()),
            "missing: every scenario has a name".into(),
        ));
    }
    config.validate().map_err(|message| {
        let field = message.split('`').nth(1).map(str::to_owned);
        let line = field.as_deref().and_then(|f| locate(text, f));
        // The error names its field; so does the error's prefix: say it once.
        let message = match &field {
            Some(f) => message
                .strip_prefix(&format!("`{f}`: "))
                .map_or(message.clone(), str::to_owned),
            None => message,
        };
        err(line, None, field, message)
    })?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_scenario_loads_and_validates() {
        for (name, text) in EMBEDDED {
            let c = parse(text, name).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(&c.name, name, "a scenario's `name` is its file name");
            assert!(!c.description.is_empty(), "{name} has no description");
        }
    }

    #[test]
    fn every_file_in_scenarios_is_embedded() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| {
                e.unwrap()
                    .file_name()
                    .to_str()?
                    .strip_suffix(".toml")
                    .map(str::to_owned)
            })
            .collect();
        files.sort();
        let mut embedded: Vec<String> = EMBEDDED.iter().map(|(n, _)| n.to_string()).collect();
        embedded.sort();
        assert_eq!(files, embedded, "add new scenario files to EMBEDDED");
    }

    /// The cells of the README's table row for `field` (after `from`, a heading), pipes
    /// escaped as `\|` kept inside their cell.
    fn row(readme: &str, from: &str, field: &str) -> Option<Vec<String>> {
        let start = readme.find(from)?;
        let line = readme[start..]
            .lines()
            .find(|l| l.starts_with(&format!("| `{field}` |")))?;
        let mut cells = vec![String::new()];
        let mut chars = line.trim().trim_matches('|').chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' if chars.peek() == Some(&'|') => {
                    cells.last_mut().unwrap().push('|');
                    chars.next();
                }
                '|' => cells.push(String::new()),
                c => cells.last_mut().unwrap().push(c),
            }
        }
        Some(cells.iter().map(|c| c.trim().to_owned()).collect())
    }

    #[test]
    fn every_knob_is_documented_in_the_scenarios_readme_with_its_range() {
        let ranges: Vec<_> = crate::scenario::config::ranges().collect();
        let readme = include_str!("../../../scenarios/README.md");
        let range_of = |name: &str| ranges.iter().find(|(n, _)| *n == name).map(|(_, r)| r);
        // Knobs left out of the config line at their default (added after the first
        // histories) are set, so that they show too.
        let every = SimConfig {
            link_latency: vec![crate::scenario::config::LinkLatency {
                node: crate::net::topology::NodeName::Redis,
                peer: Some(crate::net::topology::NodeName::Db),
                ms_min: 1,
                ms_max: 2,
            }],
            faults: crate::scenario::config::FaultConfig {
                lost_replies_weight: 1,
                lost_reply_share_max: 0.25,
                lost_replies_ms_max: 1,
                failover_weight: 1,
                failover_lag_ms_max: 1,
                promote_ms_max: 1,
                slow_link_weight: 1,
                slow_link_latency_ms_max: 1,
                slow_link_ms_max: 1,
                ..Default::default()
            },
            ..SimConfig::default()
        };
        let json = serde_json::to_value(&every).unwrap();
        // A knob's value by its dotted name; a list's first element stands for each.
        let at = |name: &str| {
            name.split('.').fold(json.clone(), |v, k| match v {
                serde_json::Value::Array(items) => items.first().cloned().unwrap_or_default()[k].clone(),
                v => v[k].clone(),
            })
        };
        for knob in every.knobs() {
            let name = knob.split('=').next().unwrap();
            let name = name.split('[').next().unwrap();
            if name == "schedule" {
                assert!(readme.contains("## `[[schedule]]`"), "no schedule section");
                continue;
            }
            let cells = row(readme, "## Top-level fields", name)
                .unwrap_or_else(|| panic!("scenarios/README.md has no row for `{name}`"));
            assert_eq!(
                cells.len(),
                4,
                "`{name}`: field | default | range | meaning: {cells:?}"
            );
            assert!(!cells[2].is_empty(), "`{name}` has no documented range");
            let value = at(name);
            if value.is_number() {
                assert!(
                    range_of(name).is_some(),
                    "`{name}` is numeric but has no RANGES entry"
                );
            }
            if let Some(r) = range_of(name) {
                assert!(
                    cells[2].contains(&r.to_string()),
                    "`{name}`: README says {:?}, RANGES says {r}",
                    cells[2]
                );
            }
        }
        // Every field an entry can have: the trigger's, then every fault's.
        let mut entry = serde_json::Map::new();
        let trigger = every_trigger_field();
        entry.extend(
            serde_json::to_value(trigger)
                .unwrap()
                .as_object()
                .unwrap()
                .clone(),
        );
        for fault in crate::fault::Fault::examples() {
            entry.extend(fault.fields());
        }
        let entry = serde_json::Value::Object(entry);
        for (field, value) in entry.as_object().unwrap() {
            let cells = row(readme, "## `[[schedule]]`", field)
                .unwrap_or_else(|| panic!("scenarios/README.md has no schedule row for `{field}`"));
            assert_eq!(cells.len(), 3, "`{field}`: field | range | meaning: {cells:?}");
            assert!(!cells[1].is_empty(), "schedule `{field}` has no documented range");
            let r = range_of(&format!("schedule.{field}"));
            assert_eq!(value.is_number(), r.is_some(), "schedule `{field}`: RANGES entry");
            if let Some(r) = r {
                assert!(
                    cells[1].contains(&r.to_string()),
                    "schedule `{field}`: {cells:?} vs {r}"
                );
            }
        }
        for (name, _) in &ranges {
            let known = match name.strip_prefix("schedule.") {
                Some(f) => entry.get(f).is_some(),
                None => at(name) != serde_json::Value::Null,
            };
            assert!(known, "RANGES names `{name}`, which is no knob");
        }
    }

    #[test]
    fn the_default_scenario_is_the_default_config() {
        assert_eq!(load("default").unwrap(), SimConfig::default());
    }

    /// A typo in a field's name is answered with the field meant: in a `[[schedule]]` entry
    /// (where serde alone names only the fault's fields, `expected `node``) and at the top.
    #[test]
    fn a_mistyped_field_suggests_the_nearest() {
        for (typo, meant) in [
            ("at_m = 1000", "at_ms"),
            ("durration_ms = 100", "duration_ms"),
            ("while_holdng = \"worker-1\"", "while_holding"),
            ("nod = \"worker-1\"", "node"),
        ] {
            let text =
                format!("name = \"x\"\ndescription = \"d\"\n[[schedule]]\nfault = \"pause\"\n{typo}\n");
            let e = parse(&text, "x.toml").unwrap_err().to_string();
            assert!(e.contains(&format!("did you mean `{meant}`?")), "{typo}: {e}");
            assert!(e.contains("x.toml:5"), "{typo}: {e}");
        }
        // Another fault's field is no typo: the error says what this fault takes.
        let text = "name = \"x\"\n[[schedule]]\nfault = \"latency\"\nlatency_ms_max = 5\nnode = \"redis\"\n";
        let e = parse(text, "x.toml").unwrap_err().to_string();
        assert!(!e.contains("did you mean"), "{e}");
        let e = parse("name = \"x\"\nwrokers = 3\n", "x.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("did you mean `workers`?"), "{e}");
    }

    #[test]
    fn errors_point_at_the_line_and_field() {
        let text = "name = \"x\"\ndescription = \"d\"\nworkers = \"three\"\n";
        let e = parse(text, "x.toml").unwrap_err();
        assert_eq!((e.line, e.field.as_deref()), (Some(3), Some("workers")), "{e}");
        let text = "name = \"x\"\n[faults]\ngap_ms_min = 0\n";
        let e = parse(text, "x.toml").unwrap_err();
        assert_eq!(
            (e.line, e.field.as_deref()),
            (Some(3), Some("faults.gap_ms_min")),
            "{e}"
        );
    }
}
