//! The real-Redis tests tell the truth when nothing ran: without a server they are reported
//! as `ignored` (with the reason), not as passed in 0.00 s, and `scripts/test` runs them for
//! real. Checked on the sources, as a nested `cargo test` would be slow.

const REAL_REDIS: &[&str] = &[
    "idempotency/tests/real_redis.rs",
    "sim/tests/models/redis_differential.rs",
];

fn read(path: &str) -> String {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    std::fs::read_to_string(format!("{root}/{path}")).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn every_real_redis_test_is_ignored_with_its_reason_and_never_passes_empty() {
    for path in REAL_REDIS {
        let text = read(path);
        let tests: Vec<&str> = text.split("#[tokio::test]").skip(1).collect();
        assert!(!tests.is_empty(), "{path}: no tests found");
        for after in tests {
            assert!(
                after
                    .trim_start()
                    .starts_with("#[ignore = \"needs a redis-server: run scripts/test"),
                "{path}: a real-Redis test without #[ignore = \"needs a redis-server: ...\"]: {}",
                after.lines().take(3).collect::<Vec<_>>().join(" ")
            );
        }
        assert!(!text.contains("#[test]"), "{path}: a #[test] not checked here");
        for lie in [
            "SKIPPED",
            "let Some(url) = redis_url",
            "let Some(mut server) = PrivateServer",
        ] {
            assert!(
                !text.contains(lie),
                "{path}: {lie:?}: a test that returns early passes without running"
            );
        }
    }
    let support = read("idempotency/tests/support/mod.rs");
    assert!(
        !support.contains("SKIPPED"),
        "support/mod.rs still skips silently"
    );
}

#[test]
fn scripts_test_runs_the_ignored_real_redis_tests() {
    let script = read("scripts/test");
    assert!(
        script.contains("--include-ignored"),
        "scripts/test does not run them"
    );
    assert!(
        script.contains("IDEMPOTENCY_REDIS_URL="),
        "scripts/test sets no URL"
    );
}
