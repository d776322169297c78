//! Load and attack against two running server processes of an example that
//! share one store (Redis and/or PostgreSQL), paying through the Stripe
//! emulator (`tools/stripe-emulator`).
//!
//! - Concurrent metered spends across both processes: exactly the credits
//!   bought are served, never one more, every other spend is a 402
//!   `session/exhausted`, and afterwards every session is spent out.
//! - A storm of replays of one paid credential against both processes at
//!   once: exactly one access, and the emulator created exactly one
//!   PaymentIntent for that challenge.
//! - Forged (re-signed, tampered, cross-route), truncated and oversized
//!   credentials and session tokens: refused, never served, never a 5xx.
//! - Afterwards: no panic in either server's output, and every payment
//!   settled once per challenge on the emulator.
//!
//! No request is retried: a 503 fails the test. (A store can commit a
//! spend or a claim and still answer 503 when the answer comes too late;
//! a retry would then spend a second credit, or turn the paid access into
//! a replay, and the counts would no longer prove "exactly the paid
//! accesses".)
//!
//! Needs `MPP_TEST_STRIPE_API_BASE` and at least one of
//! `MPP_TEST_REDIS_URL` / `MPP_TEST_POSTGRES_URL` (`.ci/run` sets them);
//! without them it prints that it skipped, unless `CI` is set, where it
//! fails. Uses a fresh Redis key prefix and a fresh PostgreSQL table prefix
//! per run; the PostgreSQL tables are dropped when the run ends (through
//! `mpp_actix::runtime`: this file is actix-shop's test).

use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::wire::{Challenge, Credential, base64url};
use serde_json::{Value, json};

const KEY: &str = "sk_test_mpp_attack";
/// Metered sessions bought (ten reads each), then spent by `SPENDERS`
/// threads `SPENDS_EACH` times each across both processes: 96 spends on 36
/// remaining credits.
const SESSIONS: usize = 4;
const SPENDERS: usize = 12;
const SPENDS_EACH: usize = 8;
/// Concurrent uses of one paid credential.
const STORM: usize = 48;
const SECRET: &str = "attack-secret-of-at-least-thirty-two-bytes!";

/// The stores to attack through, or `None` after saying what is missing.
fn prerequisites() -> Option<(String, Vec<(&'static str, String)>)> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let base = var("MPP_TEST_STRIPE_API_BASE");
    let mut stores = Vec::new();
    if let Some(url) = var("MPP_TEST_REDIS_URL") {
        stores.push(("redis", url));
    }
    if let Some(url) = var("MPP_TEST_POSTGRES_URL") {
        stores.push(("postgres", url));
    }
    match base {
        Some(base) if !stores.is_empty() => Some((base, stores)),
        _ if std::env::var_os("CI").is_some() => panic!(
            "the attack test needs tools/stripe-emulator/start.sh (MPP_TEST_STRIPE_API_BASE) and a shared store (MPP_TEST_REDIS_URL or MPP_TEST_POSTGRES_URL), as .ci/run sets up"
        ),
        _ => {
            eprintln!(
                "skipped: set MPP_TEST_STRIPE_API_BASE (tools/stripe-emulator/start.sh) and MPP_TEST_REDIS_URL or MPP_TEST_POSTGRES_URL"
            );
            None
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server process; its stderr goes to a file read after the run.
struct Server {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Kept after a failure, for its panics and errors.
        if !std::thread::panicking() {
            let _ = std::fs::remove_file(&self.log);
        } else {
            eprintln!("server output kept in {}", self.log.display());
        }
    }
}

impl Server {
    fn start(bin: &str, port_env: &str, base: &str, store: &str, prefix: &str, name: &str) -> Self {
        let port = free_port();
        let log = std::env::temp_dir().join(format!(
            "mpp-attack-{}-{name}-{port}.log",
            std::process::id()
        ));
        let err = std::fs::File::create(&log).unwrap();
        let child = Command::new(bin)
            .env(port_env, port.to_string())
            .env("ROCKET_ADDRESS", "127.0.0.1")
            .env("ROCKET_LOG_LEVEL", "critical")
            .env("MPP_SECRET_KEY", SECRET)
            .env("MPP_REALM", "shop.test")
            .env("MPP_STORE", store)
            .env("MPP_STORE_PREFIX", prefix)
            .env("STRIPE_SECRET_KEY", KEY)
            .env("STRIPE_API_BASE", base)
            .env("STRIPE_NETWORK_ID", "profile_test_attack")
            .env("RUST_BACKTRACE", "1")
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .unwrap();
        let server = Self { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "{bin} did not start listening on {port}: {}",
                server.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// One HTTP/1.1 exchange, one connection.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn problem(&self) -> String {
        serde_json::from_str::<Value>(&self.body)
            .ok()
            .and_then(|v| v["type"].as_str().map(str::to_owned))
            .unwrap_or_default()
            .rsplit("/problems/")
            .next()
            .unwrap_or_default()
            .to_owned()
    }
}

fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    let mut socket = TcpStream::connect(("127.0.0.1", port)).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    // A server may answer and close before reading an oversized request.
    let _ = socket.write_all(request.as_bytes());
    let mut raw = Vec::new();
    let _ = socket.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    // 0: the server closed the connection without an answer (some stacks
    // do that to a request whose head is too large).
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_owned(),
    }
}

fn get(port: u16, path: &str, authorization: Option<&str>) -> Answer {
    match authorization {
        Some(auth) => http(port, "GET", path, &[("Authorization", auth)], ""),
        None => http(port, "GET", path, &[], ""),
    }
}

/// One request, answered on its merits: never retried, and a 503 fails
/// the test (see the module documentation).
fn get_answered(port: u16, path: &str, authorization: &str) -> Answer {
    let answer = get(port, path, Some(authorization));
    assert_ne!(
        answer.status, 503,
        "{path} answered 503 (a store timed out under this load; a spend or claim may have committed unserved): {answer:?}"
    );
    answer
}

/// A run's PostgreSQL tables, dropped when the run ends (after a failure
/// too), after both servers have stopped.
struct PostgresTables {
    url: String,
    prefix: String,
}

impl Drop for PostgresTables {
    fn drop(&mut self) {
        let (url, prefix) = (self.url.clone(), self.prefix.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = actix_web::rt::Runtime::new().map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let store = mpp_actix::runtime::store::SqlStore::connect(&url, &prefix)
                    .await
                    .map_err(|e| e.to_string())?;
                store.drop_tables().await.map_err(|e| e.to_string())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!(
                "could not drop the attack's tables {}*: {dropped:?}",
                self.prefix
            );
        }
    }
}

/// `POST {base}{path}` (form) on the emulator, as JSON.
fn emulator(base: &str, method: &str, path: &str, form: &[(&str, String)]) -> Value {
    let authority = base.trim_start_matches("http://").trim_end_matches('/');
    let port: u16 = authority.rsplit(':').next().unwrap().parse().unwrap();
    let body: Vec<String> = form
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    let auth = format!("Bearer {KEY}");
    let mut headers = vec![("Authorization", auth.as_str())];
    if method == "POST" {
        headers.push(("Content-Type", "application/x-www-form-urlencoded"));
    }
    let answer = http(port, method, path, &headers, &body.join("&"));
    // The emulator may answer chunked: the JSON runs from the first `{` or
    // `[` to the last `}` or `]`.
    let body = &answer.body;
    let start = body.find(['{', '[']).unwrap_or(0);
    let end = body.rfind(['}', ']']).unwrap_or(0);
    serde_json::from_str(&body[start..=end.max(start)])
        .unwrap_or_else(|e| panic!("{e}: {answer:?}"))
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A Shared Payment Token for `max_amount` cents, as a wallet mints one.
fn mint_spt(base: &str, max_amount: u64) -> String {
    let expires = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let token = emulator(
        base,
        "POST",
        "/v1/test_helpers/shared_payment/granted_tokens",
        &[
            ("payment_method", "pm_card_visa".to_owned()),
            ("usage_limits[currency]", "usd".to_owned()),
            ("usage_limits[max_amount]", max_amount.to_string()),
            ("usage_limits[expires_at]", expires.to_string()),
        ],
    );
    token["id"].as_str().unwrap().to_owned()
}

/// The challenge of a fresh 402 from `path`.
fn challenge(port: u16, path: &str) -> Challenge {
    let answer = get(port, path, None);
    assert_eq!(answer.status, 402, "{answer:?}");
    Challenge::parse(answer.header("www-authenticate").unwrap()).unwrap()
}

fn credential(challenge: &Challenge, spt: &str) -> String {
    Credential {
        challenge: challenge.clone(),
        payload: json!({"spt": spt}).as_object().unwrap().clone(),
        source: None,
    }
    .to_header()
}

/// PaymentIntent creations the emulator answered 200, first time (not an
/// idempotent replay), by challenge id.
fn intents_by_challenge(base: &str) -> BTreeMap<String, usize> {
    let seen = emulator(base, "GET", "/_shim/requests", &[]);
    let mut counts = BTreeMap::new();
    for request in seen.as_array().unwrap() {
        let Some(key) = request["idempotency_key"].as_str() else {
            continue;
        };
        if request["status"] == 200 && request["replayed"] == false {
            // mpp_<challenge id>_<spt>; challenge ids are 43 characters.
            if let Some(id) = key.strip_prefix("mpp_").and_then(|k| k.get(..43)) {
                *counts.entry(id.to_owned()).or_insert(0) += 1;
            }
        }
    }
    counts
}

/// Every answer the attack got, for the final checks.
#[derive(Default)]
struct Tally {
    statuses: BTreeMap<u16, usize>,
    served: usize,
}

impl Tally {
    fn record(&mut self, answer: &Answer) {
        *self.statuses.entry(answer.status).or_insert(0) += 1;
        if answer.status == 200 {
            self.served += 1;
        }
    }
}

/// Asserts a refusal is a payment problem with a fresh challenge (or a
/// framework's own 4xx for a request it would not even read), never a
/// success and never a 5xx.
fn assert_refused(answer: &Answer, what: &str) {
    match answer.status {
        402 => {
            assert!(
                answer.header("www-authenticate").is_some(),
                "{what}: a 402 without a fresh challenge: {answer:?}"
            );
            assert_eq!(answer.header("cache-control"), Some("no-store"), "{what}");
            assert!(answer.header("payment-receipt").is_none(), "{what}");
        }
        400 | 413 | 431 => {
            assert!(answer.header("payment-receipt").is_none(), "{what}");
        }
        0 if what.contains("oversized") || what.contains("headers") => {}
        status => panic!("{what}: answered {status}: {answer:?}"),
    }
}

/// The whole attack against two processes of `bin` sharing each available
/// store.
pub(crate) fn attack_the_example(bin: &str, port_env: &str) {
    let Some((base, stores)) = prerequisites() else {
        return;
    };
    for (kind, url) in stores {
        let run = format!(
            "{}_{:x}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        );
        let (prefix, _tables) = match kind {
            "redis" => (format!("mpp:attack:{run}:"), None),
            _ => {
                let prefix = format!("mpp_attack_{run}_");
                let tables = PostgresTables {
                    url: url.clone(),
                    prefix: prefix.clone(),
                };
                (prefix, Some(tables))
            }
        };
        println!("== attack through {kind} ({prefix})");
        let a = Server::start(bin, port_env, &base, &url, &prefix, &format!("{kind}-a"));
        let b = Server::start(bin, port_env, &base, &url, &prefix, &format!("{kind}-b"));
        let ports = [a.port, b.port];
        let mut paid_challenges: HashSet<String> = HashSet::new();

        // 1. Metered sessions bought on one process, spent concurrently on
        //    both: each serves exactly the ten reads it was bought for.
        let sessions: Vec<String> = (0..SESSIONS)
            .map(|i| {
                let port = ports[i % 2];
                let c = challenge(port, "/report");
                let paid = get(
                    port,
                    "/report",
                    Some(&credential(&c, &mint_spt(&base, 500))),
                );
                assert_eq!(paid.status, 200, "{paid:?}");
                paid_challenges.insert(c.id.clone());
                let header = paid.header("payment-session").expect("a session header");
                let info = super::wire::SessionInfo::parse(header).unwrap();
                assert_eq!(info.remaining, 9);
                info.id
            })
            .collect();
        let served = Arc::new(Mutex::new(BTreeMap::<String, usize>::new()));
        let tally = Arc::new(Mutex::new(Tally::default()));
        let threads: Vec<_> = (0..SPENDERS)
            .map(|t| {
                let sessions = sessions.clone();
                let served = served.clone();
                let tally = tally.clone();
                std::thread::spawn(move || {
                    for i in 0..SPENDS_EACH {
                        let id = &sessions[(t + i) % sessions.len()];
                        // Half the threads on each process, every session on both.
                        let port = ports[t % 2];
                        let auth = format!("Payment session=\"{id}\"");
                        let answer = get_answered(port, "/report", &auth);
                        tally.lock().unwrap().record(&answer);
                        match answer.status {
                            200 => *served.lock().unwrap().entry(id.clone()).or_insert(0) += 1,
                            402 => assert_eq!(answer.problem(), "session/exhausted", "{answer:?}"),
                            _ => panic!("a session spend answered {answer:?}"),
                        }
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        // More spends than credits: exactly nine more per session served.
        let served = served.lock().unwrap().clone();
        let counts: Vec<usize> = sessions
            .iter()
            .map(|id| served.get(id).copied().unwrap_or(0))
            .collect();
        assert_eq!(counts, vec![9; SESSIONS], "credits served per session");
        let tally = tally.lock().unwrap();
        assert_eq!(tally.served, 9 * SESSIONS, "{:?}", tally.statuses);
        let spends = SPENDERS * SPENDS_EACH;
        assert_eq!(
            tally.statuses,
            BTreeMap::from([(200, 9 * SESSIONS), (402, spends - 9 * SESSIONS)]),
            "every spend served or refused as exhausted, once"
        );
        // Every credit bought was used by a served request: none spent
        // without an answer.
        for id in &sessions {
            let after = get_answered(a.port, "/report", &format!("Payment session=\"{id}\""));
            assert_eq!(after.status, 402, "{after:?}");
            assert_eq!(after.problem(), "session/exhausted", "{after:?}");
        }
        println!(
            "   metered: {SESSIONS} sessions, {} concurrent spends on 2 processes -> {:?}, served per session {counts:?}",
            SPENDERS * SPENDS_EACH,
            tally.statuses
        );
        drop(tally);

        // 2. A storm of one paid credential against both processes at once.
        let c = challenge(a.port, "/quote");
        let storm = credential(&c, &mint_spt(&base, 100));
        paid_challenges.insert(c.id.clone());
        let storm_tally = Arc::new(Mutex::new(Tally::default()));
        let threads: Vec<_> = (0..STORM)
            .map(|t| {
                let storm = storm.clone();
                let storm_tally = storm_tally.clone();
                std::thread::spawn(move || {
                    let answer = get_answered(ports[t % 2], "/quote", &storm);
                    if answer.status != 200 {
                        assert_refused(&answer, "replayed credential");
                        assert_eq!(answer.problem(), "invalid-challenge", "{answer:?}");
                    }
                    storm_tally.lock().unwrap().record(&answer);
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let storm_tally = storm_tally.lock().unwrap();
        assert_eq!(
            storm_tally.statuses,
            BTreeMap::from([(200, 1), (402, STORM - 1)]),
            "replay storm: one access, every other use a replay"
        );
        println!(
            "   replay storm: {STORM} concurrent uses of one credential -> {:?}",
            storm_tally.statuses
        );

        // 3. Forged, truncated and oversized credentials and tokens.
        let fresh = challenge(b.port, "/quote");
        let spt = mint_spt(&base, 100);
        let mut forged: Vec<(&str, String)> = Vec::new();
        let mut resigned = fresh.clone();
        resigned.id = base64url::encode([7u8; 32]);
        forged.push(("a made-up challenge id", credential(&resigned, &spt)));
        let mut cheaper = fresh.clone();
        let mut fields = cheaper.request.fields().clone();
        fields.insert("amount".into(), json!("1"));
        cheaper.request = super::wire::PaymentRequest::from_fields(fields);
        forged.push(("a tampered amount", credential(&cheaper, &spt)));
        let mut other_realm = fresh.clone();
        other_realm.realm = "evil.test".into();
        forged.push(("another realm", credential(&other_realm, &spt)));
        let mut later = fresh.clone();
        later.expires = Some("2099-01-01T00:00:00Z".into());
        forged.push(("a pushed-back expiry", credential(&later, &spt)));
        let post = challenge(a.port, "/posts/1");
        forged.push(("a cheaper route's challenge", credential(&post, &spt)));
        let report = challenge(a.port, "/report");
        forged.push(("another route's challenge", credential(&report, &spt)));
        forged.push(("the replayed storm credential", storm.clone()));
        forged.push((
            "an unknown session",
            "Payment session=\"sess_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"".into(),
        ));
        forged.push(("an empty session", "Payment session=\"\"".into()));
        forged.push((
            "a session of another scope",
            format!("Payment session=\"{}\"", sessions[0]),
        ));
        forged.push(("not base64", "Payment !!!not-base64!!!".into()));
        forged.push((
            "base64 of garbage",
            format!("Payment {}", base64url::encode("{\"challenge\": 1}")),
        ));
        forged.push((
            "a JSON array",
            format!("Payment {}", base64url::encode("[]")),
        ));
        forged.push(("an empty scheme", "Payment".into()));
        forged.push(("bare words", "Payment a b c d".into()));
        let good = credential(&fresh, &spt);
        for cut in (8..good.len()).step_by(good.len() / 24 + 1) {
            forged.push(("a truncated credential", good[..cut].to_owned()));
        }
        forged.push((
            "an oversized credential",
            format!("Payment {}", "A".repeat(40_000)),
        ));
        forged.push((
            "an oversized session id",
            format!("Payment session=\"{}\"", "s".repeat(20_000)),
        ));
        forged.push((
            "many parameters",
            format!(
                "Payment {}",
                (0..200)
                    .map(|i| format!("p{i}=1"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
        let mut attack_tally = Tally::default();
        for (i, (what, auth)) in forged.iter().enumerate() {
            let port = ports[i % 2];
            let path = match *what {
                "a session of another scope" => "/premium",
                w if w.contains("session") => "/report",
                _ => "/quote",
            };
            let answer = get_answered(port, path, auth);
            attack_tally.record(&answer);
            assert_refused(&answer, what);
        }
        // Hundreds of headers, and an oversized header block.
        let many: Vec<(&str, &str)> =
            std::iter::repeat_n(("Authorization", "Bearer x"), 150).collect();
        let answer = http(a.port, "GET", "/quote", &many, "");
        attack_tally.record(&answer);
        assert_refused(&answer, "150 Authorization headers");
        let huge = "x".repeat(200_000);
        let answer = http(b.port, "GET", "/quote", &[("X-Padding", &huge)], "");
        attack_tally.record(&answer);
        assert_refused(&answer, "an oversized header block (200 kB)");
        assert_eq!(attack_tally.served, 0);
        println!(
            "   forged/truncated/oversized: {} requests -> {:?}",
            forged.len() + 2,
            attack_tally.statuses
        );

        // The genuine credential still pays, once, after all that.
        let paid = get(b.port, "/quote", Some(&good));
        assert_eq!(paid.status, 200, "{paid:?}");
        paid_challenges.insert(fresh.id.clone());
        assert_eq!(
            get(a.port, "/quote", Some(&good)).problem(),
            "invalid-challenge"
        );
        for port in ports {
            assert_eq!(get(port, "/health", None).status, 200);
        }

        // 4. The rail settled once per paid challenge, and nothing else.
        let intents = intents_by_challenge(&base);
        for id in &paid_challenges {
            assert_eq!(
                intents.get(id),
                Some(&1),
                "PaymentIntents for challenge {id}"
            );
        }
        // The tampered copies of `fresh` share its id (paid once, above);
        // the others were never paid.
        for id in [&resigned.id, &post.id, &report.id] {
            assert!(
                !intents.contains_key(id.as_str()),
                "a forged credential reached Stripe: {id}"
            );
        }
        println!(
            "   emulator: one PaymentIntent for each of {} paid challenges; no request answered 503",
            paid_challenges.len()
        );

        // 5. No panic in either server.
        for server in [&a, &b] {
            let output = server.output();
            assert!(!output.contains("panicked"), "a server panicked:\n{output}");
        }
    }
}
