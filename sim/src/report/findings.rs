//! The findings table: what swarm sweeps find, how often, and which features of a seed's draw
//! trigger or suppress each finding.
//!
//! A [`Tally`] counts, per arm (a protocol and database under test), how many seeds ran, how
//! many had each feature on (a nemesis kind, the regime, copies, ...: see
//! [`crate::scenario::swarm::Drawn::features`]), and for each finding (a violation label as
//! `check::why::labels` writes it, e.g. `duplicate_effect/two_keys`) how many seeds showed it,
//! the first, and how many of those had each feature on. It is a fixed-size sum: it does not
//! grow with the seeds, shards merge by adding, and it is all the statistics need.
//!
//! A feature *triggers* a finding when the finding's seeds have it on more often than seeds in
//! general do, beyond chance: the 95 % Wilson interval of the share of the finding's seeds with
//! the feature on lies wholly above the share of all seeds with it on. It *suppresses* the
//! finding when the interval lies wholly below. (Groce et al., "Help, help, I'm being
//! suppressed!", ISSTA 2013, classify swarm features this way.)

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The report's format version.
pub const FORMAT: u32 = 1;

/// Seeds of several arms, summed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    /// [`FORMAT`].
    pub format: u32,
    /// The swarm base's name.
    pub scenario: String,
    /// The build (`sim --version`).
    pub build: String,
    /// The first seed of the range.
    pub from: u64,
    /// Seeds in the range (of every shard).
    pub count: u64,
    /// The shards summed (`K/N` each); empty: the whole range in one.
    pub shards: Vec<String>,
    /// The feature names, in the order each arm's counts are.
    pub features: Vec<String>,
    /// Each arm's counts, by the arm's name.
    pub arms: BTreeMap<String, ArmTally>,
}

/// One arm's counts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ArmTally {
    /// Seeds run.
    pub seeds: u64,
    /// Seeds with each feature on.
    pub on: Vec<u64>,
    /// Each finding's counts, by its label.
    pub findings: BTreeMap<String, FindingTally>,
}

/// One finding's counts in one arm.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FindingTally {
    /// Seeds that showed it.
    pub seeds: u64,
    /// The lowest of them.
    pub first_seed: u64,
    /// Of them, how many had each feature on.
    pub on: Vec<u64>,
}

impl ArmTally {
    /// Counts one seed: its features (on or off, in the tally's order) and the findings it
    /// showed.
    pub fn add(&mut self, seed: u64, features: &[bool], findings: &[String]) {
        if self.on.is_empty() {
            self.on = vec![0; features.len()];
        }
        assert_eq!(self.on.len(), features.len(), "one feature list per tally");
        self.seeds += 1;
        for (n, &f) in self.on.iter_mut().zip(features) {
            *n += u64::from(f);
        }
        for label in findings {
            let t = self
                .findings
                .entry(label.clone())
                .or_insert_with(|| FindingTally {
                    seeds: 0,
                    first_seed: seed,
                    on: vec![0; features.len()],
                });
            t.seeds += 1;
            t.first_seed = t.first_seed.min(seed);
            for (n, &f) in t.on.iter_mut().zip(features) {
                *n += u64::from(f);
            }
        }
    }

    /// `other`'s counts added to these.
    pub fn merge(&mut self, other: &ArmTally) {
        if self.on.is_empty() {
            self.on = vec![0; other.on.len()];
        }
        self.seeds += other.seeds;
        for (a, b) in self.on.iter_mut().zip(&other.on) {
            *a += b;
        }
        for (label, t) in &other.findings {
            let mine = self
                .findings
                .entry(label.clone())
                .or_insert_with(|| FindingTally {
                    seeds: 0,
                    first_seed: t.first_seed,
                    on: vec![0; t.on.len()],
                });
            mine.seeds += t.seeds;
            mine.first_seed = mine.first_seed.min(t.first_seed);
            for (a, b) in mine.on.iter_mut().zip(&t.on) {
                *a += b;
            }
        }
    }
}

impl Tally {
    /// The shard reports `parts` summed into one; they must be of one build, scenario, range
    /// and feature list, and of distinct shards.
    pub fn merge(parts: &[(String, Tally)]) -> Result<Tally, String> {
        let Some(((_, first), rest)) = parts.split_first() else {
            return Err("no reports to merge".into());
        };
        let mut out = first.clone();
        for (name, t) in rest {
            for (what, a, b) in [
                ("scenario", &first.scenario, &t.scenario),
                ("build", &first.build, &t.build),
            ] {
                if a != b {
                    return Err(format!(
                        "{name}: its {what} is {b:?}, not {a:?} as the first report's"
                    ));
                }
            }
            if (t.from, t.count) != (first.from, first.count) || t.features != first.features {
                return Err(format!(
                    "{name}: another range or feature list than the first report's"
                ));
            }
            if let Some(s) = t.shards.iter().find(|s| out.shards.contains(s)) {
                return Err(format!("{name}: shard {s} is already in the merge"));
            }
            out.shards.extend(t.shards.iter().cloned());
            for (arm, a) in &t.arms {
                out.arms.entry(arm.clone()).or_default().merge(a);
            }
        }
        out.shards.sort();
        Ok(out)
    }
}

/// The 95 % Wilson score interval of `k` successes in `n` trials (`(0, 1)` when `n` is 0).
pub fn wilson(k: u64, n: u64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let z = 1.959_963_984_540_054_f64;
    let (k, n) = (k as f64, n as f64);
    let p = k / n;
    let denom = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denom;
    let half = z * ((p * (1.0 - p) / n) + z * z / (4.0 * n * n)).sqrt() / denom;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// How a feature bears on a finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The finding's seeds have it on more often than all seeds do, beyond chance.
    Trigger,
    /// Less often, beyond chance.
    Suppressor,
    /// Neither, as far as the seeds show.
    Irrelevant,
}

/// A feature's role for one finding, with the share of the finding's seeds that had it on,
/// that share's 95 % interval, and the share of all seeds that had it on.
#[derive(Clone, Debug, PartialEq)]
pub struct Classified {
    /// The feature's name.
    pub feature: String,
    /// Its role.
    pub role: Role,
    /// Of the finding's seeds, the share with the feature on.
    pub share: f64,
    /// Its 95 % Wilson interval.
    pub interval: (f64, f64),
    /// Of all the arm's seeds, the share with the feature on.
    pub base: f64,
}

/// Every feature's role for `finding` in `arm`.
pub fn classify(features: &[String], arm: &ArmTally, finding: &FindingTally) -> Vec<Classified> {
    features
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let base = if arm.seeds == 0 {
                0.0
            } else {
                arm.on[i] as f64 / arm.seeds as f64
            };
            let interval = wilson(finding.on[i], finding.seeds);
            let role = if interval.0 > base {
                Role::Trigger
            } else if interval.1 < base {
                Role::Suppressor
            } else {
                Role::Irrelevant
            };
            Classified {
                feature: name.clone(),
                role,
                share: if finding.seeds == 0 {
                    0.0
                } else {
                    finding.on[i] as f64 / finding.seeds as f64
                },
                interval,
                base,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_intervals_match_the_textbook_values() {
        // 10 of 100: 0.0552 to 0.1744 (Wilson, 95 %).
        let (lo, hi) = wilson(10, 100);
        assert!(
            (lo - 0.0552).abs() < 1e-4 && (hi - 0.1744).abs() < 1e-4,
            "{lo} {hi}"
        );
        let (lo, hi) = wilson(0, 20);
        assert!(lo == 0.0 && (hi - 0.1611).abs() < 1e-4, "{hi}");
        assert_eq!(wilson(0, 0), (0.0, 1.0));
        let (lo, hi) = wilson(20, 20);
        assert!((lo - 0.8389).abs() < 1e-4 && hi == 1.0);
    }

    fn names() -> Vec<String> {
        ["crash", "pause", "clock"].map(String::from).to_vec()
    }

    #[test]
    fn a_feature_always_on_when_found_triggers_one_never_on_suppresses_and_a_coin_is_neither() {
        let mut arm = ArmTally::default();
        // 400 seeds: crash on in even seeds, pause on in odd ones, clock by seed % 4 < 2.
        for seed in 0..400u64 {
            let f = [seed % 2 == 0, seed % 2 == 1, seed % 4 < 2];
            // Found in a third of the seeds with crash on (so never with pause on).
            let found = if f[0] && seed % 3 == 0 {
                vec!["duplicate_effect/crash_before_confirm".to_owned()]
            } else {
                Vec::new()
            };
            arm.add(seed, &f, &found);
        }
        let t = &arm.findings["duplicate_effect/crash_before_confirm"];
        assert_eq!((t.seeds, t.first_seed), (67, 0));
        let roles: Vec<Role> = classify(&names(), &arm, t).iter().map(|c| c.role).collect();
        assert_eq!(roles, [Role::Trigger, Role::Suppressor, Role::Irrelevant]);
    }

    #[test]
    fn shards_sum_to_the_whole_and_a_shard_twice_is_refused() {
        let mut whole = ArmTally::default();
        let (mut a, mut b) = (ArmTally::default(), ArmTally::default());
        for seed in 0..100u64 {
            let f = [seed % 2 == 0, seed % 5 == 0, seed % 7 == 0];
            let found: Vec<String> = (seed % 10 == 3)
                .then(|| "lost_event".to_owned())
                .into_iter()
                .collect();
            whole.add(seed, &f, &found);
            if seed % 2 == 0 { &mut a } else { &mut b }.add(seed, &f, &found);
        }
        let tally = |shard: &str, arm: ArmTally| Tally {
            format: FORMAT,
            scenario: "swarm".into(),
            build: "b".into(),
            from: 0,
            count: 100,
            shards: vec![shard.into()],
            features: names(),
            arms: BTreeMap::from([("v2".to_owned(), arm)]),
        };
        let merged = Tally::merge(&[
            ("b.json".into(), tally("2/2", b)),
            ("a.json".into(), tally("1/2", a.clone())),
        ])
        .unwrap();
        assert_eq!(merged.arms["v2"], whole);
        assert_eq!(merged.shards, ["1/2", "2/2"]);
        let twice = Tally::merge(&[
            ("a.json".into(), tally("1/2", a.clone())),
            ("a2.json".into(), tally("1/2", a)),
        ]);
        assert!(twice.unwrap_err().contains("shard 1/2 is already"));
    }
}
