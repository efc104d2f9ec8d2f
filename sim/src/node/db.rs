//! The database node: the pure [`DbModel`] on the network.

use crate::model::db::{ApplyResult, DbReply, DbRequest};

/// The database node's main task: serve transactions until killed. The state lives in the
/// world, so a restart loses nothing committed.
pub async fn serve(s: std::sync::Arc<crate::run::Shared>) {
    crate::net::rpc::serve(move |req: DbRequest, _from| {
        let req = match req {
            DbRequest::Apply(req) => req,
            DbRequest::HighestFence { key, worker } => {
                let highest = s.db.lock().expect("db state").highest_fence(&key);
                s.trace.record(
                    "db",
                    "fence_floor",
                    crate::fields! {"key" => key.as_str(), "worker" => worker.as_str(), "highest" => highest},
                );
                return Some(DbReply::HighestFence(highest));
            }
        };
        let t_us = crate::trace::now_us();
        let result = s.db.lock().expect("db state").apply(&req, t_us);
        let fence = req.fence;
        s.trace.record(
            "db",
            "effect_attempt",
            crate::fields! {"event_id" => req.event_id.as_str(), "worker" => req.worker.as_str(), "fence" => fence, "result" => result.name()},
        );
        if result == ApplyResult::Applied {
            s.trace.record(
                "db",
                "effect_applied",
                crate::fields! {"event_id" => req.event_id.as_str(), "worker" => req.worker.as_str(), "fence" => fence},
            );
        }
        Some(DbReply::Applied(result))
    })
    .await
}
