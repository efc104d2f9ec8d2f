//! The network between simulated nodes: [`transport`] carries messages on madsim's clock
//! (latency, loss, clogs, cut links, crashes and pauses decided as data), [`rpc`] is
//! request/response over it, [`topology`] names the nodes and their addresses, [`timer`] has
//! sleeps that set their timer once.

pub mod rpc;
pub mod timer;
pub mod topology;
pub mod transport;
