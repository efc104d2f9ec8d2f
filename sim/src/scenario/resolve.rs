//! What one seed of a scenario runs: the scenario itself, or for a swarm base the seed's draw
//! ([`super::swarm`]); and a run made explicit (its nemesis's faults as `[[schedule]]`
//! entries), which replays the same run. Apart from `config.rs` so the config does not depend
//! on the swarm that draws configs.

use super::config::{ScheduledFault, SimConfig};

impl SimConfig {
    /// This config with the nemesis's decisions of a run made explicit: `drawn` appended to
    /// the schedule, random faults off, and `seed` pinned. Running it gives the same run.
    pub fn with_faults_explicit(&self, seed: u64, drawn: &[ScheduledFault]) -> SimConfig {
        let mut c = self.for_seed(seed);
        c.seed = seed;
        c.schedule.extend(drawn.iter().cloned());
        c.faults.random = false;
        c
    }

    /// What seed `seed` runs: this config, or for a swarm base the seed's draw.
    pub fn for_seed(&self, seed: u64) -> SimConfig {
        if self.swarm {
            super::swarm::draw(seed, self).0
        } else {
            self.clone()
        }
    }
}
