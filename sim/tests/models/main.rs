//! The models against the real thing: the Redis model command for command against a real
//! `redis-server` ([`redis_differential`]), and the real-Redis tests honest about when they
//! did not run ([`real_redis_ignored`]).

mod real_redis_ignored;
mod redis_differential;
