//! The floor: what a run's network traffic costs with no logic at all, for `sim bench`.
//!
//! A null workload with the run's topology replays the run's round trips (the same count from
//! each caller to each server, [`super::RunResult::round_trips`]) and does nothing else: no
//! models, no trace, no checks. Its wall time is what the harness can never beat on that
//! carrier, so harness time / floor time per seed says how much the logic costs.
//!
//! Three carriers: [`Carrier::Rpc`] is the harness's own (`net::rpc` over `net::transport`, a
//! server per node, served inline at each request's arrival as the harness's are); [`Carrier::Datagrams`] is the same request/reply over madsim's raw
//! datagrams (what the harness used before its own transport), for reference;
//! [`Carrier::Sleeps`] is the leanest the virtual clock allows (per round trip, two sleeps of a
//! drawn latency around a direct call).

use crate::net::rpc::{self, Client};
use crate::net::topology::NodeName;
use crate::net::topology::PORT;
use crate::net::transport::{Network, Rules};
use crate::rng;
use crate::scenario::config::SimConfig;
use madsim::runtime::{Handle, Runtime};
use rand::Rng;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How the floor's messages travel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Carrier {
    /// The harness's RPC over its own transport.
    Rpc,
    /// Request and reply over madsim's datagrams.
    Datagrams,
    /// Two sleeps on the virtual clock per round trip, no server task.
    Sleeps,
}

/// One kind of call: to which server, of which request kind.
type Call = (NodeName, &'static str);

/// How long a floor call waits for its reply (nothing is ever lost on the floor).
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the null workload of `trips` (caller, server, calls) for `seed` with `config`'s
/// topology and latencies over `carrier`; returns its wall time.
pub fn floor(
    seed: u64,
    config: &SimConfig,
    trips: &[(NodeName, NodeName, &'static str, u64)],
    carrier: Carrier,
) -> Duration {
    let started = Instant::now();
    let latency = Duration::from_millis(config.latency_ms_min)..Duration::from_millis(config.latency_ms_max);
    let mut madsim_config = madsim::Config::default();
    madsim_config.net.send_latency = latency.start..latency.end + Duration::from_nanos(1);
    let rt = Runtime::with_seed_and_config(seed, madsim_config);
    // Each caller's calls, in the order they go out: round-robin over its servers, so a
    // caller's traffic is spread over the run as the harness's is.
    let mut by_caller: BTreeMap<NodeName, Vec<(Call, u64)>> = BTreeMap::new();
    for &(from, to, kind, n) in trips {
        by_caller.entry(from).or_default().push(((to, kind), n));
    }
    let workers = config.workers;
    let latency_us = (latency.start.as_micros() as u64, latency.end.as_micros() as u64);
    let net = Arc::new(Network::new(Rules::open(latency_us), rng::stream(seed, "net")));
    let net_gone = Arc::downgrade(&net);
    rt.block_on(async move {
        let h = Handle::current();
        let mut nodes = BTreeMap::new();
        for name in NodeName::all(workers) {
            let node = h.create_node().name(name.to_string()).ip(name.ip());
            let net = net.clone();
            let node = match carrier {
                Carrier::Rpc => node
                    .init(move || {
                        let net = net.clone();
                        async move { rpc::serve(&net, name, |q: Ping, _| Some(q.n)).await }
                    })
                    .build(),
                Carrier::Datagrams => node.init(echo_datagrams).build(),
                Carrier::Sleeps => node.build(),
            };
            nodes.insert(name, node);
        }
        let mut calls = Vec::new();
        for (from, servers) in by_caller {
            let order = round_robin(&servers);
            let net = net.clone();
            let mut draw = rng::stream(seed, &format!("floor-{from}"));
            let latency = latency.clone();
            calls.push(nodes[&from].spawn(async move {
                match carrier {
                    Carrier::Rpc => {
                        let client = Client::new(net, from);
                        for (i, (to, kind)) in order.into_iter().enumerate() {
                            let ping = Ping { kind, n: i as u64 };
                            let reply: Result<u64, _> = client.call(to.addr(), ping, CALL_TIMEOUT).await;
                            assert_eq!(reply, Ok(i as u64), "the floor loses nothing");
                        }
                    }
                    Carrier::Datagrams => {
                        let ep = madsim::net::Endpoint::bind("0.0.0.0:0").await.expect("bind");
                        for (i, (to, _)) in order.into_iter().enumerate() {
                            let tag = i as u64 + 1;
                            ep.send_to_raw(to.addr(), 0, Box::new(tag)).await.expect("send");
                            let (reply, _) = madsim::time::timeout(CALL_TIMEOUT, ep.recv_from_raw(tag))
                                .await
                                .expect("the floor loses nothing")
                                .expect("recv");
                            assert_eq!(reply.downcast::<u64>().ok().map(|b| *b), Some(tag));
                        }
                    }
                    Carrier::Sleeps => {
                        let mut served = 0u64;
                        for _ in order {
                            madsim::time::sleep(draw.gen_range(latency.clone())).await;
                            served = std::hint::black_box(served + 1);
                            madsim::time::sleep(draw.gen_range(latency.clone())).await;
                        }
                    }
                }
            }));
        }
        for call in calls {
            call.await.expect("a floor caller");
        }
        // Every node killed and its tasks dropped before the runtime goes: a runtime dropped
        // with its servers' tasks alive kept them, and what they hold, alive (our network for
        // the RPC floor; for the datagram floor, the endpoints and the wakers parked in
        // madsim's network, about a third of a MiB a run): `sim bench`'s peak memory grew
        // with its seed count (95 MiB with 100 seeds, 190 MiB with 400).
        for node in nodes.values() {
            h.kill(node.id());
        }
        madsim::time::sleep(Duration::from_millis(1)).await;
    });
    drop(rt);
    assert!(
        net_gone.upgrade().is_none(),
        "a floor run's network is freed with its runtime"
    );
    started.elapsed()
}

/// A server over madsim's datagrams that sends each request's tag back on that tag.
async fn echo_datagrams() {
    let ep = madsim::net::Endpoint::bind(("0.0.0.0", PORT))
        .await
        .expect("bind the floor's port");
    loop {
        let Ok((payload, from)) = ep.recv_from_raw(0).await else {
            continue;
        };
        let tag = *payload.downcast::<u64>().expect("a floor tag");
        let ep = ep.clone();
        madsim::task::spawn(async move {
            let _ = ep.send_to_raw(from, tag, Box::new(tag)).await;
        });
    }
}

/// A floor request: it stands for a request of `kind`, so round trips count the same.
struct Ping {
    kind: &'static str,
    n: u64,
}

impl rpc::Message for Ping {
    fn kind(&self) -> &'static str {
        self.kind
    }
}

/// `calls` interleaved: one of each kind to each server in turn while any has calls left.
fn round_robin<T: Copy>(calls: &[(T, u64)]) -> Vec<T> {
    let total: u64 = calls.iter().map(|(_, n)| n).sum();
    let mut left: Vec<(T, u64)> = calls.to_vec();
    let mut out = Vec::with_capacity(total as usize);
    while out.len() < total as usize {
        for (to, n) in left.iter_mut().filter(|(_, n)| *n > 0) {
            out.push(*to);
            *n -= 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_interleave_over_servers_and_none_is_lost() {
        let order = round_robin(&[(NodeName::Redis, 3), (NodeName::Kafka, 1)]);
        assert_eq!(
            order,
            vec![NodeName::Redis, NodeName::Kafka, NodeName::Redis, NodeName::Redis]
        );
    }

    #[test]
    fn the_floor_replays_a_runs_round_trips_on_both_carriers() {
        let config = SimConfig::default();
        let r = super::super::run(3, &config);
        assert!(
            r.round_trips.iter().map(|t| t.3).sum::<u64>() > 100,
            "{:?}",
            r.round_trips
        );
        for carrier in [Carrier::Rpc, Carrier::Datagrams, Carrier::Sleeps] {
            // A floor call that failed would panic; finishing is the test.
            let wall = floor(3, &config, &r.round_trips, carrier);
            assert!(wall > Duration::ZERO);
        }
    }
}
