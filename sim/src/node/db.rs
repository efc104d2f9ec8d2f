//! The database node: the pure [`DbModel`] on the network. The model is the database's disk:
//! it lives in the node's lasting state, so a restart loses nothing committed. Its own fault
//! is `db_errors`: a share of transactions abort unanswered while it lasts.

use super::NodeCtx;
use crate::fault::{Fault, NodeFaults, Progress};
use crate::model::db::{ApplyResult, DbModel, DbReply, DbRequest};
use crate::trace::Typed;
use std::sync::{Arc, Mutex};

impl crate::net::rpc::Message for DbRequest {
    fn kind(&self) -> &'static str {
        match self {
            DbRequest::Apply(_) => "db.apply",
            DbRequest::HighestFence { .. } => "db.highest_fence",
            DbRequest::ClaimFence { .. } => "db.claim_fence",
        }
    }
}

/// The database's lasting state.
pub struct DbNode {
    /// Every attempt and effect.
    pub model: Mutex<DbModel>,
    /// The injected errors.
    errors: Mutex<Errors>,
}

/// Failing a share of transactions, spread evenly: transaction `n` since the window opened
/// fails when `floor((n + 1) * share)` passes `floor(n * share)`. Deterministic without a
/// random stream, and exactly `share` of them over the window.
#[derive(Default)]
struct Errors {
    share: f64,
    seen: u64,
}

impl Errors {
    fn fails_next(&mut self) -> bool {
        if self.share <= 0.0 {
            return false;
        }
        let n = self.seen as f64;
        self.seen += 1;
        ((n + 1.0) * self.share).floor() > (n * self.share).floor()
    }
}

impl DbNode {
    /// A database over `model`.
    pub fn new(model: DbModel) -> Self {
        DbNode {
            model: Mutex::new(model),
            errors: Mutex::default(),
        }
    }
}

impl NodeFaults for DbNode {
    fn inject(&self, fault: &Fault) -> bool {
        let Fault::DbErrors { share } = fault else {
            return false;
        };
        assert!((0.0..=1.0).contains(share), "a share, validated: {share}");
        *self.errors.lock().expect("db errors") = Errors {
            share: *share,
            seen: 0,
        };
        true
    }
    fn heal(&self, _: &Fault) {
        self.heal_all();
    }
    fn heal_all(&self) {
        *self.errors.lock().expect("db errors") = Errors::default();
    }
}

/// The database node's main task: serve transactions until killed. After each applied effect
/// it reports how many distinct events have one.
pub async fn serve(ctx: NodeCtx, node: Arc<DbNode>) {
    let (net, me) = (ctx.net.clone(), ctx.name);
    crate::net::rpc::serve(&net, me, move |req: DbRequest, _from| {
        let req = match req {
            DbRequest::Apply(req) => req,
            DbRequest::HighestFence { key, worker } => {
                let highest = node.model.lock().expect("db state").highest_fence(&key);
                ctx.emit(Typed::FenceFloor { key, worker, highest });
                return Some(DbReply::HighestFence(highest));
            }
            DbRequest::ClaimFence { key, fence, worker } => {
                let before = node.model.lock().expect("db state").claim(&key, fence);
                ctx.emit(Typed::FenceClaim {
                    key,
                    worker,
                    fence,
                    before,
                });
                return Some(DbReply::Claimed(before));
            }
        };
        if node.errors.lock().expect("db errors").fails_next() {
            // Aborted: nothing applied, and the answer never comes.
            ctx.emit(Typed::EffectAttempt {
                event_id: req.event_id,
                worker: req.worker,
                incarnation: req.incarnation,
                call: req.call,
                fence: req.fence,
                result: "aborted".into(),
            });
            return None;
        }
        let t_us = ctx.trace.now_us();
        let (result, applied) = {
            let mut db = node.model.lock().expect("db state");
            let result = db.apply(&req, t_us);
            (result, db.effects().len())
        };
        let fence = req.fence;
        ctx.emit(Typed::EffectAttempt {
            event_id: req.event_id.clone(),
            worker: req.worker.clone(),
            incarnation: req.incarnation,
            call: req.call,
            fence,
            result: result.name().into(),
        });
        if result == ApplyResult::Applied {
            ctx.emit(Typed::EffectApplied {
                event_id: req.event_id,
                worker: req.worker,
                incarnation: req.incarnation,
                call: req.call,
                fence,
            });
            ctx.control.progress(Progress::Applied(applied));
        }
        Some(DbReply::Applied(result))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::Errors;

    #[test]
    fn a_share_of_transactions_fails_evenly_and_none_without_errors() {
        let mut e = Errors { share: 0.25, seen: 0 };
        let fails: Vec<bool> = (0..8).map(|_| e.fails_next()).collect();
        assert_eq!(fails, [false, false, false, true, false, false, false, true]);
        let mut all = Errors { share: 1.0, seen: 0 };
        assert!((0..5).all(|_| all.fails_next()));
        let mut none = Errors::default();
        assert!((0..5).all(|_| !none.fails_next()));
    }
}
