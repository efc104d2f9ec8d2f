//! Every knob has a range checked at load time: a bad value is an exit-2 error naming the
//! file, the field and the range, never a run that hangs, overflows or fails as if it had
//! found something. Each case below once did one of those.

use sim::internal::scenario::config::{ranges, SimConfig};
use sim::internal::scenario::{self, EMBEDDED};

/// The knobs from the issue, each with the field and the range its error must name.
const BAD: &[(&str, &str, &str)] = &[
    // The producer searched forever for a key hashing to partition 2 (watchdog, exit 4).
    (
        "workers = 2\npartitions = 2\ncopies = 2\ncopy_partitions = [1, 2]\n",
        "copy_partitions[1]",
        "0..=1",
    ),
    // µs arithmetic overflowed u64: wrapped in release, panicked in debug.
    ("safety_s = 9_223_372_036_854_775_807\n", "safety_s", "0..=259_200"),
    (
        "liveness_s_max = 9_223_372_036_854_775_807\n",
        "liveness_s_max",
        "1..=259_200",
    ),
    (
        "[faults]\nclock_offset_ms_max = 9_223_372_036_854_775_807\n",
        "faults.clock_offset_ms_max",
        "0..=259_200_000",
    ),
    (
        "[faults]\nredis_clock_offset_ms_max = 9_000_000_000_000_000\n",
        "faults.redis_clock_offset_ms_max",
        "0..=259_200_000",
    ),
    (
        "[faults]\npause_ms_max = 9_000_000_000_000_000\n",
        "faults.pause_ms_max",
        "0..=259_200_000",
    ),
    (
        "[[schedule]]\nat_ms = 0\nfault = \"clock\"\nnode = \"worker-1\"\noffset_ms = -9_223_372_036_854_775_807\n",
        "schedule[0].offset_ms",
        "-259_200_000..=259_200_000",
    ),
    (
        "[[schedule]]\nat_ms = 9_000_000_000_000_000\nfault = \"crash\"\nnode = \"redis\"\n",
        "schedule[0].at_ms",
        "0..=259_200_000",
    ),
    (
        "[[schedule]]\nat_ms = 1\nfault = \"crash\"\nnode = \"redis\"\nduration_ms = 9_000_000_000_000_000\n",
        "schedule[0].duration_ms",
        "0..=259_200_000",
    ),
    // Ran for minutes and printed 77 MB of lost_event.
    ("events = 1000000\n", "events", "1..=100_000"),
    // Accepted, and ended as a liveness failure.
    (
        "[kafka]\nsession_timeout_ms = 0\n",
        "kafka.session_timeout_ms",
        "1..=3_600_000",
    ),
    (
        "[kafka]\nheartbeat_interval_ms = 3000\nsession_timeout_ms = 3000\n",
        "kafka.session_timeout_ms",
        "above `kafka.heartbeat_interval_ms`",
    ),
    (
        "[kafka]\nfetch_max_wait_ms = 700_000\n",
        "kafka.fetch_max_wait_ms",
        "0..=600_000",
    ),
    (
        "[kafka]\nfetch_max_wait_ms = 30_000\nmax_poll_interval_ms = 30_000\n",
        "kafka.fetch_max_wait_ms",
        "below `kafka.max_poll_interval_ms`",
    ),
    (
        "latency_ms_min = 10\nlatency_ms_max = 5\n",
        "latency_ms_min",
        "latency_ms_min <= latency_ms_max",
    ),
    ("workers = 300\n", "workers", "1..=254"),
    ("partitions = 0\n", "partitions", "1..=1_000"),
    ("ttl_probe_ms = 1\n", "ttl_probe_ms", "0 or 1_000..=259_200_000"),
    (
        "partitions = 1000\ncopies = 1000\nevents = 1000\n",
        "events",
        "at most 100000",
    ),
    (
        "[[schedule]]\nat_ms = 40_000\nfault = \"crash\"\nnode = \"redis\"\n",
        "schedule[0].at_ms",
        "below `safety_s` × 1000",
    ),
];

fn file(body: &str) -> String {
    format!("name = \"bad\"\ndescription = \"a bad knob\"\n{body}")
}

#[test]
fn each_bad_knob_is_an_error_naming_the_field_and_its_range() {
    for (body, field, says) in BAD {
        let text = file(body);
        let e = scenario::parse(&text, "bad.toml").expect_err(&format!("accepted:\n{text}"));
        assert_eq!(e.field.as_deref(), Some(*field), "{e}");
        assert!(e.line.is_some(), "no line: {e}");
        let shown = e.to_string();
        assert!(shown.starts_with("bad.toml:"), "{shown}");
        assert!(shown.contains(says), "{shown} does not say {says:?}");
    }
}

#[test]
fn the_command_line_exits_2_naming_the_file_field_and_range() {
    let dir = std::env::temp_dir().join(format!("sim-config-ranges-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (i, (body, field, says)) in BAD.iter().enumerate() {
        // Checked in the library first: the old code ran these (one for 600 s).
        assert!(scenario::parse(&file(body), "x").is_err(), "accepted: {body}");
        let path = dir.join(format!("bad-{i}.toml"));
        std::fs::write(&path, file(body)).unwrap();
        let path = path.to_str().unwrap();
        let ran = crate::sim_in(None, &["--scenario", path], b"");
        let err = ran.stderr;
        assert_eq!(ran.code, 2, "{body}: {err}");
        for part in [path, &format!("field `{field}`"), says] {
            assert!(err.contains(part), "{body}: {err} does not say {part:?}");
        }
        assert!(!err.contains("panicked"), "{err}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_line_is_the_line_of_the_bad_value() {
    let text =
        file("[[schedule]]\nat_ms = 1\nfault = \"clock\"\nnode = \"redis\"\noffset_ms = 9_000_000_000_000\n");
    let e = scenario::parse(&text, "bad.toml").unwrap_err();
    assert_eq!(e.line, Some(7), "{e}");
    let text = file("workers = 2\npartitions = 2\ncopies = 2\ncopy_partitions = [0, 5]\n");
    let e = scenario::parse(&text, "bad.toml").unwrap_err();
    assert_eq!(e.line, Some(6), "{e}");
}

#[test]
fn the_default_config_and_every_embedded_scenario_validate() {
    assert_eq!(SimConfig::default().validate(), Ok(()));
    for (name, text) in EMBEDDED {
        scenario::parse(text, name).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn each_range_admits_its_own_bounds_and_nothing_past_them() {
    use serde_json::json;
    for (name, range) in ranges() {
        match range {
            sim::internal::scenario::config::Range::Int(lo, hi)
            | sim::internal::scenario::config::Range::ZeroOr(lo, hi) => {
                assert!(range.contains(&json!(lo)) && range.contains(&json!(hi)), "{name}");
                assert!(!range.contains(&json!(hi + 1)), "{name}");
                assert!(!range.contains(&json!(u64::MAX)), "{name}");
                if let sim::internal::scenario::config::Range::Int(..) = range {
                    assert!(!range.contains(&json!(lo - 1)), "{name}");
                }
                // The µs arithmetic of every bound stays inside i64.
                assert!(hi.checked_mul(1_000_000).is_some(), "{name}");
            }
            sim::internal::scenario::config::Range::Real(lo, hi) => {
                assert!(range.contains(&json!(lo)) && range.contains(&json!(hi)), "{name}");
                assert!(!range.contains(&json!(hi + 0.5)), "{name}");
            }
            sim::internal::scenario::config::Range::AnyU64 => assert!(range.contains(&json!(u64::MAX))),
        }
    }
}
