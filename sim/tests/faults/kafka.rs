//! Kafka as consumers see it, across many seeds of the default scenario: rebalances,
//! redeliveries after a rebalance, zombie commits rejected and producer duplicates all happen,
//! and the Kafka model's own history checks never fire. The idempotent producer removes the
//! duplicate records.

use sim::internal::check::kafka::KafkaStats;
use sim::internal::run;
use sim::internal::scenario::config::SimConfig;
use sim::internal::trace::Typed;

const KAFKA_CHECKS: [&str; 4] = [
    "lost",
    "nonmonotonic_commit",
    "stale_commit_accepted",
    "poll_skip",
];

fn sweep(config: &SimConfig, seeds: std::ops::Range<u64>) -> KafkaStats {
    let mut total = KafkaStats::default();
    let seeds: Vec<u64> = seeds.collect();
    for pair in seeds.chunks(2) {
        let results: Vec<_> = std::thread::scope(|scope| {
            let hs: Vec<_> = pair
                .iter()
                .map(|&seed| scope.spawn(move || (seed, run::run(seed, config))))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (seed, r) in results {
            let kafka_violations: Vec<_> = r
                .verdict
                .violations()
                .iter()
                .filter(|v| KAFKA_CHECKS.contains(&v.kind))
                .collect();
            assert!(
                kafka_violations.is_empty(),
                "seed {seed}: {kafka_violations:?}: cargo run -p sim -- --seed {seed}"
            );
            total += &r.kafka;
        }
    }
    total
}

#[test]
fn a_thousand_seeds_rebalance_redeliver_reject_zombies_and_duplicate_records_without_breaking_kafka() {
    let stats = sweep(&SimConfig::default(), 0..1000);
    println!("1000 seeds of the default scenario: {stats:?}");
    assert!(stats.rebalances > 0);
    assert!(
        stats.redeliveries > 0,
        "no record was delivered again after a rebalance"
    );
    assert!(
        stats.zombie_commits_rejected > 0,
        "no zombie's commit was rejected"
    );
    assert!(
        stats.producer_duplicates > 0,
        "no lost ack made the producer append a record twice"
    );
    assert!(stats.duplicate_deliveries > 0);
}

#[test]
fn the_idempotent_producer_appends_no_duplicate_records() {
    let mut config = SimConfig::default();
    config.kafka.idempotent_producer = true;
    config.faults.ack_loss_weight = 5;
    let stats = sweep(&config, 0..100);
    println!("100 seeds, idempotent producer, frequent ack loss: {stats:?}");
    assert_eq!(stats.producer_duplicates, 0);
    config.kafka.idempotent_producer = false;
    assert!(
        sweep(&config, 0..100).producer_duplicates > 0,
        "the same seeds without it do append duplicates"
    );
}

#[test]
fn deliveries_and_commits_carry_the_member_and_generation() {
    let r = run::run(3, &SimConfig::default());
    let (mut delivers, mut commits) = (0, 0);
    for e in &r.events {
        match e.typed() {
            // A delivery names its worker's member of a real generation.
            Typed::Deliver {
                member, generation, ..
            } => {
                delivers += 1;
                assert!(
                    member.starts_with(e.node.as_str()) && *generation > 0,
                    "{}",
                    e.json()
                );
            }
            // The broker records a commit with the member that made it.
            Typed::OffsetCommit { member, .. } => {
                commits += 1;
                assert!(member.starts_with("worker-"), "{}", e.json());
            }
            _ => {}
        }
    }
    assert!(delivers > 0 && commits > 0);
    let assigned = r
        .events
        .iter()
        .filter(|e| matches!(e.typed(), Typed::Assigned { .. }))
        .count();
    assert!(assigned >= 3, "every worker got an assignment");
}

/// The broker expires a member on its own clock: with its only worker crashed and nothing else
/// sending, no request comes to drive it, and the member is still removed once its session
/// times out (the broker's node sets its own wake-ups; the transport serves requests in the
/// callers' tasks, so this is the one thing that must run in the broker's).
#[test]
fn a_silent_broker_still_expires_a_crashed_members_session_on_time() {
    let text = r#"
name = "silent-broker"
events = 2
workers = 1
partitions = 1
produce_gap_ms_max = 10
[kafka]
session_timeout_ms = 6000
heartbeat_interval_ms = 1000
[faults]
random = false
[[schedule]]
at_ms = 2000
fault = "crash"
node = "worker-1"
duration_ms = 30000
"#;
    let config = sim::internal::scenario::parse(text, "silent-broker.toml").expect("the scenario loads");
    let r = run::run(1, &config);
    let crash_us = 2_000_000;
    let last_request_us = r
        .events
        .iter()
        .filter(|e| e.node == "kafka" && e.t_us < crash_us + 1_000_000)
        .map(|e| e.t_us)
        .max()
        .expect("the broker was busy before the crash");
    let removed: Vec<(u64, String)> = r
        .events
        .iter()
        .filter_map(|e| match e.typed() {
            Typed::MemberRemoved { member, reason } if reason == "session_timeout" => {
                Some((e.t_us, member.clone()))
            }
            _ => None,
        })
        .collect();
    let (at, member) = removed
        .first()
        .expect("the crashed member's session expired")
        .clone();
    assert_eq!(member, "worker-1-1");
    // After its last heartbeat (before the crash) plus the session, before the restart at 32 s.
    assert!(
        at >= crash_us + 6_000_000 - 1_000_000 && at <= crash_us + 6_000_000 + 1_000_000,
        "removed at {at} µs"
    );
    assert!(at < 32_000_000 && last_request_us < at);
    assert_eq!(r.verdict, run::Verdict::Pass, "{:?}", r.verdict);
}
