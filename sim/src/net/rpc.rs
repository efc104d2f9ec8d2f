//! Request/response between simulated nodes over madsim's network.
//!
//! A server owns an [`Endpoint`] and takes each request as it arrives (the state change
//! happens at once, in arrival order; only the reply's trip is spawned). [`serve`] answers each
//! at once; [`serve_deferred`] hands the server a [`Responder`] to answer through when it is
//! ready, for a long poll (Kafka's JoinGroup and Fetch wait at the broker). A client sends with
//! a fresh reply tag per call, so a late reply can never be taken for the answer to a later
//! call, and gives up after a timeout.
//!
//! Datagrams can overtake each other; the connections our clients stand for (Redis, Kafka and
//! database clients all use TCP) cannot. So a client has one call in flight at a time (its
//! tasks take turns, first come first served), and a server drops a request that arrives after
//! a later request of the same client endpoint: only a request whose caller already timed out
//! can be overtaken, and it counts as lost, never as applied out of order.
//!
//! Messages travel as Rust values (madsim's raw datagrams): latency, loss, clogs, pauses and
//! crashes all act on them.

use super::topology::{NodeName, PORT};
use madsim::net::Endpoint;
use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The tag requests travel on; replies use per-call tags above it.
const REQUEST_TAG: u64 = 1;

/// A request's kind, for counting round trips ([`Wire::round_trips`]): a short stable name
/// such as `kafka.fetch`.
pub trait Message: Any + Send + Sync {
    /// The kind of this request.
    fn kind(&self) -> &'static str;
}

/// What every client of a run shares: the reply tags it hands out and the count of calls made,
/// by request kind. One per run, so both stay deterministic.
#[derive(Default)]
pub struct Wire {
    tags: AtomicU64,
    calls: Mutex<BTreeMap<(NodeName, SocketAddr, &'static str), u64>>,
}

impl Wire {
    /// Calls made so far (each a round trip begun, answered or not), by caller, server and
    /// request kind.
    pub fn round_trips(&self) -> Vec<(NodeName, NodeName, &'static str, u64)> {
        let calls = self.calls.lock().expect("round trips");
        let mut out: BTreeMap<(NodeName, NodeName, &'static str), u64> = BTreeMap::new();
        for (&(from, to, kind), &n) in calls.iter() {
            let to = NodeName::of_addr(to).expect("calls go to the run's nodes");
            *out.entry((from, to, kind)).or_default() += n;
        }
        out.into_iter().map(|((a, b, k), n)| (a, b, k, n)).collect()
    }

    fn count(&self, from: NodeName, to: SocketAddr, kind: &'static str) {
        *self
            .calls
            .lock()
            .expect("round trips")
            .entry((from, to, kind))
            .or_insert(0) += 1;
    }
}

struct Request<Q> {
    reply_tag: u64,
    body: Q,
}

/// Why a call has no answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RpcError {
    /// No reply in time (lost, clogged, the server is down, paused or slow).
    Timeout,
    /// The local endpoint failed.
    Io(String),
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RpcError::Timeout => f.write_str("timeout"),
            RpcError::Io(e) => write!(f, "io: {e}"),
        }
    }
}

/// Serves requests of type `Q` on `PORT` of this node until the node dies: `handle` turns each
/// into a reply, or `None` to send none (a lost reply).
pub async fn serve<Q, R>(mut handle: impl FnMut(Q, SocketAddr) -> Option<R>)
where
    Q: Any + Send + Sync,
    R: Any + Send + Sync,
{
    serve_deferred(move |body, responder: Responder<R>| {
        if let Some(reply) = handle(body, responder.client()) {
            responder.reply(reply);
        }
    })
    .await
}

/// Serves requests of type `Q` on `PORT` of this node until the node dies, answering each
/// through its [`Responder`]: `handle` may reply at once, keep the responder and reply later
/// (a long poll), or drop it (a lost reply). A request is still taken in arrival order, and one
/// overtaken by a later request of the same client endpoint is dropped unread.
pub async fn serve_deferred<Q, R>(mut handle: impl FnMut(Q, Responder<R>))
where
    Q: Any + Send + Sync,
    R: Any + Send + Sync,
{
    let ep = Endpoint::bind(("0.0.0.0", PORT)).await.expect("bind server port");
    // The newest request seen from each client endpoint (tags grow with every call of a run).
    let newest: Arc<Mutex<BTreeMap<SocketAddr, u64>>> = Arc::default();
    loop {
        let Ok((payload, from)) = ep.recv_from_raw(REQUEST_TAG).await else {
            continue;
        };
        let Ok(req) = payload.downcast::<Request<Q>>() else {
            panic!("a request of the wrong type reached {:?}", ep.local_addr());
        };
        let Request { reply_tag, body } = *req;
        {
            let mut newest = newest.lock().expect("newest requests");
            let last = newest.entry(from).or_insert(0);
            if reply_tag < *last {
                continue;
            }
            *last = reply_tag;
        }
        let responder = Responder {
            ep: ep.clone(),
            to: from,
            reply_tag,
            newest: newest.clone(),
            reply: PhantomData,
        };
        handle(body, responder);
    }
}

/// The way back to one request's caller, kept by the server until it has the answer.
///
/// The reply goes nowhere once the caller cannot be waiting for it, and which of these holds
/// depends on the run's events only, so it is deterministic:
/// - a later request came from the same client endpoint: the caller gave up on this call
///   (a client has one call in flight, see [`Client`]), so [`Responder::reply`] sends nothing;
/// - the caller's node crashed, or its endpoint is gone: the network drops the reply (madsim
///   closes a killed node's sockets);
/// - the caller's node restarted and has the same port again: the reply's tag matches no call
///   of the new incarnation (tags are unique in a run), so it is never read.
///
/// Dropping a responder unanswered is a lost reply; the server's own crash drops every one it
/// holds, as a broker's crash closes its connections.
pub struct Responder<R> {
    ep: Endpoint,
    to: SocketAddr,
    reply_tag: u64,
    newest: Arc<Mutex<BTreeMap<SocketAddr, u64>>>,
    reply: PhantomData<fn(R)>,
}

impl<R: Any + Send + Sync> Responder<R> {
    /// The caller's endpoint.
    pub fn client(&self) -> SocketAddr {
        self.to
    }

    /// Whether the caller may still wait for this reply: no later request of its endpoint has
    /// reached the server.
    pub fn is_current(&self) -> bool {
        self.newest.lock().expect("newest requests").get(&self.to) == Some(&self.reply_tag)
    }

    /// Sends `reply` to the caller, unless a later request of its endpoint superseded this
    /// one (then nothing is sent). Only the reply's trip is spawned: the server goes on at once.
    pub fn reply(self, reply: R) {
        if !self.is_current() {
            return;
        }
        let Responder {
            ep, to, reply_tag, ..
        } = self;
        madsim::task::spawn(async move {
            let _ = ep.send_to_raw(to, reply_tag, Box::new(reply)).await;
        });
    }
}

/// A caller's endpoint. One per node incarnation.
pub struct Client {
    ep: Endpoint,
    wire: Arc<Wire>,
    from: NodeName,
    turn: Turn,
}

/// First come, first served: one call in flight per client, like requests on one connection.
#[derive(Default)]
struct Turn {
    /// Whether a call is in flight, and who waits for the next turn.
    state: std::sync::Mutex<(bool, std::collections::VecDeque<std::task::Waker>)>,
}

struct TurnGuard<'a>(&'a Turn);

impl Turn {
    async fn take(&self) -> TurnGuard<'_> {
        std::future::poll_fn(|cx| {
            let mut st = self.state.lock().expect("turn");
            if st.0 {
                st.1.push_back(cx.waker().clone());
                std::task::Poll::Pending
            } else {
                st.0 = true;
                std::task::Poll::Ready(())
            }
        })
        .await;
        TurnGuard(self)
    }
}

impl Drop for TurnGuard<'_> {
    fn drop(&mut self) {
        let mut st = self.0.state.lock().expect("turn");
        st.0 = false;
        if let Some(next) = st.1.pop_front() {
            next.wake();
        }
    }
}

impl Client {
    /// Binds an ephemeral port on this node. `wire` hands out reply tags and must be shared by
    /// every client of the run: a restarted node may get its old port back, and a reply still in
    /// flight to its previous incarnation must not match a new call.
    pub async fn bind(wire: Arc<Wire>, from: NodeName) -> Self {
        let ep = Endpoint::bind("0.0.0.0:0").await.expect("bind client endpoint");
        Client {
            ep,
            wire,
            from,
            turn: Turn::default(),
        }
    }

    /// Sends `body` to the server at `dst` and waits up to `timeout` for its reply.
    pub async fn call<Q, R>(&self, dst: SocketAddr, body: Q, timeout: Duration) -> Result<R, RpcError>
    where
        Q: Message,
        R: Any + Send + Sync,
    {
        let _turn = self.turn.take().await;
        self.wire.count(self.from, dst, body.kind());
        let reply_tag = REQUEST_TAG + 1 + self.wire.tags.fetch_add(1, Ordering::Relaxed);
        let req = Request { reply_tag, body };
        self.ep
            .send_to_raw(dst, REQUEST_TAG, Box::new(req))
            .await
            .map_err(|e| RpcError::Io(e.to_string()))?;
        match madsim::time::timeout(timeout, self.ep.recv_from_raw(reply_tag)).await {
            Err(_) => Err(RpcError::Timeout),
            Ok(Err(e)) => Err(RpcError::Io(e.to_string())),
            Ok(Ok((payload, _))) => match payload.downcast::<R>() {
                Ok(reply) => Ok(*reply),
                Err(_) => panic!("a reply of the wrong type from {dst}"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use madsim::runtime::{Handle, Runtime};
    use std::net::IpAddr;

    /// A request that says how to answer it: 0 at once, anything else later.
    struct Ask(u32);

    impl Message for Ask {
        fn kind(&self) -> &'static str {
            "ask"
        }
    }

    const SERVER: &str = "10.0.0.1";

    /// The responders the test server keeps, with the number each request carried.
    type Held = Arc<Mutex<Vec<(u32, Responder<u32>)>>>;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an ip")
    }

    /// A server on a node of its own that answers `Ask(0)` at once with 100 and keeps the
    /// responders of the others in `held`.
    fn server(held: Held) {
        let node = Handle::current()
            .create_node()
            .name("server")
            .ip(ip(SERVER))
            .build();
        node.spawn(async move {
            serve_deferred(move |Ask(n), r: Responder<u32>| {
                if n == 0 {
                    r.reply(100);
                } else {
                    held.lock().expect("held").push((n, r));
                }
            })
            .await
        });
    }

    /// Answers the held request `n` with `n`.
    fn answer(held: &Mutex<Vec<(u32, Responder<u32>)>>, n: u32) -> bool {
        let mut held = held.lock().expect("held");
        let i = held.iter().position(|(m, _)| *m == n).expect("held");
        let (_, r) = held.remove(i);
        let current = r.is_current();
        r.reply(n);
        current
    }

    #[test]
    fn a_deferred_reply_reaches_its_caller_and_one_superseded_by_a_later_call_goes_nowhere() {
        let rt = Runtime::with_seed_and_config(1, madsim::Config::default());
        rt.block_on(async {
            let held: Held = Arc::default();
            server(held.clone());
            let wire = Arc::new(Wire::default());
            let client = Handle::current()
                .create_node()
                .name("client")
                .ip(ip("10.0.0.2"))
                .build();
            let (w, h) = (wire.clone(), held.clone());
            client
                .spawn(async move {
                    let dst = SocketAddr::new(ip(SERVER), PORT);
                    madsim::time::sleep(Duration::from_millis(1)).await;
                    let c = Arc::new(Client::bind(w, crate::net::topology::NodeName::Worker(1)).await);
                    let at_once = c.call::<Ask, u32>(dst, Ask(0), Duration::from_secs(1)).await;
                    assert_eq!(at_once, Ok(100));
                    // Held past the caller's patience: it gives up.
                    let gave_up = c.call::<Ask, u32>(dst, Ask(1), Duration::from_millis(100)).await;
                    assert_eq!(gave_up, Err(RpcError::Timeout));
                    // A later call waits while the server answers the first one, then it.
                    let c2 = c.clone();
                    let later = madsim::task::spawn(async move {
                        c2.call::<Ask, u32>(dst, Ask(2), Duration::from_secs(5)).await
                    });
                    madsim::time::sleep(Duration::from_millis(500)).await;
                    assert!(!answer(&h, 1), "superseded by the later call: sent nowhere");
                    madsim::time::sleep(Duration::from_millis(500)).await;
                    assert!(answer(&h, 2));
                    assert_eq!(later.await.expect("the later call"), Ok(2));
                })
                .await
                .expect("the client");
            assert_eq!(
                wire.round_trips(),
                vec![(NodeName::Worker(1), NodeName::Redis, "ask", 3)]
            );
        });
    }

    #[test]
    fn a_reply_to_a_crashed_caller_goes_nowhere_and_its_next_incarnation_never_reads_it() {
        let rt = Runtime::with_seed_and_config(2, madsim::Config::default());
        rt.block_on(async {
            let held: Held = Arc::default();
            server(held.clone());
            let wire = Arc::new(Wire::default());
            let got: Arc<Mutex<Vec<Result<u32, RpcError>>>> = Arc::default();
            let starts = Arc::new(AtomicU64::new(0));
            let (w, g) = (wire.clone(), got.clone());
            let client = Handle::current()
                .create_node()
                .name("client")
                .ip(ip("10.0.0.2"))
                .init(move || {
                    let (w, g, starts) = (w.clone(), g.clone(), starts.clone());
                    async move {
                        let dst = SocketAddr::new(ip(SERVER), PORT);
                        madsim::time::sleep(Duration::from_millis(1)).await;
                        let c = Client::bind(w, crate::net::topology::NodeName::Worker(1)).await;
                        // Each incarnation's call is held: 7 first, then 9.
                        let ask = if starts.fetch_add(1, Ordering::Relaxed) == 0 {
                            7
                        } else {
                            9
                        };
                        let r = c.call::<Ask, u32>(dst, Ask(ask), Duration::from_secs(10)).await;
                        g.lock().expect("got").push(r);
                    }
                })
                .build();
            madsim::time::sleep(Duration::from_millis(100)).await;
            let h = Handle::current();
            h.kill(client.id());
            // The crashed caller's reply: sent (nothing came after it), dropped by the network.
            assert!(answer(&held, 7), "no later request came from that endpoint");
            madsim::time::sleep(Duration::from_millis(100)).await;
            assert!(got.lock().expect("got").is_empty());
            // Its next incarnation waits for its own call; nothing meant for the old one
            // reaches it, whether or not it has the old port again.
            h.restart(client.id());
            madsim::time::sleep(Duration::from_millis(100)).await;
            assert_eq!(held.lock().expect("held").len(), 1);
            answer(&held, 9);
            madsim::time::sleep(Duration::from_millis(100)).await;
            assert_eq!(*got.lock().expect("got"), vec![Ok(9)]);
        });
    }
}
