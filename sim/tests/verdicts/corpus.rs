//! Replays `seeds/corpus.toml`: every seed that once found something gives the verdict its
//! entry records (a fixed bug stays fixed; a demonstration still demonstrates).

use serde::Deserialize;
use sim::check::as_expected;
use sim::run::{self, Verdict};
use sim::scenario;
use sim::scenario::config::Expect;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Corpus {
    seed: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    scenario: String,
    seed: u64,
    found: String,
    expect: Expect,
}

#[test]
fn every_seed_in_the_corpus_gives_its_recorded_verdict() {
    let text = include_str!("../../../seeds/corpus.toml");
    let corpus: Corpus = toml::from_str(text).expect("seeds/corpus.toml parses");
    assert!(!corpus.seed.is_empty());
    for e in &corpus.seed {
        assert!(!e.found.is_empty(), "every entry says what it found");
        let config = scenario::load(&e.scenario).unwrap_or_else(|err| panic!("{err}"));
        let r = run::run(e.seed, &config);
        let expected = e.expect.kinds();
        assert!(
            !matches!(r.verdict, Verdict::Crash(_)) && as_expected(&expected, r.verdict.violations()),
            "corpus seed {} of {} gave {:?}, expected {expected:?}: cargo run -p sim -- --scenario {} --seed {}",
            e.seed,
            e.scenario,
            r.verdict,
            e.scenario,
            e.seed
        );
    }
}
