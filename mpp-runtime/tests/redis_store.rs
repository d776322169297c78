//! The gate on a Redis store through an outage: a private `redis-server` on
//! its own port (persisting every write to its append-only file, like a
//! production Redis that must keep paid credit) is killed and started again
//! on the same data. During the outage neither a paid credential nor a
//! session is accepted (503, nothing charged, no credit spent); afterwards
//! both work, and the session has lost exactly the one credit then spent.
//! (Restarts and several processes sharing a store: `shared_stores.rs`.)
//!
//! Needs `redis-server` on the PATH (the machine's Redis package). Without
//! it the tests print that they skipped, unless `CI` is set, where they
//! fail.

#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mpp_runtime::store::RedisStore;
use mpp_runtime::wire::ProblemType;
use mpp_runtime::*;
use support::*;

struct RedisServer {
    child: Child,
    port: u16,
}

/// The server's data directory, removed when the test ends.
struct DataDir(PathBuf);

impl DataDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "mpp-redis-outage-{}-{:x}",
            std::process::id(),
            random::u128() >> 64
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl RedisServer {
    /// A server on `port` keeping its data in `dir`: every write is in the
    /// append-only file before it is answered, so a kill loses nothing.
    fn start(port: u16, dir: &Path) -> Option<Self> {
        let child = match Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(child) => child,
            Err(_) if std::env::var_os("CI").is_some() => {
                panic!("redis-server is not installed: CI must run the Redis outage tests")
            }
            Err(_) => {
                eprintln!("skipped: redis-server is not on the PATH");
                return None;
            }
        };
        let server = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(server)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn stop(mut self) -> u16 {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.port
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn an_outage_fails_closed_and_the_gate_recovers() {
    let data = DataDir::new();
    let Some(server) = RedisServer::start(free_port(), &data.0) else {
        return;
    };
    let store = RedisStore::connect(&server.url(), "outage:").await.unwrap();
    let rail = TestRail::new("test");
    let gate = Gate::builder(config().build().unwrap())
        .rail(Shared(rail.clone()))
        .store(store.clone())
        .build()
        .unwrap();
    let single = route(&gate, "/r", PaymentSpec::new().amount("1.00").scope("s"));
    let metered = route(
        &gate,
        "/m",
        PaymentSpec::new().amount("1.00").grants(3).scope("m"),
    );
    // A session bought before the outage: 3 credits, 1 used by its purchase.
    let c = challenge(&gate, &metered, "/m").await;
    let bought = granted(gate.admit(&metered, with_auth("/m", &pay(&c, "ok"))).await);
    let session = bought.session().expect("a metered grant opens a session");
    let (session, left) = (session.id.clone(), session.remaining);
    assert_eq!(left, 2);
    // A paid credential not yet presented.
    let c = challenge(&gate, &single, "/r").await;
    let paid = pay(&c, "ok");
    let attempts = rail.attempts();

    let port = server.stop();
    let refused = denied(gate.admit(&single, with_auth("/r", &paid)).await);
    assert_eq!(refused.status, 503);
    assert_eq!(problem(&refused), ProblemType::ServiceUnavailable);
    for _ in 0..3 {
        let refused = denied(
            gate.admit(&metered, with_auth("/m", &session_auth(&session)))
                .await,
        );
        assert_eq!(refused.status, 503, "{}", refused.body_text());
        assert_eq!(problem(&refused), ProblemType::ServiceUnavailable);
    }
    assert_eq!(
        rail.attempts(),
        attempts,
        "nothing is charged while the store is down"
    );

    // The store comes back with its data: the same credential is still
    // good, and the session still holds the credits it had.
    let _server = RedisServer::start(port, &data.0).unwrap();
    let grant = granted_after_recovery(&gate, &single, "/r", &paid).await;
    assert_eq!(grant.receipt().method, "test");
    assert_eq!(
        store.session(&session).await.unwrap().unwrap().remaining,
        left,
        "no credit was spent during the outage"
    );
    let spent = granted(
        gate.admit(&metered, with_auth("/m", &session_auth(&session)))
            .await,
    );
    assert_eq!(spent.session().unwrap().remaining, left - 1);
    assert_eq!(
        store.session(&session).await.unwrap().unwrap().remaining,
        left - 1,
        "the spend after recovery took exactly one credit"
    );
    assert_eq!(rail.settled(), 2);
}
