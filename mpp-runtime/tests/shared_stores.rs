//! Stores shared by several OS processes, and surviving a restart of the
//! application: for SQLite (a file under the target directory), PostgreSQL
//! (`MPP_TEST_POSTGRES_URL`) and Redis (`MPP_TEST_REDIS_URL`), a 10-credit
//! session created by one process is read back after that process exited
//! (a restarted application), then two separate processes (this test
//! binary, started again as workers) spend it 250 times each, at the same
//! instant: exactly 10 spends succeed.
//!
//! Without the URLs the server cases print that they skipped, unless `CI`
//! is set, where they fail.

#![cfg(any(feature = "redis", feature = "postgres", feature = "sqlite"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use mpp_runtime::random;
use mpp_runtime::store::{SessionRecord, SpendOutcome, Store};
use mpp_runtime::wire::{Receipt, Timestamp};

/// The store `kind` at `url` with table/key `prefix`.
async fn open(kind: &str, url: &str, prefix: &str) -> Arc<dyn Store> {
    match kind {
        #[cfg(feature = "redis")]
        "redis" => Arc::new(
            mpp_runtime::store::RedisStore::connect(url, format!("{prefix}:"))
                .await
                .unwrap(),
        ),
        #[cfg(any(feature = "postgres", feature = "sqlite"))]
        "postgres" | "sqlite" => Arc::new(
            mpp_runtime::store::SqlStore::connect(url, &format!("{prefix}_"))
                .await
                .unwrap(),
        ),
        other => panic!("no {other} store in this build ({url})"),
    }
}

fn unix_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

fn session_record(id: &str) -> SessionRecord {
    let now = Timestamp::from_unix(1_800_000_000);
    SessionRecord {
        id: id.to_owned(),
        scope: "metered".into(),
        route: "GET /r".into(),
        grants: 10,
        remaining: 10,
        expires_at: Timestamp::from_unix(1_800_003_600),
        receipt: Receipt::success("test", "ref", now).into(),
    }
}

/// Not a test on its own: the worker process the tests below start. With
/// `MPP_TEST_SPEND_COUNT=0` it creates the 10-credit session and exits (the
/// application before its restart); otherwise it spends
/// `MPP_TEST_SPEND_COUNT` times on the session at the agreed instant and
/// prints how many spends succeeded.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn spend_worker() {
    let (Ok(kind), Ok(url), Ok(prefix), Ok(id), Ok(count), Ok(start)) = (
        std::env::var("MPP_TEST_SPEND_STORE"),
        std::env::var("MPP_TEST_SPEND_URL"),
        std::env::var("MPP_TEST_SPEND_PREFIX"),
        std::env::var("MPP_TEST_SPEND_SESSION"),
        std::env::var("MPP_TEST_SPEND_COUNT"),
        std::env::var("MPP_TEST_SPEND_AT"),
    ) else {
        return; // Only runs as a worker of the tests below.
    };
    let store = open(&kind, &url, &prefix).await;
    let now = Timestamp::from_unix(1_800_000_000);
    let count: usize = count.parse().unwrap();
    if count == 0 {
        store
            .create_session(session_record(&id), now)
            .await
            .unwrap();
        println!("\nSPENT=0");
        return;
    }
    let start: u128 = start.parse().unwrap();
    let wait = start.saturating_sub(unix_ms());
    tokio::time::sleep(Duration::from_millis(u64::try_from(wait).unwrap())).await;
    let spends: Vec<_> = (0..count)
        .map(|_| {
            let store = store.clone();
            let id = id.clone();
            tokio::spawn(async move {
                matches!(
                    store.spend_session(&id, "metered", now).await.unwrap(),
                    SpendOutcome::Spent(_)
                )
            })
        })
        .collect();
    let mut spent = 0;
    for spend in spends {
        if spend.await.unwrap() {
            spent += 1;
        }
    }
    println!("\nSPENT={spent}");
}

/// Runs the worker process `count` times at once (see [`spend_worker`])
/// and returns what each spent.
fn run_workers(
    kind: &str,
    url: &str,
    prefix: &str,
    id: &str,
    count: usize,
    processes: usize,
) -> Vec<usize> {
    let exe = std::env::current_exe().unwrap();
    let start_at = unix_ms() + 2_000;
    let workers: Vec<_> = (0..processes)
        .map(|_| {
            Command::new(&exe)
                .args(["spend_worker", "--exact", "--nocapture", "--test-threads=1"])
                .env("MPP_TEST_SPEND_STORE", kind)
                .env("MPP_TEST_SPEND_URL", url)
                .env("MPP_TEST_SPEND_PREFIX", prefix)
                .env("MPP_TEST_SPEND_SESSION", id)
                .env("MPP_TEST_SPEND_COUNT", count.to_string())
                .env("MPP_TEST_SPEND_AT", start_at.to_string())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    workers
        .into_iter()
        .map(|worker| {
            let output = worker.wait_with_output().unwrap();
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(output.status.success(), "a worker failed: {stdout}");
            stdout
                .lines()
                .find_map(|l| l.split_once("SPENT=").map(|(_, n)| n))
                .unwrap_or_else(|| panic!("worker printed no result: {stdout}"))
                .trim()
                .parse()
                .unwrap()
        })
        .collect()
}

async fn two_processes_spend_one_session(kind: &str, url: &str) {
    let prefix = format!("mpp_p{:x}", random::u128() >> 64);
    let id = format!("sess_{:x}", random::u128());
    // The application that sold the session, then exited.
    run_workers(kind, url, &prefix, &id, 0, 1);
    // After the restart, a new process sees the session.
    let restarted = open(kind, url, &prefix).await;
    assert_eq!(restarted.session(&id).await.unwrap().unwrap().remaining, 10);

    let spent = run_workers(kind, url, &prefix, &id, 250, 2);
    for n in &spent {
        println!("{kind}: a worker process spent {n} of 250");
    }
    assert_eq!(
        spent.iter().sum::<usize>(),
        10,
        "500 spends from 2 processes: exactly the 10 credits"
    );
    assert_eq!(restarted.session(&id).await.unwrap().unwrap().remaining, 0);
}

fn server_url(kind: &str, url_var: &str) -> Option<String> {
    match std::env::var(url_var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("{url_var} is not set: CI must run the {kind} multi-process test")
        }
        _ => {
            eprintln!("skipped: set {url_var} to run the {kind} multi-process test");
            None
        }
    }
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_two_processes_share_one_session_and_a_restart_keeps_it() {
    if let Some(url) = server_url("redis", "MPP_TEST_REDIS_URL") {
        two_processes_spend_one_session("redis", &url).await;
    }
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_two_processes_share_one_session_and_a_restart_keeps_it() {
    if let Some(url) = server_url("postgres", "MPP_TEST_POSTGRES_URL") {
        two_processes_spend_one_session("postgres", &url).await;
    }
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn sqlite_two_processes_share_one_file_and_a_restart_keeps_it() {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("shared-{:x}.db", random::u128() >> 64));
    two_processes_spend_one_session("sqlite", &format!("sqlite://{}", path.display())).await;
}
