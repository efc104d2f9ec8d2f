//! When a Redis command is sent again after its connection failed, and when that is safe.
//!
//! A connection can fail a command two ways, and they call for different answers:
//!
//! - **It never reached the server** ([`StoreError::Unavailable`]: refused, or written on a
//!   connection already broken, e.g. the first command after a Redis restart). Nothing ran, so
//!   any command is sent again, after the client reconnects, until the command's deadline (the
//!   store's timeout, counted from the first attempt) has passed.
//! - **It was sent and its reply never came** ([`StoreError::Timeout`],
//!   [`StoreError::ConnectionLost`]): it may have run. Only a command whose second run answers
//!   what the first would have is sent again ([`Command::safe_to_resend`]): the `fenced`
//!   scripts, which are owner-checked (a confirm that already ran finds its own
//!   completed record and answers confirmed; an acquire that already ran finds its own lease
//!   and answers acquired with that lease's token). Such a command is sent again within its
//!   deadline, and once more after a timeout, which uses the deadline up by itself. v2's writes
//!   are never sent again after a lost reply, as the Python client does not: a `SET NX` sent
//!   again finds the caller's own key and reports the race lost.
//!
//! Server answers ([`StoreError::Reply`], [`StoreError::Protocol`]) are never retried: the
//! server spoke. [`Attempts`] is the pure decision; [`exec`] drives it on any runtime, so the
//! real store (tokio) and the simulator's (virtual time) follow one policy.

use crate::store::{Command, Reply, StoreError};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// The first wait before a command is sent again; each further one doubles, up to
/// [`BACKOFF_MAX`]. Short: a refused connection is usually a restart that is seconds long, and
/// the deadline bounds the whole.
pub const BACKOFF_FIRST: Duration = Duration::from_millis(10);

/// The longest wait between two attempts.
pub const BACKOFF_MAX: Duration = Duration::from_millis(200);

/// At most this many attempts per command, whatever the clock says (every loop is bounded).
pub const MAX_ATTEMPTS: u32 = 16;

/// The shortest wait for a reply an attempt is given, even when the deadline is nearly spent.
const MIN_ATTEMPT: Duration = Duration::from_millis(1);

/// The attempts of one command: what to do after each failure.
#[derive(Clone, Debug)]
pub struct Attempts {
    timeout: Duration,
    resend_safe: bool,
    tries: u32,
    /// The one attempt past the deadline, after a lost reply, has been given.
    extra: bool,
}

impl Attempts {
    /// The attempts of `command`, whose deadline is `timeout` after its first attempt.
    pub fn new(command: &Command, timeout: Duration) -> Self {
        Attempts {
            timeout,
            resend_safe: command.safe_to_resend(),
            tries: 1,
            extra: false,
        }
    }

    /// How long the next attempt, starting `elapsed` after the first, waits for its reply: what
    /// is left of the deadline, or a whole timeout for the one attempt past it.
    pub fn attempt_timeout(&self, elapsed: Duration) -> Duration {
        if self.extra {
            self.timeout
        } else {
            self.timeout.saturating_sub(elapsed).max(MIN_ATTEMPT)
        }
    }

    /// After an attempt failed with `error`, `elapsed` after the first began: how long to wait
    /// before sending the command again, or `None` to give up with `error`.
    pub fn after(&mut self, error: &StoreError, elapsed: Duration) -> Option<Duration> {
        let may_resend = match error {
            StoreError::Unavailable(_) => true,
            StoreError::Timeout | StoreError::ConnectionLost(_) => self.resend_safe,
            StoreError::Reply(_) | StoreError::Protocol(_) => false,
        };
        if !may_resend || self.tries >= MAX_ATTEMPTS || self.extra {
            return None;
        }
        let wait = BACKOFF_FIRST
            .saturating_mul(1 << (self.tries - 1).min(5))
            .min(BACKOFF_MAX);
        self.tries += 1;
        if elapsed + wait < self.timeout {
            return Some(wait);
        }
        if error.may_have_run() {
            // A timeout spent the deadline by itself: a command that is safe to resend gets
            // one more whole attempt, so a confirm whose reply was lost still lands.
            self.extra = true;
            return Some(wait);
        }
        None
    }
}

/// Runs `command` with `attempt` (one send, given how long to wait for the reply), sending it
/// again as [`Attempts`] decides. `elapsed` reads the time since the call began and `sleep`
/// waits, both on the caller's runtime. Each attempt gets the command shared (`Arc`), so that
/// sending it once copies nothing.
pub async fn exec<A, AF, S, SF>(
    command: Command,
    timeout: Duration,
    mut attempt: A,
    elapsed: impl Fn() -> Duration,
    mut sleep: S,
) -> Result<Reply, StoreError>
where
    A: FnMut(Arc<Command>, Duration) -> AF,
    AF: Future<Output = Result<Reply, StoreError>>,
    S: FnMut(Duration) -> SF,
    SF: Future<Output = ()>,
{
    let mut attempts = Attempts::new(&command, timeout);
    // Shared with each attempt, not copied: most commands are sent once.
    let command = Arc::new(command);
    loop {
        let budget = attempts.attempt_timeout(elapsed());
        match attempt(Arc::clone(&command), budget).await {
            Ok(reply) => return Ok(reply),
            Err(error) => match attempts.after(&error, elapsed()) {
                Some(wait) => sleep(wait).await,
                None => return Err(error),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Script;

    const T: Duration = Duration::from_millis(500);

    fn set_nx() -> Command {
        Command::Set {
            key: "k".into(),
            value: b"v".to_vec(),
            condition: crate::store::SetCondition::Nx,
            expiry: None,
        }
    }

    fn confirm() -> Command {
        Command::Script(Script::Confirm {
            key: "k".into(),
            lease: b", \"owner\": \"o\", \"fence\": 1}".to_vec(),
            value: b"{}".to_vec(),
            ttl_s: 60,
        })
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_command_that_never_reached_the_server_is_sent_again_until_its_deadline() {
        for cmd in [set_nx(), confirm()] {
            let mut a = Attempts::new(&cmd, T);
            let refused = StoreError::Unavailable("connection refused".into());
            let waits: Vec<_> = std::iter::from_fn(|| a.after(&refused, ms(0))).take(4).collect();
            assert_eq!(waits, [ms(10), ms(20), ms(40), ms(80)]);
            let mut a = Attempts::new(&cmd, T);
            assert_eq!(a.after(&refused, ms(489)), Some(ms(10)));
            assert_eq!(a.after(&refused, ms(490)), None, "the deadline is spent");
            assert_eq!(a.attempt_timeout(ms(400)), ms(100), "what is left of it");
        }
    }

    #[test]
    fn after_a_lost_reply_only_a_command_safe_to_resend_is_sent_again() {
        for lost in [StoreError::Timeout, StoreError::ConnectionLost("reset".into())] {
            assert_eq!(
                Attempts::new(&set_nx(), T).after(&lost, ms(5)),
                None,
                "v2's SET NX"
            );
            let mut a = Attempts::new(&confirm(), T);
            assert_eq!(a.after(&lost, ms(5)), Some(ms(10)));
        }
        // A timeout spends the deadline; a safe command gets one more whole attempt, no more.
        let mut a = Attempts::new(&confirm(), T);
        assert_eq!(a.after(&StoreError::Timeout, T), Some(ms(10)));
        assert_eq!(a.attempt_timeout(T + ms(10)), T);
        assert_eq!(a.after(&StoreError::Timeout, T * 2), None);
        assert_eq!(a.after(&StoreError::Unavailable("refused".into()), ms(0)), None);
    }

    #[test]
    fn a_server_answer_is_never_retried_and_attempts_are_bounded() {
        let mut a = Attempts::new(&confirm(), T);
        assert_eq!(a.after(&StoreError::Reply("ERR x".into()), ms(0)), None);
        assert_eq!(a.after(&StoreError::Protocol("?".into()), ms(0)), None);
        let mut a = Attempts::new(&confirm(), Duration::from_secs(3600));
        let refused = StoreError::Unavailable("refused".into());
        let n = std::iter::from_fn(|| a.after(&refused, ms(0))).count();
        assert_eq!(n as u32, MAX_ATTEMPTS - 1);
    }

    #[test]
    fn exec_sends_again_and_returns_the_first_reply() {
        use std::cell::Cell;
        let sent = Cell::new(0);
        let clock = Cell::new(Duration::ZERO);
        let reply = block_on(exec(
            confirm(),
            T,
            |_, budget| {
                sent.set(sent.get() + 1);
                assert!(budget <= T);
                let r = match sent.get() {
                    1 => Err(StoreError::Unavailable("broken pipe".into())),
                    2 => Err(StoreError::ConnectionLost("reset".into())),
                    _ => Ok(Reply::Int(1)),
                };
                std::future::ready(r)
            },
            || clock.get(),
            |d| {
                clock.set(clock.get() + d);
                std::future::ready(())
            },
        ));
        assert_eq!(reply, Ok(Reply::Int(1)));
        assert_eq!(sent.get(), 3);
        assert_eq!(clock.get(), ms(30));
    }

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }
}
