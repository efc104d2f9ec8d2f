//! The CI examples in `docs/ci/` do what the README says: the Kubernetes wait ends when the
//! Job fails (not after its whole timeout), and the GitHub workflow skips on forks' pull
//! requests the one step their read-only token cannot do.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn docs_ci(file: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../docs/ci")
        .join(file)
}

/// Runs `docs/ci/k8s-wait JOB TIMEOUT_S` with a fake `kubectl` that reports `conditions`.
fn wait_with(conditions: &str, timeout_s: u64) -> (i32, Duration) {
    let dir = std::env::temp_dir().join(format!(
        "sim-k8s-wait-{}-{}",
        std::process::id(),
        conditions.len() + timeout_s as usize
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let fake = dir.join("kubectl");
    std::fs::write(&fake, format!("#!/bin/sh\nprintf '%s' '{conditions}'\n")).unwrap();
    Command::new("chmod").arg("+x").arg(&fake).status().unwrap();
    let path = format!("{}:{}", dir.display(), std::env::var("PATH").unwrap_or_default());
    let started = Instant::now();
    let status = Command::new("sh")
        .arg(docs_ci("k8s-wait"))
        .args(["sim-sweep", &timeout_s.to_string()])
        .env("PATH", path)
        .env("K8S_WAIT_EVERY_S", "1")
        .status()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    (status.code().unwrap(), started.elapsed())
}

#[test]
fn the_kubernetes_wait_ends_when_the_job_fails() {
    let (code, took) = wait_with("FailureTarget Failed", 7200);
    assert_eq!(code, 1);
    assert!(took < Duration::from_secs(30), "{took:?}");
    let (code, took) = wait_with("Complete", 7200);
    assert_eq!(code, 0);
    assert!(took < Duration::from_secs(30), "{took:?}");
    // Neither: the timeout ends it.
    let (code, _) = wait_with("", 2);
    assert_eq!(code, 2);
    // The manifest's instructions use it, and say the volume must be ReadWriteMany.
    let manifest = std::fs::read_to_string(docs_ci("k8s-indexed-job.yaml")).unwrap();
    assert!(manifest.contains("docs/ci/k8s-wait sim-sweep"), "{manifest}");
    assert!(!manifest.contains("--for=condition=complete"), "{manifest}");
    assert!(manifest.contains("accessModes: [ReadWriteMany]"));
    assert!(manifest.contains("must be ReadWriteMany"));
}

#[test]
fn the_workflow_skips_publishing_checks_on_forks_pull_requests() {
    let workflow = std::fs::read_to_string(docs_ci("github-actions.yml")).unwrap();
    let lines: Vec<&str> = workflow.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.contains("uses: mikepenz/action-junit-report"))
        .expect("the JUnit publishing step");
    let guard = lines[at + 1].trim();
    assert!(
        guard.starts_with("if:")
            && guard.contains("github.event.pull_request.head.repo.full_name == github.repository"),
        "{guard}"
    );
    // No other step needs more than a fork's read-only token.
    let granted = lines
        .iter()
        .filter(|l| l.trim().starts_with("checks: write"))
        .count();
    assert_eq!(granted, 1, "{workflow}");
    assert!(!workflow.contains("pull_request_target"));
}
