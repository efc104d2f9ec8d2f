//! The seam where a business handler plugs into a simulated worker: the [`Handler`] trait and
//! the context ([`Cx`]) each call gets.
//!
//! The worker runs every delivery through the `idempotency` library; when the library hands
//! the delivery to the handler (under its lock, or unprotected), the worker traces the start,
//! calls [`Handler::handle`] with a [`Cx`], and traces the end (`ok` or `error: ...`). What the
//! handler does in between is its own: work for a while, commit its effect to the simulated
//! database, record what else it did, confirm. Everything it can touch goes through the
//! context, so it stays inside the simulated world: the virtual clock, the run's random
//! stream, the database over the simulated network, the named fault points where the nemesis
//! or a scenario can crash the worker.
//!
//! [`BuiltIn`] is the handler every built-in scenario runs; its traces are the ones the
//! snapshots and the corpus hold.

use super::Worker;
use crate::fault::FaultPoint;
use crate::model::db::{Apply, ApplyResult, DbReply, DbRequest};
use crate::net::topology::NodeName;
use crate::trace::{Label, Typed};
use idempotency::{ConfirmError, Context};
use rand::Rng;
use std::future::Future;
use std::ops::RangeInclusive;
use std::pin::Pin;
use std::time::Duration;

/// A future a [`Handler`] returns: it runs on the worker's simulated node (single-threaded,
/// so it need not be `Send`).
///
/// ```
/// use sim::{Cx, Handler, HandlerFuture, Typed};
///
/// /// Fails each worker's first call (a transient error), then commits.
/// struct FirstCallFails;
///
/// impl Handler for FirstCallFails {
///     fn handle<'a>(&'a self, cx: &'a Cx<'a>) -> HandlerFuture<'a> {
///         // Any future of a `Result<(), String>` that borrows the context, pinned in a box:
///         // an async fn's will do.
///         Box::pin(handle(cx))
///     }
/// }
///
/// async fn handle(cx: &Cx<'_>) -> Result<(), String> {
///     cx.work().await?;
///     if cx.call() == 1 {
///         return Err("connection reset".into());
///     }
///     cx.commit().await?;
///     cx.confirm().await.ok();
///     Ok(())
/// }
///
/// // The error released the lock and the record was delivered again: the retry committed.
/// let r = sim::Sim::new("duplicate-detection").unwrap().handler(FirstCallFails).run(1);
/// let ends: Vec<&str> = r
///     .events
///     .iter()
///     .filter_map(|e| match e.typed() {
///         Typed::HandlerEnd { result, .. } => Some(result.as_str()),
///         _ => None,
///     })
///     .collect();
/// assert_eq!(ends, ["error: connection reset", "ok"]);
/// assert!(r.verdict.is_pass());
/// assert_eq!(r.applied, 1);
/// ```
pub type HandlerFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + 'a>>;

/// The business logic of a consumer, run by every simulated worker for every delivery the
/// library lets through.
///
/// An error (`Err(reason)`) is a handler failure: the library releases the lock and the
/// worker delivers the record again after a backoff, as a real consumer's retry would; the
/// trace records `handler_end` with `error: {reason}`.
///
/// ```
/// use sim::{Cx, Handler, HandlerFuture};
///
/// /// Commits the order, then confirms.
/// struct Orders;
///
/// impl Handler for Orders {
///     fn handle<'a>(&'a self, cx: &'a Cx<'a>) -> HandlerFuture<'a> {
///         Box::pin(async move {
///             cx.work().await?;
///             cx.commit().await?;
///             // A failed confirm is traced; the effect is in all the same.
///             cx.confirm().await.ok();
///             Ok(())
///         })
///     }
/// }
/// ```
pub trait Handler: Send + Sync + 'static {
    /// Handles one delivery.
    fn handle<'a>(&'a self, cx: &'a Cx<'a>) -> HandlerFuture<'a>;

    /// The fault points of its own it reaches with [`Cx::point`], by name: the nemesis's
    /// `fault_point` faults draw from these as well as from the built-in ones. (A scenario's
    /// `[[schedule]]` can name any point, listed or not.)
    fn points(&self) -> &[&'static str] {
        &[]
    }
}

/// What the business handler is given: the library's context, or (`python-v2`'s second call of
/// the handler) the event's key and nothing else: no lock, no fencing token, a no-op confirm.
pub(super) enum Guard {
    /// A call by the library.
    Lib(Context),
    /// The Python original's fail-open branch after a handler error.
    SecondCall {
        /// The event's Redis key ("" when it has none).
        key: String,
    },
}

impl Guard {
    pub(super) fn fence(&self) -> Option<u64> {
        match self {
            Guard::Lib(ctx) => ctx.fence(),
            Guard::SecondCall { .. } => None,
        }
    }

    pub(super) fn key(&self) -> &str {
        match self {
            Guard::Lib(ctx) => ctx.key().unwrap_or(""),
            Guard::SecondCall { key } => key,
        }
    }

    pub(super) fn is_protected(&self) -> bool {
        match self {
            Guard::Lib(ctx) => ctx.is_protected(),
            Guard::SecondCall { .. } => false,
        }
    }

    pub(super) async fn confirm(&self) -> Result<(), ConfirmError> {
        match self {
            Guard::Lib(ctx) => ctx.confirm().await,
            Guard::SecondCall { .. } => Ok(()),
        }
    }
}

/// What a [`Handler`] is given for one delivery: the delivery's identity and lock, and the
/// simulated world's database, clock, random stream and fault points.
///
/// ```
/// use sim::{Cx, Handler, HandlerFuture, Typed};
/// use std::time::Duration;
///
/// /// Records what its context says, then commits and confirms.
/// struct Inspect;
///
/// impl Handler for Inspect {
///     fn handle<'a>(&'a self, cx: &'a Cx<'a>) -> HandlerFuture<'a> {
///         Box::pin(async move {
///             let before = cx.now_unix_us();
///             cx.sleep(Duration::from_millis(50)).await; // virtual time: the test does not wait
///             let slept_ms = (cx.now_unix_us() - before) / 1000;
///             let seen = format!(
///                 "{} call {} protected={} fenced={} keyed={} slept_ms={slept_ms}",
///                 cx.worker(),
///                 cx.call(),
///                 cx.is_protected(),
///                 cx.fence().is_some(),
///                 !cx.key().is_empty(),
///             );
///             cx.record("seen", &seen);
///             // The seed's own random stream: the same seed draws the same number.
///             cx.record("dice", &cx.random(1..=6).to_string());
///             cx.commit().await?;
///             cx.confirm().await.ok();
///             Ok(())
///         })
///     }
/// }
///
/// let sim = sim::Sim::new("duplicate-detection").unwrap().handler(Inspect);
/// let recorded = |r: &sim::RunResult, what: &str| -> Vec<(String, String)> {
///     r.events
///         .iter()
///         .filter_map(|e| match e.typed() {
///             Typed::Custom { event_id, name, detail, .. } if name == what => {
///                 Some((event_id.clone(), detail.clone()))
///             }
///             _ => None,
///         })
///         .collect()
/// };
/// let r = sim.run(1);
/// // The second copy of the event was a duplicate: the handler ran once, under the lock.
/// let seen = recorded(&r, "seen");
/// assert_eq!(seen.len(), 1);
/// assert_eq!(seen[0].1, "worker-1 call 1 protected=true fenced=true keyed=true slept_ms=50");
/// assert!(r.effects.contains_key(&seen[0].0)); // `record` files it under `cx.event_id()`
/// assert_eq!(recorded(&r, "dice"), recorded(&sim.run(1), "dice"));
/// ```
pub struct Cx<'a> {
    pub(super) worker: &'a Worker,
    pub(super) guard: &'a Guard,
    pub(super) event_id: &'a str,
    pub(super) call: u64,
}

/// What a commit did, when it did not fail.
///
/// ```
/// use sim::{Commit, Cx, FaultPoint, Handler, HandlerFuture, Typed};
///
/// /// Commits, records what the commit did, then confirms.
/// struct Noting;
///
/// impl Handler for Noting {
///     fn handle<'a>(&'a self, cx: &'a Cx<'a>) -> HandlerFuture<'a> {
///         Box::pin(async move {
///             cx.work().await?;
///             let did = match cx.commit().await? {
///                 Commit::Applied => "applied",
///                 Commit::Duplicate => "duplicate",
///             };
///             cx.record("commit", did);
///             // The scenario crashes worker-1 here, before it confirms.
///             cx.point(FaultPoint::BeforeConfirm).await;
///             cx.confirm().await.ok();
///             Ok(())
///         })
///     }
/// }
///
/// // worker-1 commits and crashes before confirming; when its lock expires the event is
/// // handled again, and the unique database already holds its effect.
/// let sim = sim::Sim::new("async-confirm-crash-unique").unwrap().handler(Noting);
/// let r = sim.run(sim.config().seed);
/// let commits: Vec<&str> = r
///     .events
///     .iter()
///     .filter_map(|e| match e.typed() {
///         Typed::Custom { name, detail, .. } if name == "commit" => Some(detail.as_str()),
///         _ => None,
///     })
///     .collect();
/// assert_eq!(commits, ["applied", "duplicate"]);
/// assert_eq!((r.applied, r.duplicates), (1, 0));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Commit {
    /// The effect was applied.
    Applied,
    /// A `unique` database already holds this event's effect: nothing was applied.
    Duplicate,
}

impl Cx<'_> {
    /// The event's id (the producer's), or the record's key when the event has none.
    pub fn event_id(&self) -> &str {
        self.event_id
    }

    /// The event's Redis key ("" when it has none).
    pub fn key(&self) -> &str {
        self.guard.key()
    }

    /// The lease's fencing token (`fenced` only).
    pub fn fence(&self) -> Option<u64> {
        self.guard.fence()
    }

    /// Whether the library holds a lock for this call (false when it runs fail-open).
    pub fn is_protected(&self) -> bool {
        self.guard.is_protected()
    }

    /// The worker running it (`worker-1`, ...).
    pub fn worker(&self) -> String {
        self.worker.name.to_string()
    }

    /// This worker's `process()` call number in its incarnation (the trace's `call`).
    pub fn call(&self) -> u64 {
        self.call
    }

    /// The worker's wall clock, in µs since the Unix epoch: virtual, and skewed, stepped or
    /// paused as the clock faults say.
    pub fn now_unix_us(&self) -> i64 {
        idempotency::clock::Clock::now_unix_us(&self.worker.ctx.clock)
    }

    /// Waits `d` of virtual time.
    pub async fn sleep(&self, d: Duration) {
        crate::net::timer::sleep(d).await;
    }

    /// A number drawn from `range` on the worker's own random stream (the seed's: the same
    /// seed draws the same numbers).
    pub fn random(&self, range: RangeInclusive<u64>) -> u64 {
        let mut rng = self.worker.node.rng.lock().expect("worker rng");
        rng.gen_range(range)
    }

    /// The scenario's handler work: waits a time drawn from `handler_ms_min..=handler_ms_max`,
    /// then fails if the nemesis made this handler fail (`handler_error`). A handler that
    /// calls it gets the scenario's timing and its injected errors.
    pub async fn work(&self) -> Result<(), String> {
        let cfg = &self.worker.node.config;
        let work_ms = self.random(cfg.handler_ms_min..=cfg.handler_ms_max);
        self.sleep(Duration::from_millis(work_ms)).await;
        if self.worker.node.take_handler_error() {
            return Err("injected handler error".into());
        }
        Ok(())
    }

    /// Commits this event's effect to the simulated database in one transaction, with the
    /// lease's fencing token: the effect the checkers count (`duplicate_effect`, `lost_event`).
    /// An error is a transaction that failed or was rejected (a stale token, a timeout: it may
    /// have committed all the same).
    pub async fn commit(&self) -> Result<Commit, String> {
        let apply = Apply {
            event_id: self.event_id.to_owned(),
            key: self.key().to_owned(),
            fence: self.fence(),
            worker: self.worker.name.to_string(),
            incarnation: self.worker.incarnation,
            call: self.call,
        };
        let committed = self
            .worker
            .client
            .call::<DbRequest, DbReply>(
                NodeName::Db.addr(),
                DbRequest::Apply(apply),
                self.worker.timeout(),
            )
            .await;
        match committed {
            Ok(DbReply::Applied(ApplyResult::Applied)) => Ok(Commit::Applied),
            Ok(DbReply::Applied(ApplyResult::Duplicate)) => Ok(Commit::Duplicate),
            Ok(DbReply::Applied(ApplyResult::StaleFence { highest })) => {
                Err(format!("stale fence (highest {highest})"))
            }
            Ok(DbReply::HighestFence(_) | DbReply::Claimed(_)) => {
                Err("database: unexpected reply".to_owned())
            }
            Err(e) => Err(format!("database: {e}")),
        }
    }

    /// Reaches a fault point, a built-in one (`FaultPoint::AfterEffectCommit`) or one of the
    /// handler's own, by name (`"after_email"`): the nemesis or a scenario's `[[schedule]]`
    /// entry (`point = "after_email"`) may crash the worker right here, and then this never
    /// returns (the worker is down). The nemesis draws a handler's own points when the handler
    /// lists them ([`Handler::points`]).
    ///
    /// # Panics
    /// On a name that is not a point's (see [`FaultPoint::invalid_name`]): a bug in the handler.
    pub async fn point(&self, point: impl Into<FaultPoint>) {
        let point = point.into();
        if let FaultPoint::Named(name) = &point {
            if let Some(why) = FaultPoint::invalid_name(name) {
                panic!("the handler's fault point: {why}");
            }
        }
        self.worker.fault_point(point, self.event_id).await;
    }

    /// Records something the handler did (an email sent, a call to another service) in the
    /// history, as a `custom` event named `name`: what a user's own checker reads.
    pub fn record(&self, name: &str, detail: &str) {
        self.worker.ctx.emit(Typed::Custom {
            event_id: self.event_id.to_owned(),
            call: self.call,
            name: name.to_owned(),
            detail: detail.to_owned(),
        });
    }

    /// Confirms: the library writes the completed record (a no-op when unprotected). The
    /// result is traced (`confirm`); a failed confirm is not the handler's failure (the effect
    /// committed), so it is only returned to look at.
    pub async fn confirm(&self) -> Result<(), String> {
        let confirmed = self.guard.confirm().await;
        let traced = match &confirmed {
            Ok(()) if self.is_protected() => Label::fixed("confirmed"),
            Ok(()) => Label::fixed("noop"),
            Err(e) => e.to_string().into(),
        };
        self.worker.ctx.emit(Typed::Confirm {
            event_id: self.event_id.to_owned(),
            result: traced,
            call: self.call,
        });
        confirmed.map_err(|e| e.to_string())
    }

    /// The scenario's `confirm_delay_ms`: the built-in handler waits it between commit and
    /// confirm (a slow step there widens the window a crash can hit).
    fn confirm_delay(&self) -> Duration {
        Duration::from_millis(self.worker.node.config.confirm_delay_ms)
    }
}

/// The handler of every built-in scenario: work for the scenario's handler time, commit the
/// effect, confirm, with a fault point after the commit and on each side of the confirm.
#[derive(Clone, Copy, Debug, Default)]
pub struct BuiltIn;

impl Handler for BuiltIn {
    fn handle<'a>(&'a self, cx: &'a Cx<'a>) -> HandlerFuture<'a> {
        Box::pin(async move {
            cx.work().await?;
            cx.commit().await?;
            cx.point(FaultPoint::AfterEffectCommit).await;
            let delay = cx.confirm_delay();
            if !delay.is_zero() {
                cx.sleep(delay).await;
            }
            cx.point(FaultPoint::BeforeConfirm).await;
            // A failed confirm is traced; the effect is in, so the handler did its part.
            let _ = cx.confirm().await;
            cx.point(FaultPoint::AfterConfirm).await;
            Ok(())
        })
    }
}
