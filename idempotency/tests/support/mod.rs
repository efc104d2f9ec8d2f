//! Shared by the real-Redis tests: where the server is, a private server that a test may stop
//! and start, a clock a test can skew, and an effect log that records what handlers really did.
#![allow(dead_code)]

use idempotency::clock::Clock;
use idempotency::redis_store::RedisStore;
use idempotency::store::BoxFuture;
use idempotency::{Config, Consumer, Message};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The URL of the test server that `scripts/test` started. The real-Redis tests are
/// `#[ignore]`d (a plain `cargo test` shows them as ignored); one that runs anyway, with
/// `--include-ignored`, and finds no server fails here.
pub fn redis_url(test: &str) -> String {
    match std::env::var("IDEMPOTENCY_REDIS_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "{test} needs a redis-server and IDEMPOTENCY_REDIS_URL is not set: run scripts/test, \
             which starts one"
        ),
    }
}

/// A redis-server of the test's own, on a free port, without persistence (or with
/// `appendfsync always`, [`PrivateServer::start_persistent`]).
pub struct PrivateServer {
    pub port: u16,
    bin: String,
    child: Option<Child>,
    /// The AOF's directory, when the server persists every write.
    aof_dir: Option<std::path::PathBuf>,
}

impl PrivateServer {
    /// Starts one with `IDEMPOTENCY_REDIS_SERVER` (set by `scripts/test`), else
    /// `redis-server` from `PATH`; fails the test when there is none.
    pub fn start(test: &str) -> Self {
        let bin = match std::env::var("IDEMPOTENCY_REDIS_SERVER") {
            Ok(b) if !b.is_empty() => b,
            _ => "redis-server".to_owned(),
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = PrivateServer {
            port,
            bin,
            child: None,
            aof_dir: None,
        };
        server.resume_for(test);
        server
    }

    /// [`PrivateServer::start`] with `appendonly yes` and `appendfsync always` in a directory
    /// of its own: every acknowledged write survives a kill and restart.
    pub fn start_persistent(test: &str) -> Self {
        let dir = std::env::temp_dir().join(unique("redis-aof"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut server = PrivateServer::start(test);
        server.stop();
        server.aof_dir = Some(dir);
        server.resume_for(test);
        server
    }

    /// Kills the server and starts it again on the same port: what it brings back is what
    /// its persistence kept (nothing without it).
    pub fn restart(&mut self) {
        self.stop();
        self.resume_for("a restart");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Starts the server again (empty: no persistence).
    pub fn resume(&mut self) {
        self.resume_for("a real-Redis test");
    }

    fn resume_for(&mut self, test: &str) {
        assert!(self.child.is_none(), "server already running");
        let port = self.port.to_string();
        let mut args = vec!["--port", &port, "--bind", "127.0.0.1", "--save", ""];
        let dir = self.aof_dir.as_ref().map(|d| d.to_str().unwrap().to_owned());
        match &dir {
            None => args.extend(["--appendonly", "no"]),
            Some(dir) => args.extend([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--dir",
                dir.as_str(),
            ]),
        }
        let child = Command::new(&self.bin)
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "{test} needs a redis-server binary: cannot start {:?} ({e}); run scripts/test",
                    self.bin
                )
            });
        self.child = Some(child);
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("redis-server on port {} did not come up", self.port);
    }

    /// Kills the server (SIGKILL: an outage, not a shutdown).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        self.stop();
        if let Some(dir) = self.aof_dir.take() {
            std::fs::remove_dir_all(dir).ok();
        }
    }
}

/// The host clock plus an adjustable skew, with tokio's timers.
#[derive(Default)]
pub struct SkewedClock {
    pub skew_us: AtomicI64,
}

impl Clock for SkewedClock {
    fn now_unix_us(&self) -> i64 {
        idempotency::clock::TokioClock.now_unix_us() + self.skew_us.load(Ordering::Relaxed)
    }
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// The business side: every effect a handler really applied, in order.
#[derive(Clone, Default)]
pub struct Effects(pub Arc<Mutex<Vec<String>>>);

impl Effects {
    pub fn apply(&self, what: impl Into<String>) {
        self.0.lock().unwrap().push(what.into());
    }
    pub fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name no other test (or earlier run against the same server) uses.
pub fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = idempotency::clock::TokioClock.now_unix_us();
    format!("{prefix}-{}-{t}-{n}", std::process::id())
}

/// A v2 envelope for `event_type` with a fresh event id, sent without headers.
pub fn envelope(event_type: &str) -> Message {
    let id = unique("evt");
    let body = format!(
        r#"{{"event_id": "{id}", "event_type": "{event_type}", "source_service": "test", "correlation_id": "c-{id}", "data": {{"n": 1}}}}"#
    );
    Message::new("events", body.into_bytes())
}

pub async fn store(url: &str) -> Arc<RedisStore> {
    Arc::new(
        RedisStore::connect(url, Duration::from_millis(500))
            .await
            .expect("connect"),
    )
}

pub fn consumer(config: Config, store: Arc<RedisStore>, clock: Arc<dyn Clock>) -> Consumer {
    Consumer::new(config, store, clock, unique("test-instance")).expect("valid config")
}

/// A raw connection for looking at what the protocols left in Redis.
pub async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

pub async fn pttl(con: &mut redis::aio::MultiplexedConnection, key: &str) -> i64 {
    redis::cmd("PTTL").arg(key).query_async(con).await.unwrap()
}

pub async fn get(con: &mut redis::aio::MultiplexedConnection, key: &str) -> Option<Vec<u8>> {
    redis::cmd("GET").arg(key).query_async(con).await.unwrap()
}
