//! The gate on a Redis store through an outage and a restart of the
//! application: a private `redis-server` on its own port is stopped and
//! started again, and separate OS processes spend one session.
//!
//! Needs `redis-server` on the PATH (the machine's Redis package). Without
//! it the tests print that they skipped, unless `CI` is set, where they
//! fail.

#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mpp_runtime::store::{RedisStore, SessionRecord, SpendOutcome};
use mpp_runtime::wire::{ProblemType, Receipt, Timestamp};
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
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match gate.admit(&route, with_auth("/r", &paid)).await {
            Admission::Granted(grant) => {
                assert_eq!(grant.receipt().method, "test");
                break;
            }
            Admission::Denied(response) => {
                assert_eq!(response.status, 503, "{}", response.body_text());
                assert!(Instant::now() < deadline, "the gate did not recover");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    assert_eq!(rail.settled(), 1);
}

/// Not a test on its own: the worker process the test below starts twice.
/// It spends `MPP_TEST_SPEND_COUNT` times on the session at the agreed
/// instant and prints how many spends succeeded.
#[tokio::test]
async fn spend_worker() {
    let (Ok(url), Ok(id), Ok(count)) = (
        std::env::var("MPP_TEST_SPEND_URL"),
        std::env::var("MPP_TEST_SPEND_SESSION"),
        std::env::var("MPP_TEST_SPEND_COUNT"),
    ) else {
        return; // Only runs as a worker of the test below.
    };
    let store = Arc::new(RedisStore::connect(&url, "procs:").await.unwrap());
    let now = Timestamp::from_unix(1_800_000_000);
    // Start together with the other worker, at the agreed instant.
    let start: u128 = std::env::var("MPP_TEST_SPEND_AT").unwrap().parse().unwrap();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    if start > now_ms {
        tokio::time::sleep(Duration::from_millis(
            u64::try_from(start - now_ms).unwrap(),
        ))
        .await;
    }
    let spends = (0..count.parse::<usize>().unwrap()).map(|_| {
        let store = store.clone();
        let id = id.clone();
        tokio::spawn(async move {
            matches!(
                store.spend_session(&id, "metered", now).await.unwrap(),
                SpendOutcome::Spent(_)
            )
        })
    });
    let mut spent = 0;
    for spend in spends.collect::<Vec<_>>() {
        if spend.await.unwrap() {
            spent += 1;
        }
    }
    println!("\nSPENT={spent}");
}

#[tokio::test]
async fn two_processes_share_one_session_and_a_restart_keeps_it() {
    let Some(server) = RedisServer::start(free_port()) else {
        return;
    };
    let store = RedisStore::connect(&server.url(), "procs:").await.unwrap();
    let id = format!("sess_{:x}", random::u128());
    let now = Timestamp::from_unix(1_800_000_000);
    store
        .create_session(
            SessionRecord {
                id: id.clone(),
                scope: "metered".into(),
                route: "GET /r".into(),
                grants: 10,
                remaining: 10,
                expires_at: Timestamp::from_unix(1_800_003_600),
                receipt: Receipt::success("test", "ref", now),
            },
            now,
        )
        .await
        .unwrap();
    // An application restart: a new connection sees the session.
    drop(store);
    let restarted = RedisStore::connect(&server.url(), "procs:").await.unwrap();
    assert_eq!(restarted.session(&id).await.unwrap().unwrap().remaining, 10);

    let exe = std::env::current_exe().unwrap();
    let start_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 1_500;
    let workers: Vec<_> = (0..2)
        .map(|_| {
            Command::new(&exe)
                .args(["spend_worker", "--exact", "--nocapture", "--test-threads=1"])
                .env("MPP_TEST_SPEND_URL", server.url())
                .env("MPP_TEST_SPEND_SESSION", &id)
                .env("MPP_TEST_SPEND_COUNT", "250")
                .env("MPP_TEST_SPEND_AT", start_at.to_string())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut total = 0;
    for worker in workers {
        let output = worker.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let spent: usize = stdout
            .lines()
            .find_map(|l| l.split_once("SPENT=").map(|(_, n)| n))
            .unwrap_or_else(|| panic!("worker printed no result: {stdout}"))
            .trim()
            .parse()
            .unwrap();
        println!("worker spent {spent} of 250");
        total += spent;
    }
    assert_eq!(
        total, 10,
        "500 spends from 2 processes: exactly the 10 credits"
    );
    assert_eq!(restarted.session(&id).await.unwrap().unwrap().remaining, 0);
}
