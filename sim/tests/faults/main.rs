//! Faults as the world meets them: every kind happens at random and heals on time from every
//! trigger ([`kinds`], [`heals`]), the database's own fault ([`db`]), Kafka under rebalances and
//! zombies ([`kafka`]), the lock overlaps and fencing tokens of Redis crashes ([`fences`]), and the
//! protocols side by side: `python-v2` and mixed fleets ([`protocols`]).

mod db;
mod fences;
mod hazards;
mod heals;
mod kafka;
mod kinds;
mod protocols;
mod resend;
