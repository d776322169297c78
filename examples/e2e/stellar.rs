//! End to end on Stellar: an example server binary, configured with
//! `STELLAR_*` like a deployment, paid over HTTP by a Stellar payer
//! (transactions and authorization entries signed by the official
//! @stellar/stellar-sdk in `mpp-runtime/tests/data/stellar`, re-signed with
//! the challenge's expiry where the wallet would set it), against the
//! Stellar RPC of `mpp-runtime/tests/support/stellar_rpc.rs` on 127.0.0.1.
//! Shared by both examples' tests.
//!
//! - Pull: the server simulates and submits the payer's signed transfer;
//!   a wrong amount is a 402 `verification-failed` whose challenge is then
//!   paid.
//! - Push: the payer submitted the transfer and signs
//!   `"{challenge id}:{hash}"`.
//! - Sponsored: with `STELLAR_FEE_PAYER_SECRET`, the payer signs only its
//!   authorization entry and the server's fee account submits.
//!
//! Needs nothing outside this repository: no network beyond loopback.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::rt::rails::stellar::transfer::{Envelope, muxed_key};
use crate::rt::wire::{Challenge, Credential, Timestamp};
use crate::stellar_rpc::MockRpc;
use crate::stellar_support::{
    account, bind, did, envelope, fixtures, keypair, network_id, pull, push, resign_at,
};

const SPONSOR_SEQUENCE: i64 = 4_294_967_296_123;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn start(bin: &str, port_env: &str, port: u16, env: &[(&str, String)]) -> Server {
    let child = Command::new(bin)
        .env(port_env, port.to_string())
        .env("ROCKET_ADDRESS", "127.0.0.1")
        .env("ROCKET_LOG_LEVEL", "critical")
        .env("MPP_SECRET_KEY", "e2e-secret-of-at-least-thirty-two-bytes!")
        .env("MPP_REALM", "shop.test")
        .env_remove("TEMPO_RECIPIENT")
        .env_remove("EVM_RECIPIENT")
        .env_remove("MPP_STORE")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{bin} did not start listening on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

/// An HTTP answer: status, headers (lowercase names), body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The challenges of a 402, by method.
    fn challenge(&self, method: &str) -> Challenge {
        self.headers
            .iter()
            .filter(|(n, _)| n == "www-authenticate")
            .filter_map(|(_, v)| Challenge::parse(v).ok())
            .find(|c| c.method == method)
            .unwrap_or_else(|| panic!("no {method} challenge in {:?}", self.headers))
    }

    fn methods(&self) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n == "www-authenticate")
            .filter_map(|(_, v)| Challenge::parse(v).ok())
            .map(|c| c.method)
            .collect()
    }

    fn json(&self) -> Value {
        let start = self.body.find('{').unwrap_or(0);
        let end = self.body.rfind('}').map_or(self.body.len(), |e| e + 1);
        serde_json::from_str(&self.body[start..end]).unwrap_or(Value::Null)
    }
}

fn get(port: u16, path: &str, authorization: Option<&str>) -> Answer {
    let mut socket = TcpStream::connect(("127.0.0.1", port)).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let auth = authorization.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    write!(
        socket,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    socket.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_owned(),
    }
}

fn credential(challenge: &Challenge, payload: Value, source: Option<Value>) -> String {
    Credential {
        challenge: challenge.clone(),
        payload: payload.as_object().unwrap().clone(),
        source,
    }
    .to_header()
}

fn expiry(challenge: &Challenge) -> u64 {
    Timestamp::parse_rfc3339(challenge.expires.as_deref().unwrap())
        .unwrap()
        .unix()
}

fn stellar_env(rpc: &MockRpc) -> Vec<(&'static str, String)> {
    vec![
        ("STELLAR_RECIPIENT", account("recipient")),
        ("STELLAR_RPC_URL", rpc.url.clone()),
        ("STELLAR_NETWORK", "stellar:testnet".to_owned()),
        ("STELLAR_POLL_INTERVAL_MS", "20".to_owned()),
        ("STELLAR_POLL_ATTEMPTS", "50".to_owned()),
    ]
}

/// A payer pays the example's `/weather` (0.50 USD, offered on Stellar and
/// by card) in USDC on Stellar, in pull and push mode; a wrong payment is
/// refused and its challenge then paid.
pub(crate) fn pays_the_example_on_stellar(bin: &str, port_env: &str) {
    let name = Path::new(bin)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let rpc = MockRpc::start(unix_now());
    let port = free_port();
    let _server = start(bin, port_env, port, &stellar_env(&rpc));
    let payer = keypair("payer");
    let path = "/weather?city=Porto";

    let unpaid = get(port, path, None);
    assert_eq!(unpaid.status, 402, "{}", unpaid.body);
    assert_eq!(
        unpaid.methods(),
        ["stellar", "stripe"],
        "Stellar first, then card"
    );
    let c = unpaid.challenge("stellar");
    // The network's clock (ledger close times) is the wall clock: what is
    // included from now on was included after the challenge was issued.
    rpc.now(unix_now());
    let request = c.request.fields();
    assert_eq!(
        request["amount"], "5000000",
        "0.50 USD = 5000000 USDC base units (7 decimals)"
    );
    assert_eq!(request["currency"], fixtures()["token"]);
    assert_eq!(
        request["methodDetails"],
        json!({"credentialTypes": ["transaction", "signedHash"], "network": "stellar:testnet"})
    );

    // A transfer of the wrong amount: 402, nothing submitted, and the same
    // challenge is then paid.
    let (wrong, _) = resign_at(&envelope("pull", "wrong_amount"), expiry(&c), 0, &payer);
    let refused = get(
        port,
        path,
        Some(&credential(&c, pull(&wrong), Some(did(&account("payer"))))),
    );
    assert_eq!(refused.status, 402, "{}", refused.body);
    let problem = refused.json();
    assert_eq!(
        problem["type"], "https://paymentauth.org/problems/verification-failed",
        "{problem}"
    );
    assert!(
        problem["detail"].as_str().unwrap().contains("4999999"),
        "{problem}"
    );
    assert!(
        refused.header("www-authenticate").is_some(),
        "a fresh challenge"
    );
    assert!(rpc.sent().is_empty());

    // Pull: the wallet signs with the challenge's expiry as maxTime.
    let (signed, hash) = resign_at(&envelope("pull", "good"), expiry(&c), 1, &payer);
    let paid = get(
        port,
        path,
        Some(&credential(&c, pull(&signed), Some(did(&account("payer"))))),
    );
    assert_eq!(paid.status, 200, "{}", paid.body);
    let body = paid.json();
    println!("{name}: stellar pull -> {body}");
    assert_eq!(body["method"], "stellar");
    assert_eq!(body["paid_with"], hash);
    assert!(paid.header("payment-receipt").is_some());
    assert_eq!(rpc.sent(), vec![signed.clone()], "submitted unchanged");

    // The same credential again is refused: a challenge pays once.
    let replay = get(port, path, Some(&credential(&c, pull(&signed), None)));
    assert_eq!(replay.status, 402);

    // Push: the payer submits the transfer once it has the challenge, and
    // binds the hash to it.
    let c = get(port, path, None).challenge("stellar");
    rpc.now(unix_now());
    let pushed = rpc.include(&envelope("push", "good"), true, 0);
    let paid = get(
        port,
        path,
        Some(&credential(
            &c,
            push(&pushed, &bind(&payer, &c.id, &pushed)),
            Some(did(&account("payer"))),
        )),
    );
    assert_eq!(paid.status, 200, "{}", paid.body);
    let body = paid.json();
    println!("{name}: stellar push -> {body}");
    assert_eq!(body["paid_with"], pushed);
    // That hash cannot pay again.
    let c = get(port, path, None).challenge("stellar");
    let again = get(
        port,
        path,
        Some(&credential(
            &c,
            push(&pushed, &bind(&payer, &c.id, &pushed)),
            None,
        )),
    );
    assert_eq!(again.status, 402, "{}", again.body);
    assert!(
        again.json()["detail"]
            .as_str()
            .unwrap()
            .contains("already paid")
    );
}

/// With `STELLAR_FEE_PAYER_SECRET`, the payer signs only its authorization
/// entry; the example's fee account builds, signs and submits.
pub(crate) fn pays_the_example_on_stellar_with_sponsored_fees(bin: &str, port_env: &str) {
    let name = Path::new(bin)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let rpc = MockRpc::start(unix_now());
    let sponsor = keypair("sponsor");
    rpc.account(sponsor.public_bytes(), SPONSOR_SEQUENCE);
    let port = free_port();
    let mut env = stellar_env(&rpc);
    env.push((
        "STELLAR_FEE_PAYER_SECRET",
        fixtures()["keys"]["sponsor"]["secret"]
            .as_str()
            .unwrap()
            .to_owned(),
    ));
    let _server = start(bin, port_env, port, &env);
    let path = "/weather";

    let c = get(port, path, None).challenge("stellar");
    rpc.now(unix_now());
    assert_eq!(
        c.request.fields()["methodDetails"],
        json!({"credentialTypes": ["transaction"], "feePayer": true, "network": "stellar:testnet"})
    );
    // The authorization entry expires at the fixtures' latest ledger + 50,
    // within the challenge's 300 s (60 ledgers).
    let client = envelope("sponsored", "good");
    let paid = get(
        port,
        path,
        Some(&credential(&c, pull(&client), Some(did(&account("payer"))))),
    );
    assert_eq!(paid.status, 200, "{}", paid.body);
    let body = paid.json();
    println!("{name}: stellar sponsored pull -> {body}");
    let sent = rpc.sent();
    assert_eq!(sent.len(), 1);
    let submitted = Envelope::decode(&sent[0], network_id()).unwrap();
    assert_eq!(body["paid_with"], submitted.hash_hex());
    assert_eq!(
        muxed_key(&submitted.transaction().source_account),
        sponsor.public_bytes(),
        "the fee account is the source"
    );
    assert!(submitted.check_signed().is_ok());
    assert_eq!(
        rpc.sequence(sponsor.public_bytes()),
        Some(SPONSOR_SEQUENCE + 1)
    );
}
