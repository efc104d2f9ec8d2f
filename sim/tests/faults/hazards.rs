//! Hazards real systems hit, as faults of the one vocabulary: a reply lost after its command
//! ran (`lost_replies`), a failover to a replica that lags (`failover`), and slow links
//! (`[[link_latency]]`, and the `slow_link` fault). Each test shows the hazard's consequence in a run, and the `why` that
//! names it where it repeats an effect.

use sim::internal::check::why;
use sim::internal::run::{self, RunResult, Verdict};
use sim::internal::scenario;
use sim::internal::trace::Typed;

fn run_text(text: &str) -> RunResult {
    let config = scenario::parse(text, "hazard.toml").expect("the scenario loads");
    run::run(config.seed, &config)
}

/// The virtual times (ms) of the event's effects.
fn applied_ms(r: &RunResult) -> Vec<u64> {
    r.events
        .iter()
        .filter(|e| matches!(e.typed(), Typed::EffectApplied { .. }))
        .map(|e| e.t_us / 1000)
        .collect()
}

/// Each `cmd` Redis ran, with its reply and whether the reply was lost.
fn redis(r: &RunResult, cmd: &str) -> Vec<(String, bool)> {
    r.events
        .iter()
        .filter_map(|e| match e.typed() {
            Typed::Redis {
                cmd: c,
                reply,
                reply_lost,
                ..
            } if c == cmd => Some((reply.clone(), *reply_lost)),
            _ => None,
        })
        .collect()
}

/// The mechanisms behind the run's repeated effects.
fn mechanisms(r: &RunResult) -> Vec<String> {
    let Verdict::Correctness(violations) = &r.verdict else {
        return Vec::new();
    };
    violations
        .iter()
        .filter_map(|v| why::explain(&r.events, v))
        .map(|w| w.to_string())
        .collect()
}

/// One event, two copies a second apart (worker-1 then worker-2); the replies to `command`
/// are lost for the first 500 ms, while worker-1 acquires.
fn lost_reply(protocol: &str, policy: &str, command: &str) -> String {
    format!(
        r#"
name = "lost-reply"
seed = 1
workers = 2
partitions = 2
events = 1
copies = 2
copy_partitions = [0, 1]
copy_gap_ms = 1000
protocol = "{protocol}"
on_redis_failure = "{policy}"
database = "plain"
safety_s = 400

[faults]
random = false

[[schedule]]
at_ms = 0
fault = "lost_replies"
share = 1.0
command = "{command}"
duration_ms = 500
"#
    )
}

#[test]
fn a_lost_acquire_reply_under_v2_fail_open_leaves_a_lock_nobody_holds() {
    let r = run_text(&lost_reply("v2", "fail_open", "SET"));
    // The SET NX ran and won; its reply never came.
    assert_eq!(redis(&r, "SET")[0], ("OK".to_owned(), true));
    // worker-1 timed out, failed open and applied at once; the copy found the orphaned lock
    // busy until it expired 300 s later, and applied again.
    let applied = applied_ms(&r);
    assert_eq!(applied.len(), 2, "{applied:?}");
    assert!(applied[0] < 1_000 && applied[1] >= 300_000, "{applied:?}");
    let why = mechanisms(&r);
    assert!(
        why.iter()
            .any(|w| w.starts_with("lost_reply: worker-1's call 1's SET")),
        "{why:?}"
    );
}

#[test]
fn a_lost_acquire_reply_under_v2_fail_closed_holds_the_event_for_the_locks_ttl() {
    let r = run_text(&lost_reply("v2", "fail_closed", "SET"));
    assert!(matches!(r.verdict, Verdict::Pass), "{:?}", r.verdict);
    // Nobody runs it until the lock its own lost reply left behind is 300 s old.
    let applied = applied_ms(&r);
    assert_eq!(applied.len(), 1, "{applied:?}");
    assert!(applied[0] >= 300_000, "{applied:?}");
}

#[test]
fn a_lost_acquire_reply_under_fenced_is_resent_and_recognises_its_own_lease() {
    let r = run_text(&lost_reply("fenced", "fail_open", "EVALSHA:acquire"));
    assert!(matches!(r.verdict, Verdict::Pass), "{:?}", r.verdict);
    let acquires = redis(&r, "EVALSHA:acquire");
    // The first ran and its reply was lost; the resend found this call's own lease and
    // answered acquired with the same token.
    assert!(
        acquires[0].0.starts_with("[\"acquired\"") && acquires[0].1,
        "{acquires:?}"
    );
    assert_eq!(acquires[1].0, acquires[0].0, "{acquires:?}");
    let applied = applied_ms(&r);
    assert_eq!(applied.len(), 1, "{applied:?}");
    assert!(applied[0] < 1_000, "{applied:?}");
}

#[test]
fn a_failover_to_a_lagging_replica_loses_the_completed_record() {
    // worker-1 confirms; Redis fails over at once to a replica 1 s behind, which never had the
    // completed record; the copy 5 s later processes the event again.
    let text = |database: &str| {
        format!(
            r#"
name = "failover-lag"
seed = 1
workers = 2
partitions = 2
events = 1
copies = 2
copy_partitions = [0, 1]
copy_gap_ms = 5000
protocol = "fenced"
database = "{database}"
redis_persistence = "always"
safety_s = 30

[faults]
random = false

[[schedule]]
point = "after_confirm"
event = 0
fault = "failover"
lag_ms = 1000
duration_ms = 2000
"#
        )
    };
    let r = run_text(&text("plain"));
    assert_eq!(applied_ms(&r).len(), 2);
    let why = mechanisms(&r);
    assert!(
        why.iter().any(|w| w.starts_with(
            "failover_lost: Redis failed over at 226 ms to a replica 1000 ms behind, which \
                 lacked worker-1's call 1's completed record"
        )),
        "{why:?}"
    );
    // `appendfsync always` does not help: the replica never had the write. The fencing token
    // stays monotonic (Redis's TIME floor), so a fenced database accepts the second effect
    // too; only a database that dedupes by event keeps one.
    assert_eq!(applied_ms(&run_text(&text("fenced"))).len(), 2);
    let unique = run_text(&text("unique"));
    assert!(matches!(unique.verdict, Verdict::Pass), "{:?}", unique.verdict);
}

/// A fenced lease of 3 s (renewed every second) while its handler runs 6 s; Redis fails over
/// (no lag) as the handler starts and the replica is promoted `promote_ms` later.
fn renewal(promote_ms: u64) -> RunResult {
    run_text(&format!(
        r#"
name = "failover-renew"
seed = 1
workers = 1
partitions = 1
events = 1
protocol = "fenced"
processing_ttl_s = 3
handler_ms_min = 6000
handler_ms_max = 6000
redis_persistence = "always"
safety_s = 30

[faults]
random = false

[[schedule]]
while_holding = "worker-1"
event = 0
fault = "failover"
lag_ms = 0
duration_ms = {promote_ms}
"#
    ))
}

#[test]
fn renewals_refused_during_a_promotion_are_tried_again_and_lose_the_lease_past_its_ttl() {
    // Promoted within the lease: the renewals refused meanwhile are tried again at the next
    // interval (the library's loop), which finds the lease and keeps it.
    let short = renewal(1_500);
    let renews = redis(&short, "EVALSHA:renew");
    assert!(
        !renews.is_empty() && renews.iter().all(|(r, _)| r == "1"),
        "{renews:?}"
    );
    assert_eq!(redis(&short, "EVALSHA:confirm")[0].0, "1");
    // Promoted after the lease's TTL: every renewal was refused, the lease expired on the
    // promoted node's clock, the first renewal that lands finds it gone, and the confirm
    // writes the completed record after expiry (2).
    let long = renewal(4_000);
    let renews = redis(&long, "EVALSHA:renew");
    assert_eq!(renews.first().map(|r| r.0.as_str()), Some("0"), "{renews:?}");
    assert_eq!(redis(&long, "EVALSHA:confirm")[0].0, "2");
    assert!(matches!(long.verdict, Verdict::Pass), "{:?}", long.verdict);
}

/// Two workers, five events, v2 failing open on a plain database, no random faults; `links`
/// appended as `[[link_latency]]` entries.
fn slow(links: &str) -> RunResult {
    run_text(&format!(
        r#"
name = "slow-link"
seed = 3
workers = 2
partitions = 2
events = 5
protocol = "v2"
database = "plain"
redis_timeout_ms = 500
safety_s = 30

[faults]
random = false
{links}"#
    ))
}

/// The workers that ran a handler unprotected because Redis timed out.
fn timed_out(r: &RunResult) -> Vec<String> {
    let mut out: Vec<String> = r
        .events
        .iter()
        .filter(|e| matches!(e.typed(), Typed::Unprotected { reason, .. } if reason.contains("timed out")))
        .map(|e| e.node.to_string())
        .collect();
    out.dedup();
    out
}

#[test]
fn a_slow_redis_link_times_commands_out_and_only_where_it_is_slow() {
    // The run's one range (1..=5 ms): no command times out.
    assert_eq!(timed_out(&slow("")), Vec::<String>::new());
    // Every link of Redis 300..=400 ms each way: each round trip passes the 500 ms timeout.
    let all = slow("[[link_latency]]\nnode = \"redis\"\nms_min = 300\nms_max = 400\n");
    let mut workers = timed_out(&all);
    workers.sort();
    workers.dedup();
    assert_eq!(workers, ["worker-1", "worker-2"]);
    // Only worker-2's link to Redis: worker-1 is never slowed.
    let one = slow("[[link_latency]]\nnode = \"worker-2\"\npeer = \"redis\"\nms_min = 300\nms_max = 400\n");
    assert_eq!(timed_out(&one), ["worker-2"]);
    // The database's links keep the run's range: no database call times out.
    assert!(!one
        .events
        .iter()
        .any(|e| matches!(e.typed(), Typed::HandlerEnd { result, .. } if result.contains("database"))));
}

#[test]
fn a_slow_link_fault_slows_a_node_until_it_heals() {
    // Redis's links up to 2 s each way for the first 20 s: commands time out meanwhile.
    let r = slow(
        "[[schedule]]\nat_ms = 0\nfault = \"slow_link\"\nnode = \"redis\"\nlatency_ms_max = 2000\nduration_ms = 20000\n",
    );
    assert!(!timed_out(&r).is_empty());
    let heal = r
        .events
        .iter()
        .find(|e| matches!(e.typed(), Typed::Heal { heal, .. } if heal == "slow_link"))
        .expect("healed");
    assert_eq!(heal.t_us, 20_000_000);
    // After the heal no command times out.
    assert!(!r.events.iter().any(|e| e.t_us > 21_000_000
        && matches!(e.typed(), Typed::Unprotected { reason, .. } if reason.contains("timed out"))));
}

#[test]
fn link_latency_mistakes_name_the_entry_and_field() {
    let base = "name = \"x\"\nworkers = 2\n[faults]\nrandom = false\n";
    for (entry, says) in [
        (
            "node = \"redis\"\nms_min = 9\nms_max = 3",
            "`link_latency[0].ms_min` (9) must be <= `link_latency[0].ms_max` (3)",
        ),
        (
            "node = \"worker-3\"\nms_min = 1\nms_max = 3",
            "`link_latency[0].node`: unknown node \"worker-3\"",
        ),
        (
            "node = \"db\"\npeer = \"db\"\nms_min = 1\nms_max = 3",
            "`link_latency[0].peer`: db is `node` itself",
        ),
        (
            "node = \"db\"\nms_min = 1\nms_max = 70000",
            "link_latency[0].ms_max",
        ),
        ("node = \"db\"\nms_min = 1", "ms_max"),
    ] {
        let text = format!("{base}[[link_latency]]\n{entry}\n");
        let err = scenario::parse(&text, "x.toml").unwrap_err().to_string();
        assert!(err.contains(says), "{entry}: {err}");
    }
}

#[test]
fn the_new_kinds_are_drawn_at_random_and_heal() {
    // Off by default; with weights, the nemesis draws them and every failover is promoted.
    let text = "name = \"x\"\nprotocol = \"v2\"\ndatabase = \"plain\"\n[faults]\nlost_replies_weight = 4\nfailover_weight = 4\nslow_link_weight = 4\n";
    let config = scenario::parse(text, "x.toml").expect("loads");
    let mut seen = std::collections::BTreeSet::new();
    for seed in 0..5 {
        let r = run::run(seed, &config);
        assert!(
            !matches!(r.verdict, Verdict::Crash(_)),
            "seed {seed}: {:?}",
            r.verdict
        );
        seen.extend(r.faults.keys().cloned());
        let promoted = r
            .events
            .iter()
            .filter(|e| matches!(e.typed(), Typed::Heal { heal, .. } if heal == "promoted"))
            .count();
        assert_eq!(
            promoted,
            r.faults.get("failover").copied().unwrap_or(0),
            "seed {seed}"
        );
    }
    assert!(
        seen.contains("lost_replies") && seen.contains("failover"),
        "{seen:?}"
    );
    let default = run::run(0, &sim::internal::scenario::config::SimConfig::default());
    assert!(!default.faults.contains_key("lost_replies") && !default.faults.contains_key("failover"));
}
