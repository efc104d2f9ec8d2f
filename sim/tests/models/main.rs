//! The models against the real thing: the Redis model command for command against a real
//! `redis-server` ([`redis_differential`]), and the real-Redis tests honest about when they
//! did not run ([`real_redis_ignored`]); and the library's protocols on the Redis model where
//! a real server would take too long ([`long_leases`]: leases of 15 and 30 minutes).

mod long_leases;
mod real_redis_ignored;
mod redis_differential;
