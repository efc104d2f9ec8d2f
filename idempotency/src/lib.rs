//! Two-phase idempotency for Kafka consumers on Redis, wire-compatible with the Python "v2"
//! services.
//!
//! A delivery takes a short *processing* lock, the handler runs its business transaction and,
//! after the commit, *confirms*, which writes a long-lived *completed* record; a handler error
//! releases the lock. This crate derives the same keys and writes the same records as the
//! Python services, byte for byte, and offers two protocols over them:
//!
//! - [`fenced`] (the default): atomic acquire, fencing tokens, a renewed lease, owner-checked
//!   confirm and release;
//! - [`v2`]: the Python protocol's control flow, weaknesses included, for simulation and for
//!   side-by-side operation.
//!
//! The core is runtime-agnostic: it reaches Redis through the [`store::Store`] trait and reads
//! time through the [`clock::Clock`] trait. The `redis` feature adds [`redis_store::RedisStore`]
//! (and [`clock::TokioClock`]); the simulator implements both traits on its virtual world.
//!
//! ```no_run
//! # #[cfg(feature = "redis")]
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use idempotency::{clock::TokioClock, Config, Consumer, Message, Outcome};
//! use idempotency::redis_store::RedisStore;
//! use std::{sync::Arc, time::Duration};
//!
//! let store = RedisStore::connect("redis://127.0.0.1:6379/", Duration::from_millis(500)).await?;
//! let consumer = Consumer::new(Config::new("essay_lifecycle_service"), Arc::new(store), Arc::new(TokioClock), "host-a/4242")?;
//! let msg = Message::new("events", br#"{"event_id": "e-1", "event_type": "t.v1", "data": {}}"#.to_vec());
//! let outcome = consumer
//!     .process(&msg, |ctx| async move {
//!         // ... the business transaction commits here, carrying ctx.fence() ...
//!         ctx.confirm().await?;
//!         Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
//!     })
//!     .await?;
//! assert!(matches!(outcome, Outcome::Processed { .. }));
//! # Ok(()) }
//! ```

pub mod clock;
pub mod config;
pub mod consumer;
pub mod fenced;
pub mod key;
pub mod message;
pub mod pyjson;
pub mod record;
#[cfg(feature = "redis")]
pub mod redis_store;
pub mod retry;
pub mod store;
pub mod v2;

pub use config::{Config, FailurePolicy, Protocol};
pub use consumer::{
    ConfirmError, ConfirmStatus, Consumer, Context, Outcome, ProcessError, ReleaseStatus, Unprotected,
};
pub use key::{EventKey, KeyError, KeyPath};
pub use message::Message;
pub use store::{Command, Reply, Script, Store, StoreError};
