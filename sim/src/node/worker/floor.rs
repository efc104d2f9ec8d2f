//! The fenced database as the floor of a worker's fencing tokens: with a database that checks
//! tokens, the highest token it has accepted for a key is the authority the library's fenced
//! protocol must stay above (see [`FenceFloor`]), not Redis, which can lose its counter.

use crate::model::db::{DbReply, DbRequest};
use crate::net::rpc::Client;
use idempotency::fenced::FenceFloor;
use idempotency::key::EventKey;
use idempotency::store::{BoxFuture, StoreError};
use std::sync::Arc;
use std::time::Duration;

/// Asks the database for the highest fence it holds per key.
pub(super) struct DbFloor {
    pub(super) client: Arc<Client>,
    pub(super) addr: std::net::SocketAddr,
    pub(super) timeout: Duration,
    /// Who asks (the database records it).
    pub(super) worker: String,
}

impl DbFloor {
    async fn call(&self, req: DbRequest) -> Result<DbReply, StoreError> {
        self.client
            .call::<DbRequest, DbReply>(self.addr, req, self.timeout)
            .await
            .map_err(crate::node::redis::store_error)
    }
}

/// Both by the Redis key: the simulated database keys its fences by the key its commits carry
/// ([`crate::model::db::Apply::key`], the handler's `ctx.key()`).
impl FenceFloor for DbFloor {
    fn highest<'a>(&'a self, event: &'a EventKey) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            let req = DbRequest::HighestFence {
                key: event.key.clone(),
                worker: self.worker.clone(),
            };
            match self.call(req).await? {
                DbReply::HighestFence(h) => Ok(h),
                other => Err(StoreError::Protocol(format!("fence floor: {other:?}"))),
            }
        })
    }

    fn claim<'a>(&'a self, event: &'a EventKey, fence: u64) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let req = DbRequest::ClaimFence {
                key: event.key.clone(),
                fence,
                worker: self.worker.clone(),
            };
            match self.call(req).await? {
                DbReply::Claimed(_) => Ok(()),
                other => Err(StoreError::Protocol(format!("fence claim: {other:?}"))),
            }
        })
    }
}
