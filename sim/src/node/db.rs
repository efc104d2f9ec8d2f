//! The database node: the pure [`DbModel`] on the network. The model is the database's disk:
//! it lives in the node's lasting state, so a restart loses nothing committed.

use super::NodeCtx;
use crate::fault::{Fault, NodeFaults, Progress};
use crate::model::db::{ApplyResult, DbModel, DbReply, DbRequest};
use std::sync::{Arc, Mutex};

/// The database's lasting state.
pub struct DbNode {
    /// Every attempt and effect.
    pub model: Mutex<DbModel>,
}

impl DbNode {
    /// A database over `model`.
    pub fn new(model: DbModel) -> Self {
        DbNode {
            model: Mutex::new(model),
        }
    }
}

impl NodeFaults for DbNode {
    fn inject(&self, _: &Fault) -> bool {
        false
    }
    fn heal(&self, _: &Fault) {}
    fn heal_all(&self) {}
}

/// The database node's main task: serve transactions until killed. After each applied effect
/// it reports how many distinct events have one.
pub async fn serve(ctx: NodeCtx, node: Arc<DbNode>) {
    crate::net::rpc::serve(move |req: DbRequest, _from| {
        let req = match req {
            DbRequest::Apply(req) => req,
            DbRequest::HighestFence { key, worker } => {
                let highest = node.model.lock().expect("db state").highest_fence(&key);
                ctx.record(
                    "fence_floor",
                    crate::fields! {"key" => key.as_str(), "worker" => worker.as_str(), "highest" => highest},
                );
                return Some(DbReply::HighestFence(highest));
            }
        };
        let t_us = crate::trace::now_us();
        let (result, applied) = {
            let mut db = node.model.lock().expect("db state");
            let result = db.apply(&req, t_us);
            (result, db.effects().len())
        };
        let fence = req.fence;
        ctx.record(
            "effect_attempt",
            crate::fields! {"event_id" => req.event_id.as_str(), "worker" => req.worker.as_str(), "fence" => fence, "result" => result.name()},
        );
        if result == ApplyResult::Applied {
            ctx.record(
                "effect_applied",
                crate::fields! {"event_id" => req.event_id.as_str(), "worker" => req.worker.as_str(), "fence" => fence},
            );
            ctx.control.progress(Progress::Applied(applied));
        }
        Some(DbReply::Applied(result))
    })
    .await
}
