//! The network between simulated nodes: request/response over madsim's datagrams.

pub mod rpc;
pub mod topology;
