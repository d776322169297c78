//! Stores shared by several OS processes, and surviving a restart of the
//! application: for SQLite (a file under the target directory), PostgreSQL
//! (`MPP_TEST_POSTGRES_URL`) and Redis (`MPP_TEST_REDIS_URL`), a 10-credit
//! session created by one process is read back after that process exited
//! (a restarted application), then two separate processes (this test
//! binary, started again as workers), each with its own gate on the shared
//! store, present `Authorization: Payment session="…"` 250 times each, at
//! the same instant: exactly 10 requests are granted, and the other 490 are
//! each a 402 `session/exhausted` problem with a fresh, valid `Payment`
//! challenge. Nothing else is answered, and nothing is charged.
//!
//! Without the URLs the server cases print that they skipped, unless `CI`
//! is set, where they fail. Each run uses its own prefix; the PostgreSQL
//! tables are dropped and the SQLite file deleted when the test ends.

#![cfg(any(feature = "redis", feature = "postgres", feature = "sqlite"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

#[path = "support/stores.rs"]
mod stores;
mod support;

use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use mpp_runtime::store::{SessionRecord, Store};
use mpp_runtime::wire::{Challenge, ProblemType, Timestamp};
use mpp_runtime::*;
use serde_json::Value;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
use stores::Cleanup;
use support::*;

/// Credits of the shared session.
const CREDITS: u32 = 10;
/// Requests each worker process makes.
const SPENDS_PER_PROCESS: usize = 250;
const PROCESSES: usize = 2;

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

/// The metered route every process serves, on a gate over `store`.
fn gate_on(store: Arc<dyn Store>) -> (Gate, Route, Arc<TestRail>) {
    let rail = TestRail::new("test");
    let gate = Gate::builder(config().build().unwrap())
        .rail(Shared(rail.clone()))
        .store_arc(store)
        .build()
        .unwrap();
    let route = route(
        &gate,
        "/r",
        PaymentSpec::new()
            .amount("1.00")
            .grants(CREDITS)
            .scope("metered"),
    );
    (gate, route, rail)
}

/// A session of the route above, as its paid request would have stored it.
fn session_record(id: &str) -> SessionRecord {
    let expires_at = Timestamp::now().plus(Duration::from_secs(3600));
    stores::session(id, "metered", CREDITS, expires_at)
}

/// What one request was answered.
enum Outcome {
    /// Served, with the credits left.
    Granted(u32),
    /// A 402 `session/exhausted` with this fresh challenge id.
    Exhausted(String),
    /// Anything else, described.
    Other(String),
}

/// Sorts an answer, checking a refusal is exactly a 402 session-exhausted
/// problem carrying a fresh challenge this gate signed.
fn classify(admission: Admission) -> Outcome {
    let response = match admission {
        Admission::Granted(grant) => {
            return match grant.session() {
                Some(info) if info.scope == "metered" && info.remaining < CREDITS => {
                    Outcome::Granted(info.remaining)
                }
                other => Outcome::Other(format!("a grant with session {other:?}")),
            };
        }
        Admission::Denied(response) => response,
    };
    let describe = |why: &str| {
        Outcome::Other(format!(
            "{why}: {} {}",
            response.status,
            response.body_text()
        ))
    };
    if response.status != 402 {
        return describe("not a 402");
    }
    let Ok(body) = serde_json::from_slice::<Value>(&response.body) else {
        return describe("not a JSON problem");
    };
    let kind = body["type"].as_str().and_then(ProblemType::from_uri);
    if kind != Some(ProblemType::SessionExhausted) {
        return describe("not session/exhausted");
    }
    if response.header("cache-control") != Some("no-store")
        || response.header("payment-receipt").is_some()
    {
        return describe("cacheable, or with a receipt");
    }
    let Some(header) = response.header("www-authenticate") else {
        return describe("no WWW-Authenticate");
    };
    let Ok(challenge) = Challenge::parse(header) else {
        return describe("an unparsable challenge");
    };
    let fresh = challenge
        .expires_at()
        .is_some_and(|expires| expires > Timestamp::now());
    let signed = ChallengeKey::new(SECRET)
        .unwrap()
        .verify_challenge(&challenge);
    if !header.starts_with("Payment ")
        || challenge.realm != REALM
        || challenge.method != "test"
        || !fresh
        || !signed
        || body["challengeId"] != challenge.id.as_str()
    {
        return describe("not a fresh Payment challenge of this gate");
    }
    Outcome::Exhausted(challenge.id)
}

/// Not a test on its own: the worker process the tests below start. With
/// `MPP_TEST_SPEND_COUNT=0` it stores the 10-credit session and exits (the
/// application that sold it, before its restart); otherwise, at the agreed
/// instant, it sends `MPP_TEST_SPEND_COUNT` concurrent requests with the
/// session through its own gate on the shared store and prints what they
/// were answered. Ignored, so it never counts as a test of its own: the
/// tests start it with `--ignored`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "the worker process of the two-process tests; they start it"]
async fn spend_worker() {
    let (Ok(kind), Ok(url), Ok(prefix), Ok(id), Ok(count), Ok(start)) = (
        std::env::var("MPP_TEST_SPEND_STORE"),
        std::env::var("MPP_TEST_SPEND_URL"),
        std::env::var("MPP_TEST_SPEND_PREFIX"),
        std::env::var("MPP_TEST_SPEND_SESSION"),
        std::env::var("MPP_TEST_SPEND_COUNT"),
        std::env::var("MPP_TEST_SPEND_AT"),
    ) else {
        eprintln!(
            "spend_worker: nothing to do; it runs as a worker of the tests below (MPP_TEST_SPEND_* set)"
        );
        return;
    };
    let store = open(&kind, &url, &prefix).await;
    let count: usize = count.parse().unwrap();
    if count == 0 {
        store
            .create_session(session_record(&id), Timestamp::now())
            .await
            .unwrap();
        println!("\nRESULT granted=0 exhausted=0 other=0 challenges=0 attempts=0 remaining=");
        return;
    }
    let (gate, route, rail) = gate_on(store);
    let auth = session_auth(&id);
    let start: u128 = start.parse().unwrap();
    let wait = start.saturating_sub(unix_ms());
    tokio::time::sleep(Duration::from_millis(u64::try_from(wait).unwrap())).await;
    let requests: Vec<_> = (0..count)
        .map(|_| {
            let (gate, route, auth) = (gate.clone(), route.clone(), auth.clone());
            tokio::spawn(async move { classify(gate.admit(&route, with_auth("/r", &auth)).await) })
        })
        .collect();
    let (mut remaining, mut challenges, mut others) = (Vec::new(), HashSet::new(), Vec::new());
    let mut exhausted = 0;
    for request in requests {
        match request.await.unwrap() {
            Outcome::Granted(left) => remaining.push(left.to_string()),
            Outcome::Exhausted(challenge) => {
                exhausted += 1;
                challenges.insert(challenge);
            }
            Outcome::Other(what) => others.push(what),
        }
    }
    for other in others.iter().take(5) {
        println!("\nOTHER {other}");
    }
    println!(
        "\nRESULT granted={} exhausted={exhausted} other={} challenges={} attempts={} remaining={}",
        remaining.len(),
        others.len(),
        challenges.len(),
        rail.attempts(),
        remaining.join(",")
    );
}

/// What one worker reported.
#[derive(Debug, Default)]
struct Report {
    granted: usize,
    exhausted: usize,
    other: usize,
    challenges: usize,
    attempts: usize,
    remaining: Vec<u32>,
}

impl Report {
    fn parse(stdout: &str) -> Self {
        let line = stdout
            .lines()
            .find_map(|l| l.strip_prefix("RESULT "))
            .unwrap_or_else(|| panic!("worker printed no result: {stdout}"));
        let mut report = Self::default();
        for field in line.split_whitespace() {
            let (name, value) = field.split_once('=').unwrap();
            let number = || value.parse::<usize>().unwrap();
            match name {
                "granted" => report.granted = number(),
                "exhausted" => report.exhausted = number(),
                "other" => report.other = number(),
                "challenges" => report.challenges = number(),
                "attempts" => report.attempts = number(),
                "remaining" => {
                    report.remaining = value
                        .split(',')
                        .filter(|v| !v.is_empty())
                        .map(|v| v.parse().unwrap())
                        .collect();
                }
                other => panic!("unknown field {other} in {line}"),
            }
        }
        report
    }
}

/// Runs the worker process `processes` times at once (see
/// [`spend_worker`]) and returns what each reported.
fn run_workers(
    kind: &str,
    url: &str,
    prefix: &str,
    id: &str,
    count: usize,
    processes: usize,
) -> Vec<Report> {
    let exe = std::env::current_exe().unwrap();
    let start_at = unix_ms() + 2_000;
    let workers: Vec<_> = (0..processes)
        .map(|_| {
            Command::new(&exe)
                .args([
                    "spend_worker",
                    "--exact",
                    "--ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
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
            let report = Report::parse(&stdout);
            assert_eq!(report.other, 0, "a worker got other answers: {stdout}");
            report
        })
        .collect()
}

async fn two_processes_spend_one_session(kind: &str, url: &str, prefix: &str) {
    let id = format!("sess_{:x}", random::u128());
    // The application that sold the session, then exited.
    run_workers(kind, url, prefix, &id, 0, 1);
    // After the restart, a new process sees the session.
    let restarted = open(kind, url, prefix).await;
    let remaining = restarted.session(&id).await.unwrap().unwrap().remaining;
    assert_eq!(remaining, CREDITS);

    let reports = run_workers(kind, url, prefix, &id, SPENDS_PER_PROCESS, PROCESSES);
    for report in &reports {
        println!(
            "{kind}: a worker process got {} grants and {} exhausted 402s of {SPENDS_PER_PROCESS}",
            report.granted, report.exhausted
        );
        assert_eq!(
            report.granted + report.exhausted,
            SPENDS_PER_PROCESS,
            "every request is answered a grant or a 402: {report:?}"
        );
        assert_eq!(
            report.challenges, report.exhausted,
            "every 402 carries its own fresh challenge: {report:?}"
        );
        assert_eq!(report.attempts, 0, "spending a session charges nothing");
    }
    let total = SPENDS_PER_PROCESS * PROCESSES;
    let granted: usize = reports.iter().map(|r| r.granted).sum();
    let exhausted: usize = reports.iter().map(|r| r.exhausted).sum();
    assert_eq!(
        (granted, exhausted),
        (10, total - 10),
        "{total} requests from {PROCESSES} processes: exactly the {CREDITS} credits served"
    );
    let mut left: Vec<u32> = reports.iter().flat_map(|r| r.remaining.clone()).collect();
    left.sort_unstable();
    assert_eq!(
        left,
        (0..CREDITS).collect::<Vec<_>>(),
        "each credit granted once"
    );
    assert_eq!(restarted.session(&id).await.unwrap().unwrap().remaining, 0);
}

#[cfg(any(feature = "redis", feature = "postgres"))]
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

fn unique_prefix() -> String {
    format!("mpp_p{:x}", random::u128() >> 64)
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_two_processes_share_one_session_and_a_restart_keeps_it() {
    if let Some(url) = server_url("redis", "MPP_TEST_REDIS_URL") {
        // Every key has a TTL: nothing to remove.
        two_processes_spend_one_session("redis", &url, &unique_prefix()).await;
    }
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_two_processes_share_one_session_and_a_restart_keeps_it() {
    if let Some(url) = server_url("postgres", "MPP_TEST_POSTGRES_URL") {
        let prefix = unique_prefix();
        let _cleanup = Cleanup::postgres(&url, &format!("{prefix}_"));
        two_processes_spend_one_session("postgres", &url, &prefix).await;
    }
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn sqlite_two_processes_share_one_file_and_a_restart_keeps_it() {
    let path = stores::sqlite_path("shared");
    let _cleanup = Cleanup::sqlite(&path);
    two_processes_spend_one_session("sqlite", &stores::sqlite_url(&path), &unique_prefix()).await;
}
