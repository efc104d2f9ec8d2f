//! The run's topology: which nodes exist, what they are called and where they listen. The only
//! place node names are spelled and parsed, and addresses are made.
//!
//! `redis` 10.0.0.1, `kafka` 10.0.0.2, `db` 10.0.0.3, `producer` 10.0.0.4, `worker-N` 10.0.1.N
//! (N from 1 to [`WORKERS_MAX`]); every server listens on [`PORT`].

use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;

/// The port every server listens on.
pub const PORT: u16 = 7000;

/// The most workers a run may have (the last octet of their addresses).
pub const WORKERS_MAX: u8 = 254;

/// A node of the run, by role.
///
/// ```
/// use sim::NodeName;
///
/// let worker: NodeName = "worker-2".parse().unwrap();
/// assert_eq!(worker, NodeName::Worker(2));
/// assert_eq!(worker.to_string(), "worker-2"); // as traces and scenario files name it
/// assert!(worker.is_worker() && !NodeName::Redis.is_worker());
/// assert!("worker-0".parse::<NodeName>().is_err()); // workers count from 1
///
/// // Every node of a run with two workers.
/// let names: Vec<String> = NodeName::all(2).iter().map(|n| n.to_string()).collect();
/// assert_eq!(names, ["redis", "kafka", "db", "producer", "worker-1", "worker-2"]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NodeName {
    /// The Redis server.
    Redis,
    /// The Kafka broker.
    Kafka,
    /// The database.
    Db,
    /// The producer.
    Producer,
    /// Worker N (from 1).
    Worker(u8),
}

impl NodeName {
    /// The servers in the order the runs have always listed them.
    pub const SERVERS: [NodeName; 3] = [NodeName::Redis, NodeName::Db, NodeName::Kafka];

    /// Every node of a run with `workers` workers: the servers, the producer, the workers.
    pub fn all(workers: u32) -> Vec<NodeName> {
        let mut nodes = vec![NodeName::Redis, NodeName::Kafka, NodeName::Db, NodeName::Producer];
        nodes.extend(Self::workers(workers));
        nodes
    }

    /// The workers of a run, in order.
    pub fn workers(workers: u32) -> impl Iterator<Item = NodeName> {
        let n = u8::try_from(workers)
            .ok()
            .filter(|n| *n <= WORKERS_MAX)
            .unwrap_or_else(|| panic!("{workers} workers: a run has at most {WORKERS_MAX}"));
        (1..=n).map(NodeName::Worker)
    }

    /// Whether it is a worker.
    pub fn is_worker(self) -> bool {
        matches!(self, NodeName::Worker(_))
    }

    /// Its IP address.
    pub fn ip(self) -> IpAddr {
        let [a, b, c, d] = match self {
            NodeName::Redis => [10, 0, 0, 1],
            NodeName::Kafka => [10, 0, 0, 2],
            NodeName::Db => [10, 0, 0, 3],
            NodeName::Producer => [10, 0, 0, 4],
            NodeName::Worker(n) => [10, 0, 1, n],
        };
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    /// Where its server listens.
    pub fn addr(self) -> SocketAddr {
        SocketAddr::new(self.ip(), PORT)
    }

    /// The node at `addr`, if it is one of ours.
    pub fn of_addr(addr: SocketAddr) -> Option<NodeName> {
        let IpAddr::V4(ip) = addr.ip() else { return None };
        match ip.octets() {
            [10, 0, 0, 1] => Some(NodeName::Redis),
            [10, 0, 0, 2] => Some(NodeName::Kafka),
            [10, 0, 0, 3] => Some(NodeName::Db),
            [10, 0, 0, 4] => Some(NodeName::Producer),
            [10, 0, 1, n] if n >= 1 => Some(NodeName::Worker(n)),
            _ => None,
        }
    }
}

/// `worker-N` for every worker number N, as static text (see [`NodeName::label`]): the bytes,
/// then each name's text, both built at compile time.
static WORKER_NAME_BYTES: [([u8; 10], usize); 256] = {
    let mut table = [([0u8; 10], 0); 256];
    let mut n = 0;
    while n < 256 {
        let (name, len) = &mut table[n];
        let prefix = b"worker-";
        let mut i = 0;
        while i < prefix.len() {
            name[i] = prefix[i];
            i += 1;
        }
        if n >= 100 {
            name[i] = b'0' + (n / 100) as u8;
            i += 1;
        }
        if n >= 10 {
            name[i] = b'0' + (n / 10 % 10) as u8;
            i += 1;
        }
        name[i] = b'0' + (n % 10) as u8;
        *len = i + 1;
        n += 1;
    }
    table
};

static WORKER_NAMES: [&str; 256] = {
    let mut names = [""; 256];
    let mut n = 0;
    while n < 256 {
        let (bytes, len) = &WORKER_NAME_BYTES[n];
        let (text, _) = bytes.split_at(*len);
        names[n] = match std::str::from_utf8(text) {
            Ok(name) => name,
            Err(_) => panic!("a worker's name is ASCII"),
        };
        n += 1;
    }
    names
};

impl NodeName {
    /// The name as the trace's static label (what `Display` writes): every trace event carries
    /// its node's name, and this one is never copied.
    pub fn label(self) -> crate::label::Label {
        crate::label::Label::fixed(self.name())
    }

    /// The name as static text (the workers' from a table built at compile time).
    fn name(self) -> &'static str {
        match self {
            NodeName::Redis => "redis",
            NodeName::Kafka => "kafka",
            NodeName::Db => "db",
            NodeName::Producer => "producer",
            NodeName::Worker(n) => WORKER_NAMES[usize::from(n)],
        }
    }
}

impl fmt::Display for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for NodeName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "redis" => NodeName::Redis,
            "kafka" => NodeName::Kafka,
            "db" => NodeName::Db,
            "producer" => NodeName::Producer,
            w => match w.strip_prefix("worker-").and_then(|n| n.parse::<u8>().ok()) {
                Some(n)
                    if (1..=WORKERS_MAX).contains(&n) && n.to_string().len() == w.len() - "worker-".len() =>
                {
                    NodeName::Worker(n)
                }
                _ => return Err(format!("unknown node {s:?}")),
            },
        })
    }
}

/// Ordered by name, as the strings sort: the order maps of nodes have always been walked in
/// (and so the order of heals in a trace).
impl Ord for NodeName {
    #[inline]
    fn cmp(&self, other: &Self) -> Ordering {
        // Node-keyed maps are looked up on every step of a run: this compares two small
        // numbers instead of the names (making two strings per comparison was 6 % of a run).
        self.name_order().cmp(&other.name_order())
    }
}

impl NodeName {
    /// A number that sorts as the names do: `db`, `kafka`, `producer`, `redis`, then the
    /// workers as their names sort (`worker-10` before `worker-2`).
    #[inline]
    fn name_order(self) -> u16 {
        match self {
            NodeName::Db => 0,
            NodeName::Kafka => 1,
            NodeName::Producer => 2,
            NodeName::Redis => 3,
            // Looked up, not computed: the comparison runs tens of thousands of times a run.
            NodeName::Worker(n) => WORKER_ORDER[n as usize],
        }
    }
}

/// [`worker_order`] of every worker number.
const WORKER_ORDER: [u16; 256] = {
    let mut table = [0; 256];
    let mut n = 0;
    while n < 256 {
        table[n] = worker_order(n as u8);
        n += 1;
    }
    table
};

/// Worker `n`'s place among the names: its decimal digits, left-aligned, each digit d as
/// d + 1 and a missing one as 0, in base 11 (so that "2" > "10" and "25" > "254" > "2", as
/// strings compare), after the four servers.
const fn worker_order(n: u8) -> u16 {
    const WORKERS: u16 = 10;
    let (a, b, c) = if n >= 100 {
        (n / 100 + 1, n / 10 % 10 + 1, n % 10 + 1)
    } else if n >= 10 {
        (n / 10 + 1, n % 10 + 1, 0)
    } else {
        (n + 1, 0, 0)
    };
    WORKERS + a as u16 * 121 + b as u16 * 11 + c as u16
}

impl PartialOrd for NodeName {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Serialize for NodeName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for NodeName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_addresses_and_order_round_trip() {
        let nodes = NodeName::all(u32::from(WORKERS_MAX));
        for n in &nodes {
            assert_eq!(n.to_string().parse::<NodeName>(), Ok(*n));
            assert_eq!(n.label(), n.to_string());
            assert_eq!(NodeName::of_addr(n.addr()), Some(*n));
        }
        let mut by_name: Vec<String> = nodes.iter().map(|n| n.to_string()).collect();
        by_name.sort();
        let mut sorted = nodes.clone();
        sorted.sort();
        assert_eq!(by_name, sorted.iter().map(|n| n.to_string()).collect::<Vec<_>>());
        for n in [1u8, 9, 10, 99, 100, 254, 255] {
            assert_eq!(NodeName::Worker(n).label(), format!("worker-{n}"));
            assert_eq!(NodeName::Worker(n).to_string(), format!("worker-{n}"));
        }
        for bad in ["worker-0", "worker-01", "worker-255", "worker-", "Redis", ""] {
            assert!(bad.parse::<NodeName>().is_err(), "{bad}");
        }
    }
}
