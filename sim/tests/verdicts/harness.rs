//! The harness as a library: a user's handler really runs in the workers, a user's checker
//! judges beside the built-in ones, and a seed on the caller's own madsim runtime gives the
//! same history as on a runtime of its own.

use sim::{Checker, Cx, Handler, HandlerFuture, Input, Severity, Sim, Violation};

/// Works and never commits: every event is lost.
struct NeverCommits;

impl Handler for NeverCommits {
    fn handle<'a>(&'a self, cx: &'a Cx<'a>) -> HandlerFuture<'a> {
        Box::pin(async move {
            cx.work().await?;
            cx.record("skipped", "no commit");
            cx.confirm().await.ok();
            Ok(())
        })
    }
}

/// Fires once per `skipped` record.
struct NoSkips;

impl Checker for NoSkips {
    fn kinds(&self) -> &[&'static str] {
        &["skipped"]
    }
    fn check(&self, input: &Input<'_>) -> Vec<Violation> {
        input
            .trace
            .iter()
            .enumerate()
            .filter_map(|(i, e)| match e.typed() {
                sim::Typed::Custom { event_id, name, .. } if name == "skipped" => Some(Violation {
                    kind: "skipped",
                    severity: Severity::Correctness,
                    event_id: event_id.clone(),
                    detail: "skipped".into(),
                    first_event: Some(i),
                }),
                _ => None,
            })
            .collect()
    }
}

#[test]
fn a_users_handler_runs_in_every_worker_and_a_users_checker_judges_it() {
    let sim = Sim::new("duplicate-detection").unwrap();
    assert!(sim.run(1).verdict.is_pass(), "the built-in handler passes");
    let r = sim.clone().handler(NeverCommits).run(1);
    let kinds: Vec<&str> = r.verdict.violations().iter().map(|v| v.kind).collect();
    // The built-in checkers see it: nothing applied, and a completed record with no effect.
    assert_eq!(kinds, ["lost_event", "confirm_without_effect"], "{:?}", r.verdict);
    assert_eq!(r.applied, 0);
    let never = sim.clone().handler(NeverCommits);
    let failure = never.failure(&never.run(1)).expect("it fails");
    assert!(failure.shows("lost_event") && failure.why.len() == failure.violations().len());
    assert!(sim.failure(&sim.run(1)).is_none(), "a pass is no failure");
    let fail_closed = sim
        .clone()
        .configure(|c| c.on_redis_failure = sim::config::FailurePolicyKind::FailClosed);
    assert!(fail_closed.run(1).verdict.is_pass());
    let r = sim.handler(NeverCommits).checker(NoSkips).run(1);
    let kinds: Vec<&str> = r.verdict.violations().iter().map(|v| v.kind).collect();
    assert!(
        kinds.contains(&"skipped") && kinds.contains(&"lost_event"),
        "{kinds:?}"
    );
    assert_eq!(r.verdict.name(), "correctness");
}

#[test]
fn a_seed_on_the_callers_runtime_is_the_seed_on_its_own() {
    let sim = Sim::new("default").unwrap();
    for seed in [3, 8] {
        let own = sim.run(seed);
        let sim2 = sim.clone();
        // A runtime seeded as `run` seeds its own, driven by the caller (a `#[madsim::test]`
        // builds one the same way from MADSIM_TEST_SEED).
        let current = std::thread::spawn(move || {
            let rt = madsim::runtime::Runtime::with_seed_and_config(seed, madsim::Config::default());
            rt.block_on(async move { sim2.run_on_current(seed).await })
        })
        .join()
        .unwrap();
        assert_eq!(current.fingerprint(), own.fingerprint(), "seed {seed}");
        assert_eq!(current.verdict, own.verdict);
    }
}

/// Emails, reaches a point of its own between the email and the commit, then commits.
struct EmailsThenCommits;

impl Handler for EmailsThenCommits {
    fn handle<'a>(&'a self, cx: &'a Cx<'a>) -> HandlerFuture<'a> {
        Box::pin(async move {
            cx.work().await?;
            cx.record("email_sent", "");
            cx.point("after_email").await;
            cx.commit().await?;
            cx.confirm().await.ok();
            Ok(())
        })
    }
    fn points(&self) -> &[&'static str] {
        &["after_email"]
    }
}

/// `duplicate-detection` with `EmailsThenCommits` and one `[[schedule]]` entry.
fn with_entry(entry: &str) -> Sim {
    let entry: sim::internal::fault::schedule::ScheduledFault = toml::from_str(entry).unwrap();
    Sim::new("duplicate-detection")
        .unwrap()
        .handler(EmailsThenCommits)
        .configure(|c| c.schedule.push(entry))
}

/// The crashes of a run at the point `name`.
fn crashes_at(r: &sim::RunResult, name: &str) -> usize {
    r.events
        .iter()
        .filter(|e| matches!(e.typed(), sim::Typed::Fault { point: Some(p), .. } if p.name() == name))
        .count()
}

#[test]
fn a_handlers_own_fault_point_is_crashed_at_by_the_schedule_and_by_the_nemesis() {
    let sim = with_entry("point = \"after_email\"\nfault = \"crash\"\nduration_ms = 1000");
    let r = sim.run(1);
    assert_eq!(crashes_at(&r, "after_email"), 1, "{:?}", r.verdict);
    // The nemesis arms the handler's point among the built-in ones.
    let sim = Sim::new("default").unwrap().handler(EmailsThenCommits).jobs(2);
    let crashed: usize = (0..20)
        .map(|seed| crashes_at(&sim.run(seed), "after_email"))
        .sum();
    assert!(crashed > 0, "no nemesis crash at after_email in 20 seeds");
}

#[test]
fn a_scheduled_point_no_handler_reaches_is_refused_not_passed() {
    let sim = with_entry("point = \"after_emial\"\nfault = \"crash\"");
    let r = sim.run(1);
    let sim::Verdict::Crash(why) = &r.verdict else {
        panic!("a typo'd point would never fire: {:?}", r.verdict)
    };
    assert!(
        why.contains("`schedule[0].point` = \"after_emial\": no such fault point")
            && why.contains("[\"after_email\"]"),
        "{why}"
    );
}

#[test]
fn a_run_inside_a_simulation_says_to_run_on_the_current_runtime() {
    let sim = Sim::new("duplicate-detection").unwrap();
    let panicked = std::thread::spawn(move || {
        let rt = madsim::runtime::Runtime::with_seed_and_config(1, madsim::Config::default());
        rt.block_on(async move { std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sim.run(1))) })
    })
    .join()
    .unwrap()
    .expect_err("a thread cannot start inside a simulation");
    let message = panicked
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panicked.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    assert!(message.contains("Sim::run_on_current(seed).await"), "{message}");
}

#[test]
fn the_story_of_a_users_violation_names_the_crash() {
    let sim = with_entry("point = \"after_email\"\nfault = \"crash\"\nduration_ms = 1000");
    let r = sim.run(1);
    let event = r
        .events
        .iter()
        .find_map(|e| match e.typed() {
            sim::Typed::Custom { event_id, .. } => Some(event_id.clone()),
            _ => None,
        })
        .unwrap();
    let story = sim::internal::harness::story(&r.events, &event);
    assert!(
        story.contains("its worker crashed at") && story.contains("(after_email)"),
        "{story}"
    );
}

#[test]
fn a_shrink_keeps_what_the_users_predicate_looks_for() {
    let sim = Sim::new("canary").unwrap();
    let seed = sim.config().seed;
    let err = sim.shrink_where(seed, |r| r.verdict.is_pass()).unwrap_err();
    assert!(err.contains("does not show what `keep` looks for"), "{err}");
    // By its kinds, the canary's repeated effect needs one event.
    let by_kind = sim.explain(&sim.shrink(seed).unwrap());
    assert_eq!(by_kind.size.events, 1, "{by_kind}");
    // A predicate that wants a repeated effect among at least three applied events: no
    // smaller run that breaks it is accepted, though each still fails the same way.
    let keep = |r: &sim::RunResult| r.duplicates > 0 && r.applied >= 3;
    let shrunk = sim.shrink_where(seed, keep).unwrap();
    let r = Sim::from_config(shrunk.config.clone()).run(shrunk.config.seed);
    assert!(keep(&r), "the shrunk run still shows it: applied={}", r.applied);
    let kept = sim.explain(&shrunk);
    assert!(kept.size.events >= 3 && kept.size.events <= 5, "{kept}");
}
