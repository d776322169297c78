//! The gate on a Redis store through an outage: a private `redis-server` on
//! its own port is stopped and started again. (Restarts and several
//! processes sharing a store: `shared_stores.rs`.)
//!
//! Needs `redis-server` on the PATH (the machine's Redis package). Without
//! it the tests print that they skipped, unless `CI` is set, where they
//! fail.

#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

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

impl RedisServer {
    fn start(port: u16) -> Option<Self> {
        let child = match Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
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
    let Some(server) = RedisServer::start(free_port()) else {
        return;
    };
    let store = RedisStore::connect(&server.url(), "outage:").await.unwrap();
    let rail = TestRail::new("test");
    let gate = Gate::builder(config().build().unwrap())
        .rail(Shared(rail.clone()))
        .store(store)
        .build()
        .unwrap();
    let route = route(&gate, "/r", PaymentSpec::new().amount("1.00").scope("s"));
    let c = challenge(&gate, &route, "/r").await;
    let paid = pay(&c, "ok");

    let port = server.stop();
    let refused = denied(gate.admit(&route, with_auth("/r", &paid)).await);
    assert_eq!(refused.status, 503);
    assert_eq!(problem(&refused), ProblemType::ServiceUnavailable);
    assert_eq!(
        rail.attempts(),
        0,
        "nothing is charged while the store is down"
    );

    // The store comes back: the same credential is still good.
    let _server = RedisServer::start(port).unwrap();
    let grant = granted_after_recovery(&gate, &route, "/r", &paid).await;
    assert_eq!(grant.receipt().method, "test");
    assert_eq!(rail.settled(), 1);
}
