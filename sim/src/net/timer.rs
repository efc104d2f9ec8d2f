//! Sleeps on madsim's clock that set their timer once.
//!
//! madsim's `Sleep` adds a timer to the runtime's timer heap every time it is polled, and a
//! task is polled whenever anything wakes it: a sleep polled again by a wake-up meant for
//! something else (a reply landing, a call's deadline left over from an earlier call) added
//! one more timer for the same deadline, later popped from the heap for nothing. The timers
//! were a sixth of a run's instructions. [`OnceSleep`] polls madsim's sleep again only when
//! its deadline has passed or the task's waker changed, so the task is woken at the same
//! instants as before, by one timer.

use madsim::time::{Instant, Sleep};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// A madsim sleep that sets its timer once per waker (see the module documentation).
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct OnceSleep {
    sleep: Sleep,
    /// The waker the timer was set for, once it is set.
    armed: Option<Waker>,
}

impl OnceSleep {
    /// Whether the deadline has passed.
    pub fn is_elapsed(&self) -> bool {
        self.sleep.is_elapsed()
    }
}

impl Future for OnceSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let set_for_this_task = this.armed.as_ref().is_some_and(|w| w.will_wake(cx.waker()));
        if set_for_this_task && !this.sleep.is_elapsed() {
            return Poll::Pending;
        }
        match Pin::new(&mut this.sleep).poll(cx) {
            Poll::Ready(()) => Poll::Ready(()),
            Poll::Pending => {
                this.armed = Some(cx.waker().clone());
                Poll::Pending
            }
        }
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

/// `madsim::time::timeout(limit, future)`: the future's output, or `Err(())` once `limit` has
/// passed; the future is polled first, as madsim's does, so a future ready at the deadline wins.
/// The deadline's timer is set once (madsim's polls its sleep at every wake-up).
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
}
