//! Wall time and timers, behind a trait so the simulator can give each node its own clock.
//!
//! The protocols read wall time for the records they write (v2 also uses it to judge a lock
//! stale, which is why skewed clocks matter) and sleep between lease renewals. Nothing else in
//! the library knows what time it is.

use crate::store::BoxFuture;
use std::time::Duration;

/// A source of wall time and a way to wait.
pub trait Clock: Send + Sync {
    /// Microseconds since the Unix epoch, as this host believes.
    fn now_unix_us(&self) -> i64;
    /// A future that completes after `duration` has passed on this host.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;
}

impl<C: Clock + ?Sized> Clock for std::sync::Arc<C> {
    fn now_unix_us(&self) -> i64 {
        (**self).now_unix_us()
    }
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        (**self).sleep(duration)
    }
}

/// Seconds since the epoch as a float, the way Python's `time.time()` reports them.
pub fn unix_seconds(unix_us: i64) -> f64 {
    unix_us as f64 / 1e6
}

/// The host's clock with tokio's timers (for production use with the real Redis backend).
#[cfg(feature = "redis")]
#[derive(Clone, Copy, Debug, Default)]
pub struct TokioClock;

#[cfg(feature = "redis")]
impl Clock for TokioClock {
    fn now_unix_us(&self) -> i64 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        i64::try_from(now.as_micros()).unwrap_or(i64::MAX)
    }
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}
