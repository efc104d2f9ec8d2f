//! Sleeps on madsim's clock that set their timer once, and whose timer wakes nobody once they
//! are dropped.
//!
//! madsim's `Sleep` adds a timer to the runtime's timer heap every time it is polled, and a
//! task is polled whenever anything wakes it: a sleep polled again by a wake-up meant for
//! something else (a reply landing, a call's deadline left over from an earlier call) added
//! one more timer for the same deadline, later popped from the heap for nothing. The timers
//! were a sixth of a run's instructions. [`OnceSleep`] polls madsim's sleep again only when
//! its deadline has passed or the task's waker changed, so the task is woken at the same
//! instants as before, by one timer.
//!
//! madsim's timers cannot be taken back out of its heap either: a call's deadline, left
//! behind when the reply came in time, still fired and polled the caller's whole task again,
//! for nothing (about one poll in six of a default seed). A timer here wakes its task through
//! a [`WakeAt`], which dropping disarms, so a dropped sleep's timer pops and wakes no one.
//!
//! [`WakeAt`] also lets one task set a timer for another: the transport sets the caller's
//! wake-up for the instant its reply lands, as the server answers, so the caller is polled
//! once, at that instant, instead of once to hear of the reply and again when it lands.

use madsim::time::{Instant, Sleep};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

/// Passes a timer's wake-up on to a task's waker until it is disarmed (a flag, not a lock:
/// each call arms one and disarms one).
struct Relay {
    waker: Waker,
    disarmed: AtomicBool,
}

impl Relay {
    fn disarm(&self) {
        self.disarmed.store(true, Ordering::Relaxed);
    }
}

impl Wake for Relay {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // A timer fires once, so the flag is read once: a relay wakes its task at most once.
        if !self.disarmed.swap(true, Ordering::Relaxed) {
            self.waker.wake_by_ref();
        }
    }
}

/// A timer on madsim's clock that wakes one waker at a deadline, unless dropped first.
pub struct WakeAt {
    relay: Arc<Relay>,
    /// The sleep whose timer it set (madsim's clock read through it costs less than
    /// `Instant::now`, which madsim answers by intercepting `clock_gettime`).
    sleep: Sleep,
}

impl WakeAt {
    /// Sets a timer on the clock of `time` that wakes `waker` at `deadline` (at least a
    /// millisecond from now, as every madsim sleep). `None` if the deadline has passed
    /// already: nothing to wait for.
    pub fn on(time: &madsim::time::TimeHandle, deadline: Instant, waker: &Waker) -> Option<WakeAt> {
        let mut sleep = time.sleep_until(deadline);
        let relay = arm(&mut sleep, waker)?;
        Some(WakeAt { relay, sleep })
    }

    /// When it fires: the deadline asked for, or one millisecond from when it was set if
    /// that is later (madsim's least sleep).
    pub fn deadline(&self) -> Instant {
        self.sleep.deadline()
    }

    /// Whether its deadline has passed.
    pub fn is_elapsed(&self) -> bool {
        self.sleep.is_elapsed()
    }
}

impl Drop for WakeAt {
    fn drop(&mut self) {
        self.relay.disarm();
    }
}

/// Sets `sleep`'s timer to wake `waker` through a relay that can be disarmed; `None` if its
/// deadline has passed.
fn arm(sleep: &mut Sleep, waker: &Waker) -> Option<Arc<Relay>> {
    arm_with(sleep, waker, None)
}

/// [`arm`], through `spare` if no timer holds it any more (its timer fired, or never was
/// set): a relay no one else holds can wake nobody but whoever arms it next, so it is set
/// for `waker` again instead of a new one allocated.
fn arm_with(sleep: &mut Sleep, waker: &Waker, spare: Option<Arc<Relay>>) -> Option<Arc<Relay>> {
    let reused = spare.and_then(|mut relay| {
        let r = Arc::get_mut(&mut relay)?;
        *r.disarmed.get_mut() = false;
        if !r.waker.will_wake(waker) {
            r.waker = waker.clone();
        }
        Some(relay)
    });
    let relay = reused.unwrap_or_else(|| {
        Arc::new(Relay {
            waker: waker.clone(),
            disarmed: AtomicBool::new(false),
        })
    });
    let relay_waker = Waker::from(relay.clone());
    match Pin::new(sleep).poll(&mut Context::from_waker(&relay_waker)) {
        Poll::Ready(()) => None,
        Poll::Pending => Some(relay),
    }
}

/// A madsim sleep that sets its timer once per waker and disarms it when dropped (see the
/// module documentation).
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct OnceSleep {
    sleep: Sleep,
    /// The relay of the timer set, once it is set.
    armed: Option<Arc<Relay>>,
}

impl OnceSleep {
    /// Whether the deadline has passed.
    pub fn is_elapsed(&self) -> bool {
        self.sleep.is_elapsed()
    }

    /// When it ends.
    pub fn deadline(&self) -> Instant {
        self.sleep.deadline()
    }

    fn disarm(&mut self) {
        if let Some(relay) = &self.armed {
            relay.disarm();
        }
    }

    /// Starts the sleep again, to end at `deadline` (at least a millisecond from now, as
    /// madsim's `sleep_until`): the same sleep, and its relay once its timer has fired, serve
    /// again, where a new sleep would copy the runtime's handle and allocate a relay.
    pub fn restart_until(&mut self, deadline: Instant, now: Instant) {
        self.disarm();
        Pin::new(&mut self.sleep).reset(deadline.max(now + Duration::from_millis(1)));
    }
}

impl Drop for OnceSleep {
    fn drop(&mut self) {
        self.disarm();
    }
}

impl Future for OnceSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        if this.sleep.is_elapsed() {
            this.disarm();
            return Poll::Ready(());
        }
        let set_for_this_task = this
            .armed
            .as_ref()
            .is_some_and(|r| !r.disarmed.load(Ordering::Relaxed) && r.waker.will_wake(cx.waker()));
        if set_for_this_task {
            return Poll::Pending;
        }
        this.disarm();
        this.armed = arm_with(&mut this.sleep, cx.waker(), this.armed.take());
        assert!(
            this.armed.is_some(),
            "a sleep whose deadline has not passed sets a timer"
        );
        Poll::Pending
    }
}

/// `madsim::time::sleep(duration)`, setting its timer once.
pub fn sleep(duration: Duration) -> OnceSleep {
    OnceSleep {
        sleep: madsim::time::sleep(duration),
        armed: None,
    }
}

/// `madsim::time::sleep_until(deadline)`, setting its timer once.
pub fn sleep_until(deadline: Instant) -> OnceSleep {
    OnceSleep {
        sleep: madsim::time::sleep_until(deadline),
        armed: None,
    }
}

/// The run's virtual clock, read through a handle kept from the first reading inside the
/// runtime: madsim's free functions (`TimeHandle::current`, `sleep`, the `clock_gettime` hook
/// behind `Instant::now`) look the runtime up and copy its handle at every call, which cost more
/// than the reading itself (a few percent of a run, at one reading per event and per request and
/// two sleeps per call). A run belongs to one runtime, so the handle kept is the runtime's for
/// the whole life of whatever keeps it (the trace, the nodes' clocks, the network).
#[derive(Default)]
pub struct RunClock {
    time: std::sync::OnceLock<madsim::time::TimeHandle>,
}

impl RunClock {
    /// The runtime's time handle: the one kept, or the current runtime's, kept from now on
    /// (`None` outside a runtime).
    pub fn handle(&self) -> Option<&madsim::time::TimeHandle> {
        if let Some(time) = self.time.get() {
            return Some(time);
        }
        let time = madsim::time::TimeHandle::try_current()?;
        Some(self.time.get_or_init(|| time))
    }

    /// Virtual microseconds since the run started (0 outside a simulation, as
    /// `crate::trace::now_us`).
    pub fn now_us(&self) -> u64 {
        self.handle().map_or(0, |time| time.elapsed().as_micros() as u64)
    }

    /// [`sleep`] on the kept handle.
    pub fn sleep(&self, duration: Duration) -> OnceSleep {
        match self.handle() {
            Some(time) => OnceSleep {
                sleep: time.sleep(duration),
                armed: None,
            },
            None => sleep(duration),
        }
    }

    /// The virtual instant now (outside a runtime, the real one).
    pub fn now_instant(&self) -> Instant {
        self.handle().map_or_else(Instant::now, |time| time.now_instant())
    }

    /// A sleep that ends at `deadline` exactly, even one less than madsim's least sleep (a
    /// millisecond) from now: for a deadline fixed earlier, when `sleep_until` would have
    /// given exactly it (one already past ends at the first poll).
    pub fn sleep_exactly_until(&self, deadline: Instant) -> OnceSleep {
        let mut s = self.sleep_until(deadline);
        Pin::new(&mut s.sleep).reset(deadline);
        s
    }

    /// [`sleep_until`] on the kept handle.
    pub fn sleep_until(&self, deadline: Instant) -> OnceSleep {
        match self.handle() {
            Some(time) => OnceSleep {
                sleep: time.sleep_until(deadline),
                armed: None,
            },
            None => sleep_until(deadline),
        }
    }
}

/// `madsim::time::timeout(limit, future)`: the future's output, or `Err(())` once `limit` has
/// passed; the future is polled first, as madsim's does, so a future ready at the deadline wins.
/// The deadline's timer is set once (madsim's polls its sleep at every wake-up), and wakes
/// nobody once the future is done.
pub async fn timeout<F: Future>(limit: Duration, future: F) -> Result<F::Output, ()> {
    let mut future = std::pin::pin!(future);
    let mut deadline = sleep(limit);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(out) = future.as_mut().poll(cx) {
            return Poll::Ready(Ok(out));
        }
        Pin::new(&mut deadline).poll(cx).map(|()| Err(()))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sleep polled again and again by wake-ups meant for other things still ends at its
    /// deadline, and a timeout lets a future that is ready in time through and stops one
    /// that is not.
    #[test]
    fn once_sleeps_end_at_their_deadline() {
        let rt = madsim::runtime::Runtime::with_seed_and_config(1, madsim::Config::default());
        rt.block_on(async {
            let start = Instant::now();
            let mut s = std::pin::pin!(sleep(Duration::from_millis(50)));
            let mut polls = 0;
            std::future::poll_fn(|cx| {
                polls += 1;
                let p = s.as_mut().poll(cx);
                if p.is_pending() && polls < 5 {
                    cx.waker().wake_by_ref(); // a wake-up meant for something else
                }
                p
            })
            .await;
            assert_eq!(start.elapsed().as_millis(), 50);
            assert!(polls >= 5, "polled {polls} times");
            assert_eq!(
                timeout(Duration::from_millis(10), sleep(Duration::from_millis(5))).await,
                Ok(())
            );
            assert_eq!(
                timeout(Duration::from_millis(10), sleep(Duration::from_millis(20))).await,
                Err(())
            );
            assert_eq!(start.elapsed().as_millis(), 65); // 50, then 5, then the 10 ms limit
        });
    }

    /// A sleep started again after it ended ends at its new deadline, or a millisecond from
    /// the restart if that is later (as a new `sleep_until` would).
    #[test]
    fn a_restarted_sleep_ends_at_its_new_deadline() {
        let rt = madsim::runtime::Runtime::with_seed_and_config(1, madsim::Config::default());
        rt.block_on(async {
            let start = Instant::now();
            let mut s = sleep(Duration::from_millis(5));
            (&mut s).await;
            s.restart_until(start + Duration::from_millis(20), Instant::now());
            (&mut s).await;
            assert_eq!(start.elapsed().as_millis(), 20);
            // A deadline already past: madsim's least sleep, a millisecond.
            s.restart_until(start, Instant::now());
            (&mut s).await;
            assert_eq!(start.elapsed().as_millis(), 21);
        });
    }
}
