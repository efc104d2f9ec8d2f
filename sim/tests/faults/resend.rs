//! A worker's Redis client resends as the library's real store does (`idempotency::retry`):
//! a confirm refused while Redis restarts is sent again within `redis_timeout_ms` and lands; a
//! confirm whose request or reply was lost (a clog, then a timeout) is a fenced script, safe
//! to resend, and gets one more attempt, which lands. Before resends existed both confirms
//! failed and the event was left `processing` until its lock expired.

use sim::internal::run::{self, Verdict};
use sim::internal::scenario;
use sim::internal::trace::Typed;

fn scenario(fault: &str) -> String {
    format!(
        r#"
name = "confirm-resent"
description = "Redis is {fault} when the handler confirms"
expect = "pass"
seed = 1
workers = 1
partitions = 1
events = 1
redis_persistence = "always"
database = "unique"
safety_s = 30

[faults]
random = false

[[schedule]]
point = "before_confirm"
event = 0
fault = "{fault}"
node = "redis"
duration_ms = 300
"#
    )
}

/// The worker's confirm results, and the confirm scripts Redis ran, with their replies.
fn confirms(fault: &str) -> (Vec<String>, Vec<String>) {
    let text = scenario(fault);
    let config = scenario::parse(&text, "confirm-resent.toml").expect("the scenario loads");
    let r = run::run(config.seed, &config);
    assert!(matches!(r.verdict, Verdict::Pass), "{fault}: {:?}", r.verdict);
    let mut worker = Vec::new();
    let mut redis = Vec::new();
    for e in &r.events {
        match e.typed() {
            Typed::Confirm { result, .. } => worker.push(result.to_string()),
            Typed::Redis { cmd, reply, .. } if cmd == "EVALSHA:confirm" => redis.push(reply.clone()),
            _ => {}
        }
    }
    (worker, redis)
}

#[test]
fn a_confirm_refused_while_redis_restarts_is_sent_again_and_lands() {
    let (worker, redis) = confirms("crash");
    assert_eq!(worker, ["confirmed"], "redis ran {redis:?}");
    assert_eq!(redis, ["1"], "the one that reached it");
}

#[test]
fn a_confirm_lost_in_a_clog_times_out_and_its_one_more_attempt_lands() {
    let (worker, redis) = confirms("clog");
    assert_eq!(worker, ["confirmed"], "redis ran {redis:?}");
    assert_eq!(redis, ["1"]);
}
