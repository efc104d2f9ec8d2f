//! The run's message transport, our own, on madsim's clock and scheduler (madsim's datagrams
//! are not used: their send path alone capped the harness below 100 seeds a second).
//!
//! It stands for the TCP connections the real clients keep (Redis, Kafka and database
//! clients all use TCP), as far as the harness needs them:
//! - a message takes a latency drawn from the run's `net` stream, uniform in its link's range:
//!   the run's one range, unless a [`LinkLatency`] names the link or one of its ends (a slow
//!   Redis, a slow database);
//! - a client has one call in flight at a time ([`super::rpc::Client`] takes turns), and a
//!   server takes its requests from one queue in arrival order: nothing overtakes anything, so
//!   no request is ever applied out of order;
//! - what [`Rules`] block is lost: a message from or to a clogged node, or across a cut link;
//!   the caller sees a timeout, as it would on a real network;
//! - connections fail as TCP's do, and the caller hears of it after one trip back (if the rules
//!   let it through): a request to a node nobody listens on (crashed, not yet restarted) is
//!   *refused* ([`CallError::Refused`]: it never reached a server); a request sent to a server
//!   that crashes before answering it, queued, in progress or still on its way, is *reset*
//!   ([`CallError::Reset`]: the caller cannot know whether it ran). The world tells the network
//!   of a crash ([`Network::crash`]) as it kills the node. A reply to a caller that gave up or
//!   died goes nowhere (the caller's slot is gone);
//! - a paused server's queue fills and is served in order when it resumes (its replies reach
//!   only callers still waiting).
//!
//! Everything is decided here, as data: the world changes [`Rules`] when it injects or heals a
//! network fault, and tells it of pauses ([`Network::set_paused`]) and crashes.
//!
//! What a call costs: the caller is polled when its request arrives and when the reply lands,
//! and nothing else runs. A server registered with a handler ([`Network::listen_inline`]: every
//! server of the run) is served by the transport itself at the arrival, in the caller's poll,
//! unless it is paused or has requests queued before this one; its own task only serves what
//! queued while it was paused. Two timers then (the request's trip, the reply's), and a third,
//! the caller's deadline, only while the reply is not known to land before it: madsim's timers
//! cannot be taken back, so each one set is a push and a pop on its heap even when disarmed
//! ([`super::timer`]).

use super::timer::{OnceSleep, RunClock, WakeAt};
use super::topology::NodeName;
use madsim::time::{Instant, TimeHandle};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::any::Any;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Poll, Waker};
use std::time::Duration;

/// A message body: any Rust value (nothing is serialized).
pub type Body = Box<dyn Any + Send>;

/// Why a call got no reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallError {
    /// None in time: lost on the way there or back, a server that did not answer. The request
    /// may have run.
    Timeout,
    /// Nobody listened at the server's address: the request never reached a server.
    Refused,
    /// The server crashed after the request was sent: it may have run.
    Reset,
}

/// A latency range of its own for the links of one node (`peer` left out), or for one link
/// (both ways): a scenario's `[[link_latency]]` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkLatency {
    /// One end.
    pub node: NodeName,
    /// The other end; every peer of `node` if left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<NodeName>,
    /// Lowest one-way latency on it.
    pub ms_min: u64,
    /// Highest one-way latency on it (a latency spike raises it to the spike's, if higher).
    pub ms_max: u64,
}

impl LinkLatency {
    /// Whether it names the link between `a` and `b` exactly (`Some(true)`), by one end only
    /// (`Some(false)`), or not at all.
    fn names(&self, a: NodeName, b: NodeName) -> Option<bool> {
        match self.peer {
            Some(p) => ((self.node, p) == (a, b) || (self.node, p) == (b, a)).then_some(true),
            None => (self.node == a || self.node == b).then_some(false),
        }
    }
}

/// What the network lets through, and how fast.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rules {
    /// Each message's latency, drawn uniformly from `[min, max]` µs (on a link no
    /// [`LinkLatency`] names).
    pub latency_us: (u64, u64),
    /// Links with ranges of their own: the first entry naming both ends wins, else the first
    /// naming one end with no peer.
    pub links: Vec<LinkLatency>,
    /// A latency spike in force: the highest latency on every link, in µs, if above its own.
    pub spike_us: Option<u64>,
    /// Nodes that can neither send nor receive.
    pub clogged: BTreeSet<NodeName>,
    /// Links cut both ways, each pair stored lowest node first.
    pub cut: BTreeSet<(NodeName, NodeName)>,
}

impl Rules {
    /// Rules that let everything through with a latency in `[min, max]` µs.
    pub fn open(latency_us: (u64, u64)) -> Self {
        assert!(latency_us.0 <= latency_us.1, "latency range {latency_us:?}");
        Rules {
            latency_us,
            links: Vec::new(),
            spike_us: None,
            clogged: BTreeSet::new(),
            cut: BTreeSet::new(),
        }
    }

    /// The latency range of the link between `a` and `b`, in µs.
    pub fn latency_of(&self, a: NodeName, b: NodeName) -> (u64, u64) {
        let link = self
            .links
            .iter()
            .find(|l| l.names(a, b) == Some(true))
            .or_else(|| self.links.iter().find(|l| l.names(a, b) == Some(false)));
        match link {
            None => self.latency_us,
            Some(l) => {
                let (min, max) = (l.ms_min * 1000, l.ms_max * 1000);
                (min, max.max(self.spike_us.unwrap_or(0)))
            }
        }
    }

    /// Whether a message from `a` reaches `b`.
    pub fn passes(&self, a: NodeName, b: NodeName) -> bool {
        if self.clogged.is_empty() && self.cut.is_empty() {
            return true;
        }
        !self.clogged.contains(&a) && !self.clogged.contains(&b) && !self.cut.contains(&link(a, b))
    }

    /// Cuts the link between `a` and `b` (both ways), or mends it.
    pub fn set_cut(&mut self, a: NodeName, b: NodeName, cut: bool) {
        if cut {
            self.cut.insert(link(a, b));
        } else {
            self.cut.remove(&link(a, b));
        }
    }
}

fn link(a: NodeName, b: NodeName) -> (NodeName, NodeName) {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

/// The network of one run. Shared by every node (they reach it through their context).
pub struct Network {
    state: Mutex<State>,
    /// The runtime's clock, for the sleeps of every call.
    clock: RunClock,
}

struct State {
    rules: Rules,
    rng: ChaCha8Rng,
    /// Each node's current listener, with the number of its incarnation.
    listeners: BTreeMap<NodeName, (u64, Arc<Queue>)>,
    next_listener: u64,
    /// Nodes paused (their tasks not polled): their requests queue, none is served inline.
    paused: BTreeSet<NodeName>,
    /// Calls started, by caller, server and request kind, in the order first seen (a few
    /// dozen; scanned, not searched: a map's string comparisons cost a hundredth of a run).
    calls: Vec<((NodeName, NodeName, &'static str), u64)>,
}

/// A server's queue of requests.
#[derive(Default)]
struct Queue {
    inner: Mutex<(VecDeque<Incoming>, Option<Waker>)>,
    /// The server's handler, where it answers every request as it takes it
    /// ([`super::rpc::serve`]): the transport runs it itself when a request arrives at a
    /// server that is not paused and has nothing queued, instead of waking the server's task
    /// to run it (the same instant, the same order: the queue is empty).
    inline: Option<Arc<Mutex<Inline>>>,
}

/// A server's handler the transport may run at a request's arrival: it takes the request as
/// the server's task would, and answers through its [`ReplyTo`] at once or later (a long
/// poll), or drops it (a lost reply).
pub type Inline = Box<dyn FnMut(Incoming) + Send>;

/// A request as the server takes it.
pub struct Incoming {
    /// Who sent it.
    pub from: NodeName,
    /// The request.
    pub body: Body,
    /// The way back to the caller.
    pub reply: ReplyTo,
}

/// A call's deadline: its instant, until its sleep is needed.
enum Deadline {
    At(Instant),
    Sleep(OnceSleep),
}

impl Deadline {
    fn at(&self) -> Instant {
        match self {
            Deadline::At(at) => *at,
            Deadline::Sleep(s) => s.deadline(),
        }
    }

    /// The deadline's sleep, made on `clock` the first time.
    fn sleep(&mut self, clock: &RunClock) -> Pin<&mut OnceSleep> {
        if let Deadline::At(at) = *self {
            *self = Deadline::Sleep(clock.sleep_exactly_until(at));
        }
        match self {
            Deadline::Sleep(s) => Pin::new(s),
            Deadline::At(_) => unreachable!("made above"),
        }
    }
}

/// A reply (or a connection's failure) on its way.
struct Landing {
    what: Result<Body, CallError>,
    /// The virtual instant it lands at.
    at: Instant,
    /// The caller's wake-up at that instant, set by whoever sent it (`None` if the caller was
    /// not waiting yet: it sleeps until then itself).
    wake: Option<WakeAt>,
}

/// Where one call waits for its reply.
#[derive(Default)]
pub struct Slot {
    inner: Mutex<(Option<Landing>, Option<Waker>)>,
}

/// The way back to one caller, kept by the server until it answers (see [`ReplyTo::send`]).
/// Dropped unanswered by a server that crashed, it resets the caller's call.
pub struct ReplyTo {
    slot: Weak<Slot>,
    from: NodeName,
    to: NodeName,
    /// The listener (server incarnation) that took the request.
    listener: u64,
    /// Set once the answer is sent (or the request reset).
    done: bool,
    net: Weak<Network>,
}

impl State {
    /// Counts a call. The kinds are `&'static str`s from a few literals, so one kind is one
    /// pointer almost always; the text is compared only when the pointers differ.
    fn count_call(&mut self, from: NodeName, to: NodeName, kind: &'static str) {
        let found = self
            .calls
            .iter()
            .position(|((a, b, k), _)| *a == from && *b == to && (std::ptr::eq(*k, kind) || *k == kind));
        match found {
            Some(i) => {
                self.calls[i].1 += 1;
                // One step to the front: the kinds called most end up scanned first.
                if i > 0 {
                    self.calls.swap(i - 1, i);
                }
            }
            None => self.calls.push(((from, to, kind), 1)),
        }
    }
}

impl Network {
    /// A network under `rules`, drawing latencies from `rng`.
    pub fn new(rules: Rules, rng: ChaCha8Rng) -> Self {
        Network {
            state: Mutex::new(State {
                rules,
                rng,
                listeners: BTreeMap::new(),
                next_listener: 0,
                paused: BTreeSet::new(),
                calls: Vec::new(),
            }),
            clock: RunClock::default(),
        }
    }

    /// `node` is paused (its tasks are not polled) or resumed: the world tells the network as
    /// it tells madsim, so that nothing is served inline on a paused server.
    pub fn set_paused(&self, node: NodeName, paused: bool) {
        let mut st = self.state.lock().expect("network");
        if paused {
            st.paused.insert(node);
        } else {
            st.paused.remove(&node);
        }
    }

    /// Changes the rules (a network fault, or its heal).
    pub fn update(&self, change: impl FnOnce(&mut Rules)) {
        let mut st = self.state.lock().expect("network");
        change(&mut st.rules);
        let (min, max) = st.rules.latency_us;
        assert!(min <= max, "latency range {min}..{max}");
    }

    /// Calls started so far, by caller, server and request kind (one each, answered or not).
    pub fn round_trips(&self) -> Vec<(NodeName, NodeName, &'static str, u64)> {
        let st = self.state.lock().expect("network");
        let mut calls: Vec<_> = st.calls.iter().map(|&((a, b, k), n)| (a, b, k, n)).collect();
        calls.sort_unstable();
        calls
    }

    /// Starts listening as `node`: requests to it queue here from now on, until the listener
    /// is dropped (its task ended or was killed) or a newer one replaces it (a restart).
    pub fn listen(self: &Arc<Self>, node: NodeName) -> Listener {
        self.listen_with(node, None)
    }

    /// [`Network::listen`] for a server that answers each request at once with `handler`,
    /// which the transport may run itself at a request's arrival (see [`Queue`]); the server's
    /// task runs the same handler for what queued while it was paused.
    pub fn listen_inline(self: &Arc<Self>, node: NodeName, handler: Arc<Mutex<Inline>>) -> Listener {
        self.listen_with(node, Some(handler))
    }

    fn listen_with(self: &Arc<Self>, node: NodeName, inline: Option<Arc<Mutex<Inline>>>) -> Listener {
        let mut st = self.state.lock().expect("network");
        st.next_listener += 1;
        let id = st.next_listener;
        let queue = Arc::new(Queue {
            inner: Mutex::default(),
            inline,
        });
        // A new incarnation's tasks run (madsim's restart does not keep a pause).
        st.paused.remove(&node);
        st.listeners.insert(node, (id, queue.clone()));
        Listener {
            net: Arc::downgrade(self),
            node,
            id,
            queue,
        }
    }

    /// One latency draw for a message between `a` and `b` (one draw of the stream whatever
    /// the link, so a run without link ranges draws as before they existed).
    fn draw(st: &mut State, a: NodeName, b: NodeName) -> u64 {
        let (min, max) = st.rules.latency_of(a, b);
        st.rng.gen_range(min..=max)
    }

    /// Sends `body` from `from` to `to` and waits up to `timeout` for the reply: the reply,
    /// or why there is none ([`CallError`]). `kind` names the request for
    /// [`Network::round_trips`].
    pub async fn call(
        self: &Arc<Self>,
        from: NodeName,
        to: NodeName,
        kind: &'static str,
        body: Body,
        timeout: Duration,
    ) -> Result<Body, CallError> {
        let (trip, connected) = {
            let mut st = self.state.lock().expect("network");
            st.count_call(from, to, kind);
            let connected = st.listeners.get(&to).map(|(id, _)| *id);
            (Self::draw(&mut st, from, to), connected)
        };
        let slot = Arc::new(Slot::default());
        // The deadline's timer is set only while the call's next wake-up could come after it or
        // is not known (a server still to answer): a reply that lands in time, known as soon as
        // the request arrives at a server served inline, costs no deadline timer (madsim's
        // timers cannot be taken back; a disarmed one still costs its push and pop).
        let now = self.clock.now_instant();
        let mut trip = self.clock.sleep_until(now + Duration::from_micros(trip));
        // The deadline's sleep is made only when it is first needed (most calls never need it,
        // and making one copies the runtime's time handle); its instant is fixed now, as
        // madsim's `sleep(timeout)` would fix it (at least a millisecond away).
        let mut deadline = Deadline::At(now + timeout.max(Duration::from_millis(1)));
        let mut body = Some(body);
        // Whether `trip`, its request's trip over, now sleeps until the reply lands.
        let mut landing_set = false;
        std::future::poll_fn(|cx| {
            // The request's trip.
            if let Some(b) = body.take() {
                if Pin::new(&mut trip).poll(cx).is_pending() {
                    body = Some(b);
                    return self.unless_past(&mut deadline, Some(trip.deadline()), cx);
                }
                self.arrive(from, to, b, &slot, connected);
            }
            // Its reply (or the connection's failure) on the way back.
            let mut s = slot.inner.lock().expect("slot");
            let next = match s.0.as_ref() {
                None => {
                    s.1 = Some(cx.waker().clone());
                    None
                }
                // Its sender set the wake-up for when it lands.
                Some(Landing { wake: Some(w), .. }) if !w.is_elapsed() => Some(w.deadline()),
                Some(Landing { wake: Some(_), .. }) => {
                    return Poll::Ready(s.0.take().expect("a landing").what);
                }
                // Sent while this call was being polled (served inline, or refused, in
                // `arrive`): no wake-up was set, so it sleeps until then itself.
                Some(Landing { at, wake: None, .. }) => {
                    if !landing_set {
                        // The trip's sleep serves again (its timer has fired): as a new
                        // `sleep_until(at)`, without a new sleep and relay.
                        trip.restart_until(*at, self.clock.now_instant());
                        landing_set = true;
                    }
                    if Pin::new(&mut trip).poll(cx).is_ready() {
                        return Poll::Ready(s.0.take().expect("a landing").what);
                    }
                    Some(trip.deadline())
                }
            };
            drop(s);
            self.unless_past(&mut deadline, next, cx)
        })
        .await
    }

    /// A call waits (`Pending`) for its next wake-up at `next` (`None`: not known), or has
    /// timed out: the deadline's timer is set if `next` may come after it.
    fn unless_past(
        &self,
        deadline: &mut Deadline,
        next: Option<Instant>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<Result<Body, CallError>> {
        if next.is_none_or(|at| at > deadline.at()) && deadline.sleep(&self.clock).poll(cx).is_ready() {
            return Poll::Ready(Err(CallError::Timeout));
        }
        Poll::Pending
    }

    /// The request lands at `to` (now): queued for its listener, unless the rules block it.
    /// `connected` is the listener that was there when it was sent: if that one is gone the
    /// connection is reset; if there was none and is none, refused.
    fn arrive(
        self: &Arc<Self>,
        from: NodeName,
        to: NodeName,
        body: Body,
        slot: &Arc<Slot>,
        connected: Option<u64>,
    ) {
        let (id, queue, paused) = {
            let mut st = self.state.lock().expect("network");
            if !st.rules.passes(from, to) {
                return;
            }
            let paused = st.paused.contains(&to);
            match st.listeners.get(&to) {
                Some((id, q)) if connected.is_none_or(|c| c == *id) => (*id, q.clone(), paused),
                current => {
                    let why = match (connected, current) {
                        (None, None) => CallError::Refused,
                        _ => CallError::Reset,
                    };
                    Self::fail_locked(&mut st, &self.clock, Arc::downgrade(slot), to, from, why);
                    return;
                }
            }
        };
        let incoming = Incoming {
            from,
            body,
            reply: ReplyTo {
                slot: Arc::downgrade(slot),
                from,
                to,
                listener: id,
                done: false,
                net: Arc::downgrade(self),
            },
        };
        let mut q = queue.inner.lock().expect("queue");
        if let (Some(handler), false, true) = (&queue.inline, paused, q.0.is_empty()) {
            // Served here and now, as the server's task would serve it at this instant.
            drop(q);
            (handler.lock().expect("handler"))(incoming);
            return;
        }
        q.0.push_back(incoming);
        if let Some(w) = q.1.take() {
            w.wake();
        }
    }

    /// The reply's trip: lost if the rules block it now, else it lands after a latency draw.
    fn answer(&self, reply: &mut ReplyTo, body: Body) {
        reply.done = true;
        let mut st = self.state.lock().expect("network");
        Self::land(
            &mut st,
            &self.clock,
            reply.slot.clone(),
            reply.to,
            reply.from,
            Ok(body),
        );
    }

    /// A connection's failure reaches the caller as a reply would.
    fn fail_locked(
        st: &mut State,
        clock: &RunClock,
        slot: Weak<Slot>,
        server: NodeName,
        caller: NodeName,
        why: CallError,
    ) {
        Self::land(st, clock, slot, server, caller, Err(why));
    }

    /// `what` travels from `server` back to `caller`: lost if the rules block it now, else it
    /// lands after a latency draw (nowhere if the caller no longer waits).
    fn land(
        st: &mut State,
        clock: &RunClock,
        slot: Weak<Slot>,
        server: NodeName,
        caller: NodeName,
        what: Result<Body, CallError>,
    ) {
        let Some(slot) = slot.upgrade() else {
            return;
        };
        if !st.rules.passes(server, caller) {
            return;
        }
        let trip = Duration::from_micros(Self::draw(st, server, caller));
        let mut s = slot.inner.lock().expect("slot");
        let at = clock.now_instant() + trip;
        // A caller already waiting gets its wake-up at the landing; one still inside its poll
        // (served inline) sets it itself. The runtime is looked up only for the wake-up:
        // outside it (its tasks dropped at the end of a run) nobody waits any more.
        let wake = match s.1.take() {
            Some(waker) => TimeHandle::try_current().and_then(|time| WakeAt::on(&time, at, &waker)),
            None => None,
        };
        let at = wake.as_ref().map_or(at, |w| w.deadline());
        s.0 = Some(Landing { what, at, wake });
    }

    /// `node` crashed (the world calls this as it kills it): nobody listens there from now on,
    /// and every request it had taken or queued is reset (the caller hears of it after a trip
    /// back, as a TCP reset). Requests on their way to it are reset when they land.
    pub fn crash(&self, node: NodeName) {
        let mut st = self.state.lock().expect("network");
        let Some((_, queue)) = st.listeners.remove(&node) else {
            return;
        };
        let queued: Vec<Incoming> = queue.inner.lock().expect("queue").0.drain(..).collect();
        for mut incoming in queued {
            incoming.reply.done = true;
            let r = &incoming.reply;
            Self::fail_locked(
                &mut st,
                &self.clock,
                r.slot.clone(),
                r.to,
                r.from,
                CallError::Reset,
            );
        }
    }
}

impl ReplyTo {
    /// Whether the caller still waits (it has not given up, and is alive).
    pub fn is_waiting(&self) -> bool {
        self.slot.strong_count() > 0
    }

    /// Sends the reply on `net` (it goes nowhere if the caller no longer waits).
    pub fn send(mut self, net: &Network, body: Body) {
        net.answer(&mut self, body);
    }

    /// Sends the reply on the network that brought the request (it goes nowhere if the
    /// caller no longer waits, or the run is over).
    pub fn answer(self, body: Body) {
        if let Some(net) = self.net.upgrade() {
            self.send(&net, body);
        }
    }
}

impl Drop for ReplyTo {
    /// Unanswered: a live server dropped it on purpose (a lost reply: the caller times out),
    /// or its server crashed (no longer the listener): the caller's connection is reset.
    fn drop(&mut self) {
        if self.done || self.slot.strong_count() == 0 {
            return;
        }
        let Some(net) = self.net.upgrade() else {
            return;
        };
        let mut st = net.state.lock().expect("network");
        if st
            .listeners
            .get(&self.to)
            .is_some_and(|(id, _)| *id == self.listener)
        {
            return;
        }
        Network::fail_locked(
            &mut st,
            &net.clock,
            self.slot.clone(),
            self.to,
            self.from,
            CallError::Reset,
        );
    }
}

/// A server's end: its requests, in arrival order.
pub struct Listener {
    net: Weak<Network>,
    node: NodeName,
    id: u64,
    queue: Arc<Queue>,
}

impl Listener {
    /// The next request (waits for one).
    pub async fn next(&self) -> Incoming {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    /// The next request if one is queued, else `Pending` (woken when one is).
    pub fn poll_next(&self, cx: &mut std::task::Context<'_>) -> Poll<Incoming> {
        let mut q = self.queue.inner.lock().expect("queue");
        match q.0.pop_front() {
            Some(incoming) => Poll::Ready(incoming),
            None => {
                q.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        // The requests still queued die with it (a crashed server's connections reset).
        if let Some(net) = self.net.upgrade() {
            let mut st = net.state.lock().expect("network");
            if st.listeners.get(&self.node).is_some_and(|(id, _)| *id == self.id) {
                st.listeners.remove(&self.node);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use madsim::runtime::{Handle, Runtime};
    use rand::SeedableRng;

    const MS: u64 = 1000;

    fn net() -> Arc<Network> {
        Arc::new(Network::new(
            Rules::open((MS, 10 * MS)),
            ChaCha8Rng::seed_from_u64(7),
        ))
    }

    /// An echo server on `node` that adds 1, answering after `delay` (a paused or slow one).
    fn echo(net: &Arc<Network>, node: NodeName, delay: Duration) -> madsim::runtime::NodeHandle {
        let net = net.clone();
        Handle::current()
            .create_node()
            .name(node.to_string())
            .ip(node.ip())
            .init(move || {
                let net = net.clone();
                async move {
                    let listener = net.listen(node);
                    loop {
                        let req = listener.next().await;
                        let n = *req.body.downcast::<u64>().expect("a u64");
                        madsim::time::sleep(delay).await;
                        req.reply.send(&net, Box::new(n + 1));
                    }
                }
            })
            .build()
    }

    async fn ask(net: &Arc<Network>, n: u64, timeout_ms: u64) -> Result<u64, CallError> {
        let reply = net
            .call(
                NodeName::Worker(1),
                NodeName::Redis,
                "ask",
                Box::new(n),
                Duration::from_millis(timeout_ms),
            )
            .await?;
        Ok(*reply.downcast::<u64>().expect("a u64"))
    }

    fn run(test: impl std::future::Future<Output = ()> + 'static) {
        Runtime::with_seed_and_config(1, madsim::Config::default()).block_on(test);
    }

    #[test]
    fn a_call_takes_two_trips_within_the_latency_range() {
        run(async {
            let net = net();
            echo(&net, NodeName::Redis, Duration::ZERO);
            madsim::time::sleep(Duration::from_millis(1)).await;
            for n in 0..20 {
                let t0 = Instant::now();
                assert_eq!(ask(&net, n, 1000).await, Ok(n + 1));
                let took = t0.elapsed().as_micros() as u64;
                assert!((2 * MS..=20 * MS).contains(&took), "{took} µs");
            }
            assert_eq!(
                net.round_trips(),
                vec![(NodeName::Worker(1), NodeName::Redis, "ask", 20)]
            );
        });
    }

    #[test]
    fn clogs_and_cut_links_lose_messages_until_healed() {
        run(async {
            let net = net();
            echo(&net, NodeName::Redis, Duration::ZERO);
            madsim::time::sleep(Duration::from_millis(1)).await;
            net.update(|r| {
                r.clogged.insert(NodeName::Redis);
            });
            assert_eq!(ask(&net, 1, 100).await, Err(CallError::Timeout));
            net.update(|r| {
                r.clogged.clear();
                r.set_cut(NodeName::Redis, NodeName::Worker(1), true);
            });
            assert_eq!(ask(&net, 2, 100).await, Err(CallError::Timeout));
            // Another link is not cut.
            let other = net
                .call(
                    NodeName::Worker(2),
                    NodeName::Redis,
                    "ask",
                    Box::new(5u64),
                    Duration::from_secs(1),
                )
                .await;
            assert_eq!(other.map(|b| *b.downcast::<u64>().expect("u64")), Ok(6));
            net.update(|r| r.set_cut(NodeName::Worker(1), NodeName::Redis, false));
            assert_eq!(ask(&net, 3, 1000).await, Ok(4));
        });
    }

    #[test]
    fn a_crashed_server_resets_what_it_had_refuses_while_down_and_serves_again_restarted() {
        run(async {
            let net = net();
            let server = echo(&net, NodeName::Redis, Duration::from_millis(500));
            madsim::time::sleep(Duration::from_millis(1)).await;
            let h = Handle::current();
            let n2 = net.clone();
            let pending = madsim::task::spawn(async move { ask(&n2, 1, 5000).await });
            madsim::time::sleep(Duration::from_millis(100)).await;
            let t0 = Instant::now();
            net.crash(NodeName::Redis);
            h.kill(server.id());
            // In progress when it crashed: reset, heard of after one trip back.
            assert_eq!(pending.await.expect("the pending call"), Err(CallError::Reset));
            assert!(t0.elapsed() <= Duration::from_millis(10), "{:?}", t0.elapsed());
            // Nobody listens now: refused at once (two trips), not a timeout.
            let t0 = Instant::now();
            assert_eq!(ask(&net, 2, 200).await, Err(CallError::Refused));
            assert!(t0.elapsed() <= Duration::from_millis(20), "{:?}", t0.elapsed());
            // Clogged, the refusal is lost too: a timeout.
            net.update(|r| {
                r.clogged.insert(NodeName::Redis);
            });
            assert_eq!(ask(&net, 2, 200).await, Err(CallError::Timeout));
            net.update(|r| r.clogged.clear());
            h.restart(server.id());
            madsim::time::sleep(Duration::from_millis(1)).await;
            assert_eq!(ask(&net, 3, 2000).await, Ok(4));
        });
    }

    #[test]
    fn requests_queued_at_a_crash_and_one_sent_to_the_old_incarnation_are_reset() {
        run(async {
            let net = net();
            // A slow server: the first request is in progress, the second queued.
            let server = echo(&net, NodeName::Redis, Duration::from_millis(500));
            madsim::time::sleep(Duration::from_millis(1)).await;
            let h = Handle::current();
            let calls: Vec<_> = (0..2u64)
                .map(|n| {
                    let net = net.clone();
                    madsim::task::spawn(async move {
                        net.call(
                            NodeName::Worker(n as u8 + 1),
                            NodeName::Redis,
                            "ask",
                            Box::new(n),
                            Duration::from_secs(5),
                        )
                        .await
                        .map(|b| *b.downcast::<u64>().expect("u64"))
                    })
                })
                .collect();
            madsim::time::sleep(Duration::from_millis(50)).await;
            // Sent just before the crash and restart: it lands at the new incarnation, which
            // never had its connection.
            let n3 = net.clone();
            let late = madsim::task::spawn(async move { ask(&n3, 9, 5000).await });
            madsim::time::sleep(Duration::from_micros(500)).await;
            net.crash(NodeName::Redis);
            h.kill(server.id());
            h.restart(server.id());
            for call in calls {
                assert_eq!(call.await.expect("a call"), Err(CallError::Reset));
            }
            assert_eq!(late.await.expect("the late call"), Err(CallError::Reset));
            assert_eq!(ask(&net, 3, 2000).await, Ok(4), "a new connection is served");
        });
    }

    #[test]
    fn a_paused_server_serves_its_queue_in_order_and_late_replies_reach_no_one() {
        run(async {
            let net = net();
            let server = echo(&net, NodeName::Redis, Duration::ZERO);
            madsim::time::sleep(Duration::from_millis(1)).await;
            let h = Handle::current();
            h.pause(server.id());
            // Given up while the server is paused: the reply, when it comes, goes nowhere.
            assert_eq!(ask(&net, 1, 100).await, Err(CallError::Timeout));
            let n2 = net.clone();
            let waiting = madsim::task::spawn(async move {
                n2.call(
                    NodeName::Worker(2),
                    NodeName::Redis,
                    "ask",
                    Box::new(10u64),
                    Duration::from_secs(5),
                )
                .await
                .map(|b| *b.downcast::<u64>().expect("u64"))
            });
            madsim::time::sleep(Duration::from_millis(500)).await;
            h.resume(server.id());
            assert_eq!(waiting.await.expect("the waiting call"), Ok(11));
            assert_eq!(ask(&net, 20, 1000).await, Ok(21));
        });
    }

    #[test]
    fn a_link_range_slows_that_link_alone_and_a_spike_raises_it() {
        run(async {
            let net = net();
            net.update(|r| {
                r.links = vec![
                    LinkLatency {
                        node: NodeName::Redis,
                        peer: Some(NodeName::Worker(2)),
                        ms_min: 1,
                        ms_max: 1,
                    },
                    LinkLatency {
                        node: NodeName::Redis,
                        peer: None,
                        ms_min: 50,
                        ms_max: 60,
                    },
                ]
            });
            echo(&net, NodeName::Redis, Duration::ZERO);
            echo(&net, NodeName::Db, Duration::ZERO);
            madsim::time::sleep(Duration::from_millis(1)).await;
            let took = |from: NodeName, to: NodeName| {
                let net = net.clone();
                async move {
                    let t0 = Instant::now();
                    net.call(from, to, "ask", Box::new(1u64), Duration::from_secs(5))
                        .await
                        .expect("served");
                    t0.elapsed().as_micros() as u64
                }
            };
            for _ in 0..10 {
                // Redis's links: 50..=60 ms each way; worker-2's own link to it: 1 ms.
                let slow = took(NodeName::Worker(1), NodeName::Redis).await;
                assert!((100 * MS..=120 * MS).contains(&slow), "{slow} µs");
                let own = took(NodeName::Worker(2), NodeName::Redis).await;
                assert!((2 * MS..=3 * MS).contains(&own), "{own} µs");
                // Another node keeps the run's range (1..=10 ms).
                let db = took(NodeName::Worker(1), NodeName::Db).await;
                assert!((2 * MS..=20 * MS).contains(&db), "{db} µs");
            }
            // A spike raises a link's highest latency if it is higher, never lowers it.
            net.update(|r| r.spike_us = Some(500 * MS));
            assert_eq!(
                net.state
                    .lock()
                    .unwrap()
                    .rules
                    .latency_of(NodeName::Redis, NodeName::Worker(3)),
                (50 * MS, 500 * MS)
            );
            net.update(|r| r.spike_us = Some(20 * MS));
            assert_eq!(
                net.state
                    .lock()
                    .unwrap()
                    .rules
                    .latency_of(NodeName::Worker(3), NodeName::Redis),
                (50 * MS, 60 * MS)
            );
        });
    }

    #[test]
    fn the_same_seed_draws_the_same_latencies() {
        let times = || {
            let out = Arc::new(Mutex::new(Vec::new()));
            let o = out.clone();
            run(async move {
                let net = net();
                echo(&net, NodeName::Redis, Duration::ZERO);
                madsim::time::sleep(Duration::from_millis(1)).await;
                for n in 0..10 {
                    ask(&net, n, 1000).await.expect("served");
                    o.lock().unwrap().push(Instant::now());
                }
            });
            let v = out.lock().unwrap().clone();
            v
        };
        assert_eq!(times(), times());
    }
}
