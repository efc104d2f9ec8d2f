//! The engine on fake runners: a rule on the config stands in for a run.

use super::*;
use crate::fault::Fault;

fn fp(kinds: &[&str]) -> Fingerprint {
    Fingerprint(kinds.iter().map(|k| k.to_string()).collect())
}

/// A config with a pause on worker-1 at each of `ats` (ms), random faults off.
fn with_pauses(ats: &[u64]) -> SimConfig {
    let mut c = SimConfig::default();
    c.faults.random = false;
    c.schedule = ats
        .iter()
        .map(|&at| {
            ScheduledFault::at(
                at,
                Fault::Pause {
                    node: Some(NodeName::Worker(1)),
                },
                Some(500),
            )
        })
        .collect();
    c
}

fn ats(c: &SimConfig) -> BTreeSet<u64> {
    c.schedule.iter().filter_map(|f| f.at_ms).collect()
}

/// A fake run: fails with `duplicate_effect` when the pauses at 3000 and 7000 ms are both
/// there, with `lost_event` when 3000 and 9000 are there without 7000; passes otherwise.
fn fake(c: &SimConfig) -> Outcome {
    let a = ats(c);
    let kinds: &[&str] = if a.contains(&3000) && a.contains(&7000) {
        &["duplicate_effect"]
    } else if a.contains(&3000) && a.contains(&9000) {
        &["lost_event"]
    } else {
        &[]
    };
    Outcome {
        fingerprint: fp(kinds),
        violating: BTreeSet::new(),
        trace_events: 10 * c.schedule.len() + c.events as usize,
        virtual_us: 0,
        trace_sha256: String::new(),
    }
}

fn shrink_with(
    start: &SimConfig,
    target: &Fingerprint,
    run: &mut dyn FnMut(&SimConfig) -> Outcome,
    budget: Budget,
) -> Result<Shrunk, NotShrunk> {
    shrink(start, target, run, budget, &mut |_| {})
}

/// ddmin takes 12 faults to the two that matter, and each of them is necessary.
#[test]
fn ddmin_finds_a_1_minimal_set() {
    let start = with_pauses(&(0..12).map(|i| i * 1000).collect::<Vec<_>>());
    let target = fp(&["duplicate_effect"]);
    let s = shrink_with(&start, &target, &mut fake, Budget::default()).unwrap();
    assert_eq!(ats(&s.config), BTreeSet::from([3000, 7000]));
    assert_eq!(s.outcome.fingerprint, target);
    assert_eq!(s.stop, Stop::Done);
    assert_eq!(s.necessary, Some(vec![true, true]));
    // The fields that do not matter to the fake shrank to their floor.
    assert!(s.config.schedule.iter().all(|f| f.duration_ms == Some(0)));
    // The safety phase as short as the last fault's time allows.
    assert_eq!(s.config.safety_s, 8);
    assert!(s.runs < 100, "{} runs", s.runs);
}

/// A candidate that fails differently is not accepted, but kept as another finding with its
/// config.
#[test]
fn a_different_failure_is_not_accepted_but_recorded() {
    let start = with_pauses(&[3000, 7000, 9000]);
    let target = fp(&["duplicate_effect"]);
    let mut steps = Vec::new();
    let s = shrink(&start, &target, &mut fake, Budget::default(), &mut |st| {
        steps.push(st.clone())
    })
    .unwrap();
    assert_eq!(ats(&s.config), BTreeSet::from([3000, 7000]));
    assert_eq!(s.others.len(), 1);
    assert_eq!(s.others[0].0, fp(&["lost_event"]));
    assert_eq!(ats(&s.others[0].1), BTreeSet::from([3000, 9000]));
    assert!(steps
        .iter()
        .any(|st| st.tried == Tried::Other(fp(&["lost_event"]))));
    // No step kept a config that fails differently.
    assert_eq!(fake(&s.config).fingerprint, target);
}

/// The budget of runs stops it; the result is the best so far, which still fails the same
/// way, and it says why it stopped.
#[test]
fn the_budget_stops_it_with_the_best_so_far() {
    let start = with_pauses(&(0..12).map(|i| i * 1000).collect::<Vec<_>>());
    let target = fp(&["duplicate_effect"]);
    let budget = Budget {
        max_runs: 9,
        ..Budget::default()
    };
    let mut runs = 0;
    let mut counting = |c: &SimConfig| {
        runs += 1;
        fake(c)
    };
    let s = shrink_with(&start, &target, &mut counting, budget).unwrap();
    assert_eq!(s.stop, Stop::Runs);
    assert_eq!(s.runs, 9);
    assert_eq!(runs, 9);
    assert_eq!(s.necessary, None);
    assert_eq!(fake(&s.config).fingerprint, target);
    assert!(s.config.schedule.len() < 12, "{} faults", s.config.schedule.len());
    let budget = Budget {
        max_time: Duration::ZERO,
        ..Budget::default()
    };
    let s = shrink_with(&start, &target, &mut fake, budget).unwrap();
    assert_eq!((s.stop, s.runs, s.config == start), (Stop::Time, 1, true));
}

/// The start is re-run first: if it does not fail the same way, nothing is shrunk.
#[test]
fn a_start_that_does_not_fail_the_same_way_is_refused() {
    let target = fp(&["duplicate_effect"]);
    let passing = with_pauses(&[3000]);
    assert_eq!(
        shrink_with(&passing, &target, &mut fake, Budget::default()).unwrap_err(),
        NotShrunk::Differs(fp(&[]))
    );
    let other = with_pauses(&[3000, 9000]);
    assert_eq!(
        shrink_with(&other, &target, &mut fake, Budget::default()).unwrap_err(),
        NotShrunk::Differs(fp(&["lost_event"]))
    );
}

/// The same input gives the same shrink, step by step.
#[test]
fn the_same_input_gives_the_same_shrink() {
    let start = with_pauses(&[8000, 3000, 1000, 7000, 9000, 2000]);
    let target = fp(&["duplicate_effect"]);
    let shrink_steps = || {
        let mut steps = Vec::new();
        let s = shrink(&start, &target, &mut fake, Budget::default(), &mut |st| {
            steps.push(st.to_string())
        })
        .unwrap();
        (steps, s.config)
    };
    assert_eq!(shrink_steps(), shrink_steps());
}

/// Events are dropped through `keep_events` (never by redrawing), then `events` is cut to the
/// last one kept; workers go down to the fewest that keep it.
#[test]
fn events_and_workers_shrink_to_what_the_failure_needs() {
    let mut start = with_pauses(&[3000, 7000]);
    start.workers = 4;
    let target = fp(&["duplicate_effect"]);
    let rule = |c: &SimConfig| {
        let keeps = |i: u32| c.keep_events.is_empty() && i < c.events || c.keep_events.contains(&i);
        let mut o = fake(c);
        if !(keeps(4) && keeps(11) && c.workers >= 2) {
            o.fingerprint = fp(&[]);
        }
        o
    };
    let s = shrink_with(&start, &target, &mut { rule }, Budget::default()).unwrap();
    assert_eq!(s.config.keep_events, vec![4, 11]);
    assert_eq!(s.config.events, 12);
    assert_eq!(s.config.workers, 2);
    assert_eq!(Size::of(&s.config).events, 2);
    assert_eq!(s.stop, Stop::Done);
}

/// A worker's faults go with the worker.
#[test]
fn fewer_workers_drop_the_faults_that_name_them() {
    let mut f = with_pauses(&[1]).schedule.remove(0);
    assert!(!names_worker_above(&f, 1));
    f.fault = Fault::Partition {
        node: Some(NodeName::Redis),
        peer: NodeName::Worker(3),
    };
    assert!(names_worker_above(&f, 2));
    assert!(!names_worker_above(&f, 3));
}

#[test]
fn smaller_values_go_towards_the_floor() {
    assert_eq!(smaller(1000.0, 0.0), vec![0.0, 500.0]);
    assert_eq!(smaller(-300.0, 0.0), vec![-0.0, -150.0]);
    assert_eq!(smaller(3.0, 1.0), vec![1.0, 2.0]);
    assert_eq!(smaller(1.0, 1.0), Vec::<f64>::new());
    assert_eq!(smaller(0.5, 0.0), vec![0.0, 0.25]);
    assert_eq!(smaller(0.005, 0.0), Vec::<f64>::new());
}

#[test]
fn ddmin_chunks_cover_the_list_in_order() {
    assert_eq!(split(&[1, 2, 3, 4, 5], 2), vec![vec![1, 2], vec![3, 4, 5]]);
    assert_eq!(split(&[1, 2, 3], 3), vec![vec![1], vec![2], vec![3]]);
}

#[test]
fn steps_name_the_places_they_keep() {
    assert_eq!(places([3, 7]), "#3 #7");
    assert_eq!(places(0..50), "#0..#49");
    assert_eq!(places([1, 2, 4, 8, 16, 32, 64]), "7 places from #1 to #64");
}

/// Taking a worker out drops its faults and renumbers the ones after it.
#[test]
fn a_worker_taken_out_renumbers_the_ones_after_it() {
    let mut f = with_pauses(&[1]).schedule.remove(0);
    f.fault = Fault::Partition {
        node: Some(NodeName::Worker(3)),
        peer: NodeName::Worker(1),
    };
    f.by = Some(NodeName::Worker(3));
    let moved = without_worker(&f, 2).unwrap();
    assert_eq!(
        moved.fault,
        Fault::Partition {
            node: Some(NodeName::Worker(2)),
            peer: NodeName::Worker(1)
        }
    );
    assert_eq!(moved.by, Some(NodeName::Worker(2)));
    assert_eq!(without_worker(&f, 1), None);
    assert_eq!(without_worker(&f, 3), None);
    assert_eq!(without_worker(&f, 4), Some(f.clone()));
}

/// After the shrink, the result's other knobs are tried at other values, within the budget
/// and counted in its runs: the fake depends only on the pauses' times, so every seed and
/// timing holds, and the first pause's time must stay where it is.
#[test]
fn the_knobs_that_could_vary_are_tried_on_the_result() {
    let start = with_pauses(&[1000, 3000, 5000, 7000]);
    let target = fp(&["duplicate_effect"]);
    let mut runs = 0;
    let mut counting = |c: &SimConfig| {
        runs += 1;
        fake(c)
    };
    let s = shrink_with(&start, &target, &mut counting, Budget::default()).unwrap();
    assert_eq!(s.runs, runs);
    let varied = s.varied.clone().unwrap();
    let of = |knob: &str| varied.iter().find(|v| v.knob == knob).cloned().unwrap();
    let seed = of("seed");
    assert_eq!(seed.tried.len(), OTHER_SEEDS as usize);
    assert_eq!(seed.held(), 5);
    assert_eq!(seed.tried[0].0, "43");
    assert!(
        seed.to_string()
            .starts_with("seed = 42: can vary (5 of 5 tried hold): 43 holds"),
        "{seed}"
    );
    assert_eq!(of("handler_ms_max").held(), 2);
    assert_eq!(of("call_timeout_ms").held(), 1);
    // The pause at 3000 ms moved 300 ms either way: both pass.
    let at = of("schedule[0].at_ms");
    assert_eq!(at.held(), 0);
    assert_eq!(
        at.to_string(),
        "schedule[0].at_ms = 3000: none tried holds (0 of 2): 2700 passes, 3300 passes"
    );
    // The result itself is not changed by the variations.
    assert_eq!(ats(&s.config), BTreeSet::from([3000, 7000]));
    // Each variation is a run at most: the list is at most 13 long.
    assert!(variations(&s.config).len() <= 13);

    // With the budget ending during the variations, the ones left are left out.
    let budget = Budget {
        max_runs: s.runs - 3,
        ..Budget::default()
    };
    let short = shrink_with(&start, &target, &mut fake, budget).unwrap();
    assert_eq!(short.stop, Stop::Done);
    assert_eq!(short.runs, budget.max_runs);
    let tried: usize = short.varied.unwrap().iter().map(|v| v.tried.len()).sum();
    let all: usize = varied.iter().map(|v| v.tried.len()).sum();
    assert!(tried < all, "{tried} of {all}");
    // A shrink stopped by its budget varies nothing.
    let budget = Budget {
        max_runs: 9,
        ..Budget::default()
    };
    assert_eq!(
        shrink_with(&start, &target, &mut fake, budget).unwrap().varied,
        None
    );
}
