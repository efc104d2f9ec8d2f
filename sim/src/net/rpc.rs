//! Request/response between simulated nodes over madsim's network.
//!
//! A server owns an [`Endpoint`] and answers each request as it arrives (the state change
//! happens at once, in arrival order; only the reply's trip is spawned). A client sends with a
//! fresh reply tag per call, so a late reply can never be taken for the answer to a later
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

use super::topology::PORT;
use madsim::net::Endpoint;
use std::any::Any;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
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
    calls: std::sync::Mutex<std::collections::BTreeMap<&'static str, u64>>,
}

impl Wire {
    /// Calls made so far (each a round trip begun, answered or not), by request kind.
    pub fn round_trips(&self) -> std::collections::BTreeMap<&'static str, u64> {
        self.calls.lock().expect("round trips").clone()
    }

    fn count(&self, kind: &'static str) {
        *self.calls.lock().expect("round trips").entry(kind).or_insert(0) += 1;
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
    let ep = Endpoint::bind(("0.0.0.0", PORT)).await.expect("bind server port");
    // The newest request seen from each client endpoint (tags grow with every call of a run).
    let mut newest: std::collections::BTreeMap<SocketAddr, u64> = std::collections::BTreeMap::new();
    loop {
        let Ok((payload, from)) = ep.recv_from_raw(REQUEST_TAG).await else {
            continue;
        };
        let Ok(req) = payload.downcast::<Request<Q>>() else {
            panic!("a request of the wrong type reached {:?}", ep.local_addr());
        };
        let Request { reply_tag, body } = *req;
        let last = newest.entry(from).or_insert(0);
        if reply_tag < *last {
            continue;
        }
        *last = reply_tag;
        let Some(reply) = handle(body, from) else { continue };
        let ep = ep.clone();
        madsim::task::spawn(async move {
            let _ = ep.send_to_raw(from, reply_tag, Box::new(reply)).await;
        });
    }
}

/// A caller's endpoint. One per node incarnation.
pub struct Client {
    ep: Endpoint,
    wire: Arc<Wire>,
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
    pub async fn bind(wire: Arc<Wire>) -> Self {
        let ep = Endpoint::bind("0.0.0.0:0").await.expect("bind client endpoint");
        Client {
            ep,
            wire,
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
        self.wire.count(body.kind());
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
