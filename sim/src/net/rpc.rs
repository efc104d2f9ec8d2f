//! Request/response between simulated nodes over the run's [`Network`].
//!
//! A server takes each request as it arrives, in arrival order (the state change happens at
//! once). [`serve`] answers each at once; [`serve_deferred`] hands the server a [`Responder`]
//! to answer through when it is ready, for a long poll (Kafka's JoinGroup and Fetch wait at the
//! broker). A client gives up on a call after its timeout. Both let the transport run the
//! handler at a request's arrival, in the caller's task ([`Network::listen_inline`]), so a
//! handler must not depend on the task it runs in.
//!
//! A client has one call in flight at a time (its tasks take turns, first come first served),
//! as requests on one TCP connection: with the transport's one queue per server, nothing a
//! client sends is overtaken by its own later requests.

use super::topology::NodeName;
use super::transport::{CallError, Incoming, Inline, Network, ReplyTo};
use std::any::Any;
use std::fmt;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A request's kind, for counting round trips ([`Network::round_trips`]): a short stable name
/// such as `Fetch`.
pub trait Message: Any + Send {
    /// The kind of this request.
    fn kind(&self) -> &'static str;
}

/// Why a call has no answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RpcError {
    /// No reply in time (lost, clogged, cut off, the server paused or slow): it may have run.
    Timeout,
    /// Nobody listened at the server's address (down): it never reached a server.
    Refused,
    /// The server crashed after the request was sent: it may have run.
    Reset,
    /// The call could not be made (an address outside the run).
    Io(String),
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RpcError::Timeout => f.write_str("timeout"),
            RpcError::Refused => f.write_str("connection refused"),
            RpcError::Reset => f.write_str("connection reset"),
            RpcError::Io(e) => write!(f, "io: {e}"),
        }
    }
}

/// Serves requests of type `Q` as `node` until its task ends (the node dies): `handle` turns
/// each, with its sender, into a reply, or `None` to send none (a lost reply).
pub async fn serve<Q, R>(
    net: &Arc<Network>,
    node: NodeName,
    mut handle: impl FnMut(Q, NodeName) -> Option<R> + Send + 'static,
) where
    Q: Any + Send,
    R: Any + Send,
{
    serve_deferred(net, node, move |body, responder: Responder<R>| {
        if let Some(reply) = handle(body, responder.client()) {
            responder.reply(reply);
        }
    })
    .await
}

/// Serves requests of type `Q` as `node` until its task ends, answering each through its
/// [`Responder`]: `handle` may reply at once, keep the responder and reply later (a long
/// poll), or drop it (a lost reply). Requests are taken in arrival order.
///
/// The transport runs `handle` itself when a request arrives while the server is not paused
/// and nothing is queued before it ([`Network::listen_inline`]), as the server's task would
/// at that instant; the task runs it for what queued while the node was paused, in order. So
/// `handle` must not depend on which task runs it: what it starts to run later goes through
/// timers it sets for its own node's task, not tasks it spawns.
pub async fn serve_deferred<Q, R>(
    net: &Arc<Network>,
    node: NodeName,
    handle: impl FnMut(Q, Responder<R>) + Send + 'static,
) where
    Q: Any + Send,
    R: Any + Send,
{
    let handler = inline(node, handle);
    let listener = net.listen_inline(node, handler.clone());
    loop {
        let incoming = listener.next().await;
        (handler.lock().expect("handler"))(incoming);
    }
}

/// `handle` as a handler the transport can run at a request's arrival (see
/// [`serve_deferred`]), for a server whose task also waits for other things.
pub fn inline<Q, R>(
    node: NodeName,
    mut handle: impl FnMut(Q, Responder<R>) + Send + 'static,
) -> Arc<Mutex<Inline>>
where
    Q: Any + Send,
    R: Any + Send,
{
    let handler: Inline = Box::new(move |Incoming { from, body, reply }| {
        let Ok(body) = body.downcast::<Q>() else {
            panic!("a request of the wrong type reached {node}");
        };
        handle(
            *body,
            Responder {
                from,
                reply,
                kind: PhantomData,
            },
        );
    });
    Arc::new(Mutex::new(handler))
}

/// The way back to one request's caller, kept by the server until it has the answer.
///
/// The reply goes nowhere once the caller cannot be waiting for it: it gave up (its timeout
/// passed, so its next request may already be queued), or its node crashed. Which holds
/// depends on the run's events only, so it is deterministic. Dropping a responder unanswered is
/// a lost reply; the server's own crash drops every one it holds, as a broker's crash closes
/// its connections.
pub struct Responder<R> {
    from: NodeName,
    reply: ReplyTo,
    kind: PhantomData<fn(R)>,
}

impl<R: Any + Send> Responder<R> {
    /// The caller.
    pub fn client(&self) -> NodeName {
        self.from
    }

    /// Whether the caller still waits for this reply.
    pub fn is_current(&self) -> bool {
        self.reply.is_waiting()
    }

    /// Sends `reply` to the caller (it goes nowhere if the caller no longer waits).
    pub fn reply(self, reply: R) {
        self.reply.answer(Box::new(reply));
    }
}

/// A node's client: one call in flight at a time. One per node incarnation (or per
/// connection, where a node keeps several).
pub struct Client {
    net: Arc<Network>,
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
    /// A client of node `from` on `net`.
    pub fn new(net: Arc<Network>, from: NodeName) -> Self {
        Client {
            net,
            from,
            turn: Turn::default(),
        }
    }

    /// Sends `body` to the server at `dst` and waits up to `timeout` for its reply.
    pub async fn call<Q, R>(&self, dst: SocketAddr, body: Q, timeout: Duration) -> Result<R, RpcError>
    where
        Q: Message,
        R: Any + Send,
    {
        let Some(to) = NodeName::of_addr(dst) else {
            return Err(RpcError::Io(format!("{dst} is no node of the run")));
        };
        let _turn = self.turn.take().await;
        let kind = body.kind();
        match self.net.call(self.from, to, kind, Box::new(body), timeout).await {
            Err(CallError::Timeout) => Err(RpcError::Timeout),
            Err(CallError::Refused) => Err(RpcError::Refused),
            Err(CallError::Reset) => Err(RpcError::Reset),
            Ok(reply) => match reply.downcast::<R>() {
                Ok(reply) => Ok(*reply),
                Err(_) => panic!("a reply of the wrong type from {to}"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::transport::Rules;
    use madsim::runtime::{Handle, Runtime};
    use rand::SeedableRng;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Mutex;

    /// A request that says how to answer it: 0 at once, anything else later.
    struct Ask(u32);

    impl Message for Ask {
        fn kind(&self) -> &'static str {
            "ask"
        }
    }

    const SERVER: NodeName = NodeName::Redis;
    const CLIENT: NodeName = NodeName::Worker(1);

    /// The responders the test server keeps, with the number each request carried.
    type Held = Arc<Mutex<Vec<(u32, Responder<u32>)>>>;

    fn network() -> Arc<Network> {
        Arc::new(Network::new(
            Rules::open((1000, 10_000)),
            rand_chacha::ChaCha8Rng::seed_from_u64(1),
        ))
    }

    /// A server on a node of its own that answers `Ask(0)` at once with 100 and keeps the
    /// responders of the others in `held`.
    fn server(net: &Arc<Network>, held: Held) {
        let node = Handle::current()
            .create_node()
            .name("server")
            .ip(SERVER.ip())
            .build();
        let net = net.clone();
        node.spawn(async move {
            serve_deferred(&net, SERVER, move |Ask(n), r: Responder<u32>| {
                if n == 0 {
                    r.reply(100);
                } else {
                    held.lock().expect("held").push((n, r));
                }
            })
            .await
        });
    }

    /// Answers the held request `n` with `n`; whether its caller still waited.
    fn answer(held: &Mutex<Vec<(u32, Responder<u32>)>>, n: u32) -> bool {
        let mut held = held.lock().expect("held");
        let i = held.iter().position(|(m, _)| *m == n).expect("held");
        let (_, r) = held.remove(i);
        let current = r.is_current();
        r.reply(n);
        current
    }

    #[test]
    fn a_deferred_reply_reaches_its_caller_and_one_it_gave_up_on_goes_nowhere() {
        let rt = Runtime::with_seed_and_config(1, madsim::Config::default());
        rt.block_on(async {
            let net = network();
            let held: Held = Arc::default();
            server(&net, held.clone());
            let client = Handle::current()
                .create_node()
                .name("client")
                .ip(CLIENT.ip())
                .build();
            let (n, h) = (net.clone(), held.clone());
            client
                .spawn(async move {
                    let dst = SERVER.addr();
                    madsim::time::sleep(Duration::from_millis(1)).await;
                    let c = Arc::new(Client::new(n, CLIENT));
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
                    assert!(!answer(&h, 1), "its caller gave up: sent nowhere");
                    madsim::time::sleep(Duration::from_millis(500)).await;
                    assert!(answer(&h, 2));
                    assert_eq!(later.await.expect("the later call"), Ok(2));
                })
                .await
                .expect("the client");
            assert_eq!(net.round_trips(), vec![(CLIENT, SERVER, "ask", 3)]);
        });
    }

    #[test]
    fn a_reply_to_a_crashed_caller_goes_nowhere_and_its_next_incarnation_never_reads_it() {
        let rt = Runtime::with_seed_and_config(2, madsim::Config::default());
        rt.block_on(async {
            let net = network();
            let held: Held = Arc::default();
            server(&net, held.clone());
            let got: Arc<Mutex<Vec<Result<u32, RpcError>>>> = Arc::default();
            let starts = Arc::new(AtomicU64::new(0));
            let (n, g) = (net.clone(), got.clone());
            let client = Handle::current()
                .create_node()
                .name("client")
                .ip(CLIENT.ip())
                .init(move || {
                    let (n, g, starts) = (n.clone(), g.clone(), starts.clone());
                    async move {
                        madsim::time::sleep(Duration::from_millis(1)).await;
                        let c = Client::new(n, CLIENT);
                        // Each incarnation's call is held: 7 first, then 9.
                        let ask = if starts.fetch_add(1, Ordering::Relaxed) == 0 {
                            7
                        } else {
                            9
                        };
                        let r = c
                            .call::<Ask, u32>(SERVER.addr(), Ask(ask), Duration::from_secs(10))
                            .await;
                        g.lock().expect("got").push(r);
                    }
                })
                .build();
            madsim::time::sleep(Duration::from_millis(100)).await;
            let h = Handle::current();
            h.kill(client.id());
            madsim::time::sleep(Duration::from_millis(1)).await;
            assert!(!answer(&held, 7), "its caller died: sent nowhere");
            madsim::time::sleep(Duration::from_millis(100)).await;
            assert!(got.lock().expect("got").is_empty());
            // Its next incarnation waits for its own call only.
            h.restart(client.id());
            madsim::time::sleep(Duration::from_millis(100)).await;
            assert_eq!(held.lock().expect("held").len(), 1);
            answer(&held, 9);
            madsim::time::sleep(Duration::from_millis(100)).await;
            assert_eq!(*got.lock().expect("got"), vec![Ok(9)]);
        });
    }

    /// A server that answers at once is served inline: its answers come after two trips, in
    /// the order asked, with no poll of its task; a paused one queues what arrives and serves
    /// it in order when resumed (an inline answer never overtakes a queued request); a `None`
    /// is a lost reply, and the caller times out.
    #[test]
    fn an_inline_server_answers_in_order_and_a_paused_one_queues_until_resumed() {
        let rt = Runtime::with_seed_and_config(3, madsim::Config::default());
        rt.block_on(async {
            let net = network();
            let served: Arc<Mutex<Vec<u32>>> = Arc::default();
            let polls = Arc::new(AtomicU64::new(0));
            let (n, s, p) = (net.clone(), served.clone(), polls.clone());
            let node = Handle::current()
                .create_node()
                .name("server")
                .ip(SERVER.ip())
                .build();
            node.spawn(async move {
                let serving = serve(&n, SERVER, move |Ask(k), _from| {
                    s.lock().expect("served").push(k);
                    (k != 13).then_some(k * 10)
                });
                let mut serving = std::pin::pin!(serving);
                std::future::poll_fn(|cx| {
                    p.fetch_add(1, Ordering::Relaxed);
                    std::future::Future::poll(serving.as_mut(), cx)
                })
                .await
            });
            madsim::time::sleep(Duration::from_millis(1)).await;
            let dst = SERVER.addr();
            let c = Arc::new(Client::new(net.clone(), CLIENT));
            let polls_before = polls.load(Ordering::Relaxed);
            for k in 1..=3 {
                let t0 = madsim::time::Instant::now();
                assert_eq!(
                    c.call::<Ask, u32>(dst, Ask(k), Duration::from_secs(1)).await,
                    Ok(k * 10)
                );
                let took = t0.elapsed();
                assert!(
                    took >= Duration::from_millis(2) && took <= Duration::from_millis(20),
                    "{took:?}"
                );
            }
            assert_eq!(
                polls.load(Ordering::Relaxed),
                polls_before,
                "served without its task"
            );
            // A lost reply: the caller times out.
            let lost = c.call::<Ask, u32>(dst, Ask(13), Duration::from_millis(300)).await;
            assert_eq!(lost, Err(RpcError::Timeout));
            // Paused: two callers' requests queue; resumed, they are served in arrival order.
            net.set_paused(SERVER, true);
            Handle::current().pause(node.id());
            let calls: Vec<_> = [4u32, 5]
                .into_iter()
                .map(|k| {
                    let c = Arc::new(Client::new(net.clone(), NodeName::Worker(k as u8)));
                    madsim::task::spawn(async move {
                        c.call::<Ask, u32>(SERVER.addr(), Ask(k), Duration::from_secs(5))
                            .await
                    })
                })
                .collect();
            madsim::time::sleep(Duration::from_millis(500)).await;
            assert_eq!(
                *served.lock().expect("served"),
                vec![1, 2, 3, 13],
                "nothing served while paused"
            );
            net.set_paused(SERVER, false);
            Handle::current().resume(node.id());
            for (call, k) in calls.into_iter().zip([4u32, 5]) {
                assert_eq!(call.await.expect("a call"), Ok(k * 10));
            }
            assert_eq!(*served.lock().expect("served"), vec![1, 2, 3, 13, 4, 5]);
        });
    }
}
