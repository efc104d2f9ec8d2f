//! Swarm testing: each seed draws its own world before it runs.
//!
//! A scenario with `swarm = true` is a base, not a run: every seed first draws, from its own
//! `swarm` stream, which fault kinds are on (a random subset: how many is uniform from none to
//! all), their weights
//! and sizes, a regime ("short and many" faults, or "long and few" that outlast the lock's
//! TTL), the topology, the handler's timing, copies and their header mix, and the broker's
//! `max.poll.interval` against the lock's TTL. Swarm testing (Groce et al., 2012; TigerBeetle's
//! swarm options) finds more distinct bugs than one fixed mix, because a kind that is always on
//! can hide a bug another kind needs quiet to show: a crash every few seconds keeps a 300 s
//! lock from ever expiring under a live holder.
//!
//! The draw is a pure function of the seed and the base ([`draw`]); its result is an ordinary
//! config with `swarm` off and a description that says what was drawn, so the trace's first
//! event, `-v`, sweep reports and saved scenarios all record what was on, and replaying a
//! saved scenario gives the same run. Knobs the draw leaves alone (the protocol, the
//! database, the failure and busy policies, offset commits) stay the base's, so `--protocol`
//! and `--database` overrides pick what is under test and the swarm picks the world around it.

use super::config::SimConfig;
use crate::fault::nemesis::KINDS;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// How the faults of a swarm seed are spread over its safety phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Regime {
    /// Faults every fraction of a second to a few seconds, each healing within seconds; a
    /// short safety phase and many events.
    ShortMany,
    /// Faults tens of seconds apart, each lasting up to 2.5 lock TTLs (a holder down, paused
    /// or cut off past its lock); a safety phase of several TTLs and few events.
    LongFew,
}

impl Regime {
    /// Its name as descriptions and tables print it.
    pub fn name(self) -> &'static str {
        match self {
            Regime::ShortMany => "short_many",
            Regime::LongFew => "long_few",
        }
    }
}

/// What a seed drew, besides the config itself: what `sim findings` classifies seeds by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Drawn {
    /// The regime.
    pub regime: Regime,
    /// The nemesis kinds that are on (weight above 0), in [`KINDS`] order.
    pub kinds_on: Vec<&'static str>,
    /// More than one copy of each event.
    pub copies: bool,
    /// Copies with and without the `event_id`/`event_type` headers.
    pub mixed_headers: bool,
    /// A handler that may run past the lock's TTL.
    pub slow_handler: bool,
    /// `max.poll.interval` above the lock's TTL (a long-handler consumer).
    pub long_poll_interval: bool,
    /// A session timeout above the lock's TTL: a paused member stays in the group.
    pub long_session: bool,
}

impl Drawn {
    /// The features a finding can be classified by (trigger or suppressor): every nemesis
    /// kind by name (on or off), then the regime and the workload's shapes.
    pub fn features(&self) -> Vec<(String, bool)> {
        let mut out: Vec<(String, bool)> = KINDS
            .iter()
            .map(|k| (k.name.to_owned(), self.kinds_on.contains(&k.name)))
            .collect();
        out.push(("long_few".into(), self.regime == Regime::LongFew));
        out.push(("copies".into(), self.copies));
        out.push(("mixed_headers".into(), self.mixed_headers));
        out.push(("slow_handler".into(), self.slow_handler));
        out.push(("long_poll_interval".into(), self.long_poll_interval));
        out.push(("long_session".into(), self.long_session));
        out
    }
}

/// The lock TTL every swarm seed keeps: v2's, which the Python services cannot change.
const TTL_S: u64 = 300;

/// `base` as seed `seed` of a swarm draws it, and what it drew. `base` must have `swarm` on.
pub fn draw(seed: u64, base: &SimConfig) -> (SimConfig, Drawn) {
    assert!(base.swarm, "a swarm draw needs a swarm base");
    let mut rng = crate::rng::stream(seed, "swarm");
    let mut c = base.clone();
    c.swarm = false;
    c.seed = seed;
    let regime = if rng.gen_bool(0.5) {
        Regime::ShortMany
    } else {
        Regime::LongFew
    };
    let ttl_ms = TTL_S * 1000;
    c.processing_ttl_s = TTL_S;

    // The topology: one worker (no one to race with) up to five.
    c.workers = rng.gen_range(1..=5);
    c.partitions = rng.gen_range(1..=6u32).max(c.workers.min(3));
    c.events = match regime {
        Regime::ShortMany => rng.gen_range(20..=150),
        Regime::LongFew => rng.gen_range(5..=40),
    };
    c.headers_share = pick(&mut rng, &[0.0, 0.5, 1.0]);
    c.produce_gap_ms_max = pick(&mut rng, &[0, 100, 400, 2_000]);

    // Copies of each event on other partitions, sometimes with mixed headers (v2's two keys).
    let most_copies = c.partitions.min(3);
    c.copies = if most_copies > 1 && rng.gen_bool(0.4) {
        rng.gen_range(2..=most_copies)
    } else {
        1
    };
    c.copy_partitions = Vec::new();
    c.copy_gap_ms = if c.copies > 1 {
        pick(&mut rng, &[0, 0, 0, 50, 1_000, 30_000])
    } else {
        0
    };
    c.copy_headers = if c.copies > 1 && rng.gen_bool(0.5) {
        let mut h: Vec<bool> = (0..c.copies).map(|_| rng.gen_bool(0.5)).collect();
        // Mixed means both kinds: the first two copies differ.
        h[1] = !h[0];
        h
    } else {
        Vec::new()
    };

    // The handler: usually quick; sometimes slow, in the long regime past the lock's TTL.
    let slow_handler = rng.gen_bool(0.25);
    c.handler_ms_min = rng.gen_range(0..=20);
    c.handler_ms_max = match (slow_handler, regime) {
        (false, _) => rng.gen_range(c.handler_ms_min.max(1)..=500),
        (true, Regime::ShortMany) => rng.gen_range(1_000..=10_000),
        (true, Regime::LongFew) => rng.gen_range(ttl_ms / 2..=2 * ttl_ms),
    };
    if slow_handler && regime == Regime::LongFew {
        // Handlers of minutes each: few events, or the run cannot finish them.
        c.events = c.events.min(rng.gen_range(2..=8));
    }
    c.confirm_delay_ms = if rng.gen_bool(0.2) {
        rng.gen_range(0..=2_000)
    } else {
        0
    };
    c.latency_ms_min = rng.gen_range(0..=2);
    c.latency_ms_max = c.latency_ms_min + rng.gen_range(0..=20);
    c.redis_persistence = pick(
        &mut rng,
        &[
            crate::model::redis::Persistence::Everysec,
            crate::model::redis::Persistence::Everysec,
            crate::model::redis::Persistence::Always,
            crate::model::redis::Persistence::None,
        ],
    );

    // The group: `max.poll.interval` drawn against the lock's TTL. A long-handler consumer
    // sets it to many minutes, so a handler (or pause) past the lock stays a member.
    let long_poll_interval = rng.gen_bool(0.5);
    c.kafka.max_poll_interval_ms = if long_poll_interval {
        pick(&mut rng, &[2 * ttl_ms, 3 * ttl_ms])
    } else {
        30_000
    };
    // The session timeout too: a paused process sends no heartbeats, so only a session longer
    // than the pause keeps a paused holder in the group while its lock expires under it.
    c.kafka.session_timeout_ms = pick(&mut rng, &[10_000, 45_000, 2 * ttl_ms]);

    // The faults: a random subset of the kinds, each with its own weight; then sizes by regime.
    c.faults.random = true;
    let mut weights = serde_json::to_value(&c.faults).expect("faults serialize");
    let mut kinds_on = Vec::new();
    // A density first, then each kind on with that probability from its own stream: how many
    // kinds are on is then uniform from none to all (a Beta(1, 1) mixture of binomials), so a
    // quiet seed or one kind alone is as likely as any other count (with a fair coin per
    // kind, one seed in 4,096 would be quiet); and a kind added to the nemesis leaves every
    // other kind's draw as it was.
    let density: f64 = rng.gen();
    for kind in KINDS {
        let mut own = crate::rng::stream(seed, &format!("swarm/{}", kind.name));
        let on = own.gen::<f64>() < density;
        let weight = if on { own.gen_range(1..=10u32) } else { 0 };
        // Set by name (a knob at its default may be left out of the serialized config); a
        // kind without a `<name>_weight` knob is refused below by `deny_unknown_fields`.
        let field = format!("{}_weight", kind.name);
        weights
            .as_object_mut()
            .expect("faults are a table")
            .insert(field, weight.into());
        if on {
            kinds_on.push(kind.name);
        }
    }
    c.faults = serde_json::from_value(weights)
        .unwrap_or_else(|e| panic!("every nemesis kind has a `<name>_weight` knob: {e}"));
    let f = &mut c.faults;
    match regime {
        Regime::ShortMany => {
            c.safety_s = rng.gen_range(20..=60);
            f.gap_ms_min = rng.gen_range(50..=500);
            f.gap_ms_max = f.gap_ms_min + rng.gen_range(100..=3_000);
            f.down_ms_max = rng.gen_range(500..=10_000);
            f.pause_ms_max = rng.gen_range(500..=10_000);
            f.clog_ms_max = rng.gen_range(500..=5_000);
            f.latency_spike_ms_max = rng.gen_range(500..=5_000);
            f.redis_errors_ms_max = rng.gen_range(500..=5_000);
            f.db_errors_ms_max = rng.gen_range(500..=5_000);
        }
        Regime::LongFew => {
            c.safety_s = rng.gen_range(3 * TTL_S..=4 * TTL_S);
            f.gap_ms_min = rng.gen_range(5_000..=60_000);
            f.gap_ms_max = f.gap_ms_min + rng.gen_range(10_000..=120_000);
            f.down_ms_max = rng.gen_range(ttl_ms / 2..=5 * ttl_ms / 2);
            f.pause_ms_max = rng.gen_range(ttl_ms / 2..=5 * ttl_ms / 2);
            f.clog_ms_max = rng.gen_range(ttl_ms / 10..=ttl_ms);
            f.latency_spike_ms_max = rng.gen_range(10_000..=120_000);
            f.redis_errors_ms_max = rng.gen_range(10_000..=ttl_ms);
            f.db_errors_ms_max = rng.gen_range(10_000..=ttl_ms);
        }
    }
    f.latency_ms_max = rng.gen_range(50..=2_000);
    f.redis_error_share_max = pick(&mut rng, &[0.1, 0.5, 1.0]);
    f.db_error_share_max = pick(&mut rng, &[0.1, 0.5, 1.0]);
    f.clock_offset_ms_max = pick(&mut rng, &[1_000, 60_000, 600_000]);
    f.redis_clock_offset_ms_max = pick(&mut rng, &[1_000, 60_000, 2 * ttl_ms]);

    // Time enough for the liveness phase to finish every handler even one after another on
    // one worker, each twice (a redelivery after a crash or a lost lock): an event not applied
    // because the run ended first would be a `lost_event` that is not true.
    // The producer publishes one event (and its copies, `copy_gap_ms` apart) after another,
    // so publishing alone may take long too: 126 events with copies 30 s apart take an hour.
    let serial_s = u64::from(c.events) * u64::from(c.copies) * c.handler_ms_max.div_ceil(1000);
    let publish_s = (u64::from(c.events) * (c.produce_gap_ms_max + c.copy_gap_ms * u64::from(c.copies - 1)))
        .div_ceil(1000);
    c.liveness_s_max = base.liveness_s_max.max(2 * (serial_s + publish_s) + 2 * TTL_S);

    let drawn = Drawn {
        regime,
        kinds_on,
        copies: c.copies > 1,
        mixed_headers: !c.copy_headers.is_empty(),
        slow_handler,
        long_poll_interval,
        long_session: c.kafka.session_timeout_ms > ttl_ms,
    };
    c.description = describe(seed, &c, &drawn);
    debug_assert!(c.validate().is_ok(), "{:?}", c.validate());
    (c, drawn)
}

/// The drawn config's description: the seed, the regime, the kinds on, the shapes.
fn describe(seed: u64, c: &SimConfig, d: &Drawn) -> String {
    let kinds = if d.kinds_on.is_empty() {
        "no faults".to_owned()
    } else {
        d.kinds_on.join(",")
    };
    let mut shapes = vec![
        format!("{} workers", c.workers),
        format!("{} partitions", c.partitions),
        format!("{} events", c.events),
    ];
    if c.copies > 1 {
        shapes.push(format!(
            "{} copies{}",
            c.copies,
            if d.mixed_headers { " (mixed headers)" } else { "" }
        ));
    }
    if d.slow_handler {
        shapes.push(format!("handler up to {} ms", c.handler_ms_max));
    }
    shapes.push(format!(
        "max.poll.interval {} s",
        c.kafka.max_poll_interval_ms / 1000
    ));
    format!(
        "swarm seed {seed}: {}; faults on: {kinds}; {}",
        d.regime.name(),
        shapes.join(", ")
    )
}

/// One of `items`, uniformly.
fn pick<T: Copy>(rng: &mut ChaCha8Rng, items: &[T]) -> T {
    items[rng.gen_range(0..items.len())]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> SimConfig {
        SimConfig {
            swarm: true,
            ..SimConfig::default()
        }
    }

    #[test]
    fn every_draw_is_a_valid_config_with_swarm_off() {
        let base = base();
        for seed in 0..2_000 {
            let (c, _) = draw(seed, &base);
            assert!(!c.swarm);
            assert_eq!(c.seed, seed);
            if let Err(e) = c.validate() {
                panic!("seed {seed}: {e}\n{}", c.to_toml());
            }
        }
    }

    #[test]
    fn a_draw_is_a_function_of_the_seed_alone() {
        let base = base();
        assert_eq!(draw(7, &base), draw(7, &base));
        assert_ne!(draw(7, &base).0, draw(8, &base).0);
    }

    #[test]
    fn draws_cover_no_faults_every_kind_alone_both_regimes_and_every_shape() {
        let base = base();
        let draws: Vec<Drawn> = (0..4_000).map(|s| draw(s, &base).1).collect();
        assert!(
            draws.iter().any(|d| d.kinds_on.is_empty()),
            "a seed with no faults"
        );
        for k in KINDS {
            assert!(draws.iter().any(|d| d.kinds_on == [k.name]), "{} alone", k.name);
        }
        for r in [Regime::ShortMany, Regime::LongFew] {
            assert!(draws.iter().any(|d| d.regime == r));
        }
        for (i, (name, _)) in draws[0].features().iter().enumerate() {
            assert!(draws.iter().any(|d| d.features()[i].1), "{name} on somewhere");
            assert!(draws.iter().any(|d| !d.features()[i].1), "{name} off somewhere");
        }
    }

    #[test]
    fn how_many_kinds_are_on_is_uniform_from_none_to_all() {
        let base = base();
        let n = KINDS.len();
        let mut counts = vec![0u32; n + 1];
        let draws = 6_000;
        for seed in 0..draws {
            counts[draw(seed, &base).1.kinds_on.len()] += 1;
        }
        let expected = f64::from(draws as u32) / (n + 1) as f64;
        for (k, &c) in counts.iter().enumerate() {
            assert!(
                f64::from(c) > 0.6 * expected && f64::from(c) < 1.4 * expected,
                "{k} kinds on in {c} of {draws} seeds (uniform: {expected:.0}): {counts:?}"
            );
        }
    }

    #[test]
    fn the_base_picks_what_is_under_test_and_the_draw_keeps_it() {
        let mut b = base();
        b.protocol = crate::node::worker::ProtocolKind::V2;
        b.database = crate::model::db::DbMode::Plain;
        for seed in 0..100 {
            let (c, _) = draw(seed, &b);
            assert_eq!(c.protocol, b.protocol);
            assert_eq!(c.database, b.database);
            assert_eq!(c.on_redis_failure, b.on_redis_failure);
        }
    }

    #[test]
    fn the_long_regime_has_faults_and_handlers_past_the_lock() {
        let base = base();
        let ttl_ms = TTL_S * 1000;
        let long: Vec<SimConfig> = (0..400)
            .map(|s| draw(s, &base))
            .filter(|(_, d)| d.regime == Regime::LongFew)
            .map(|(c, _)| c)
            .collect();
        assert!(long.iter().any(|c| c.faults.pause_ms_max > ttl_ms));
        assert!(long.iter().any(|c| c.faults.down_ms_max > ttl_ms));
        assert!(long.iter().any(|c| c.handler_ms_max > ttl_ms));
        assert!(long.iter().all(|c| c.safety_s > TTL_S));
        for c in (0..2_000).map(|s| draw(s, &base).0) {
            let serial_ms = u64::from(c.events) * u64::from(c.copies) * c.handler_ms_max;
            let publish_ms =
                u64::from(c.events) * (c.produce_gap_ms_max + c.copy_gap_ms * u64::from(c.copies - 1));
            assert!(
                c.liveness_s_max * 1000 >= 2 * (serial_ms + publish_ms),
                "{}",
                c.to_toml()
            );
        }
    }
}
