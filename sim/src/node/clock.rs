//! Per-node wall clocks on top of madsim's single virtual clock.
//!
//! A node's wall time is a fixed epoch plus virtual time plus the node's own offset, which the
//! nemesis skews or jumps. The library reads time only through [`idempotency::clock::Clock`], and
//! the Redis node expires keys by its own clock, as a real server does.

use crate::trace::RunClock;
use idempotency::clock::Clock;
use idempotency::store::BoxFuture;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Wall time at virtual time zero: 2025-11-28T07:33:20Z, fixed so traces do not depend on the
/// host or madsim's seeded calendar.
pub const EPOCH_UNIX_US: i64 = 1_764_315_200_000_000;

/// One host's wall clock. Clones share the offset (the host keeps its clock across restarts).
#[derive(Clone, Default)]
pub struct NodeClock {
    offset_us: Arc<AtomicI64>,
    /// The run's virtual clock (the trace's: one handle for every reading).
    run: Arc<RunClock>,
}

impl std::fmt::Debug for NodeClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeClock")
            .field("offset_us", &self.offset_us())
            .finish()
    }
}

impl NodeClock {
    /// A clock at offset zero on the run's virtual clock `run`.
    pub fn new(run: Arc<RunClock>) -> Self {
        NodeClock {
            offset_us: Arc::default(),
            run,
        }
    }

    /// The clock's offset from true (virtual) time.
    pub fn offset_us(&self) -> i64 {
        self.offset_us.load(Ordering::Relaxed)
    }

    /// Sets the offset from true time (a skew, or a jump when it changes at once).
    pub fn set_offset_us(&self, offset_us: i64) {
        self.offset_us.store(offset_us, Ordering::Relaxed);
    }
}

impl Clock for NodeClock {
    fn now_unix_us(&self) -> i64 {
        EPOCH_UNIX_US + self.run.now_us() as i64 + self.offset_us()
    }
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(crate::net::timer::sleep(duration))
    }
}
