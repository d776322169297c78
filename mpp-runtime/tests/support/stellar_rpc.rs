//! A Stellar RPC (Soroban RPC) on 127.0.0.1 for the tests: JSON-RPC 2.0 over
//! a minimal HTTP/1.1 server on std threads, answering `getNetwork`,
//! `getLatestLedger`, `simulateTransaction`, `sendTransaction`,
//! `getTransaction`, `getLedgerEntries` (accounts and authorization nonces)
//! and `getEvents` with the response objects of
//! `tests/data/stellar/rpc-responses.json` (generated with the official
//! @stellar/stellar-sdk by `tools/stellar/generate.mjs`, in stellar-rpc's
//! wire shapes and parsed by the SDK's own client), filled in with what was
//! submitted. It records every call.
//!
//! Like the real network it hashes what it is sent, refuses an envelope not
//! signed by its source (`txBAD_AUTH`) or with the wrong sequence number
//! for an account it tracks (`txBAD_SEQ`), includes accepted transactions
//! after a configurable number of polls, and bumps the sequence of the
//! accounts it tracks. Like stellar-rpc, `getTransaction` finds a fee bump
//! by its inner transaction's hash too, and answers with the fee bump.
//!
//! The including crate root declares `use <the runtime crate> as rt;`
//! (`mpp_runtime`, or an adapter's `runtime` re-export), so the examples'
//! end-to-end tests share this file.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::rt::rails::stellar::transfer::{Envelope, muxed_key, to_hex};
use crate::rt::rails::stellar::xdr::{
    LedgerEntryData, LedgerKey, Limits, OperationBody, ReadXdr, ScNonceKey, ScVal, SequenceNumber,
    SorobanCredentials, TransactionEnvelope, WriteXdr,
};

/// The fixture files' directory.
pub fn data_dir() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for candidate in [
        manifest.join("tests/data/stellar"),
        manifest.join("../../mpp-runtime/tests/data/stellar"),
    ] {
        if candidate.is_dir() {
            return candidate;
        }
    }
    panic!("tests/data/stellar not found from {}", manifest.display());
}

/// A fixture file, parsed.
pub fn data(name: &str) -> Value {
    let path = data_dir().join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// What happens to a transaction once accepted by `sendTransaction`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Included and successful after this many `getTransaction` polls.
    Success { after_polls: u32 },
    /// Included and failed (`txFAILED`).
    Failed,
    /// Never included (`NOT_FOUND` forever).
    Never,
}

#[derive(Debug, Clone)]
struct Record {
    envelope: String,
    status: &'static str,
    polls_left: u32,
    created_at: i64,
    ledger: u32,
    fee_bump: bool,
    /// The inner transaction's hash (equal to the key without a fee bump).
    inner_hash: String,
}

struct State {
    templates: Value,
    passphrase: String,
    network_id: [u8; 32],
    latest_ledger: u32,
    now: i64,
    /// Transactions by hash.
    ledger: HashMap<String, Record>,
    /// Account sequence numbers the server tracks (fee accounts).
    accounts: HashMap<[u8; 32], i64>,
    simulate_with: String,
    send_with: Option<String>,
    outcome: Outcome,
    down: bool,
    calls: Vec<(String, Value)>,
    sent: Vec<String>,
}

/// The test Stellar RPC.
pub struct MockRpc {
    pub url: String,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    port: u16,
}

impl Drop for MockRpc {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

impl MockRpc {
    /// A testnet RPC at the fixtures' latest ledger, its clock at `now`.
    pub fn start(now: i64) -> Self {
        let templates = data("rpc-responses.json");
        let passphrase = templates["getNetwork"]["passphrase"]
            .as_str()
            .unwrap()
            .to_owned();
        let latest_ledger = templates["getLatestLedger"]["sequence"].as_u64().unwrap() as u32;
        let state = Arc::new(Mutex::new(State {
            network_id: crate::rt::rails::stellar::keys::network_id(&passphrase),
            templates,
            passphrase,
            latest_ledger,
            now,
            ledger: HashMap::new(),
            accounts: HashMap::new(),
            simulate_with: "simulateSuccess".to_owned(),
            send_with: None,
            outcome: Outcome::Success { after_polls: 1 },
            down: false,
            calls: Vec::new(),
            sent: Vec::new(),
        }));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        {
            let state = state.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let state = state.clone();
                    std::thread::spawn(move || serve(stream, &state));
                }
            });
        }
        Self {
            url: format!("http://127.0.0.1:{port}/"),
            state,
            stop,
            port,
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    /// The simulation answer: a `simulate*` entry of rpc-responses.json.
    pub fn simulate_with(&self, template: &str) {
        let name = template.to_owned();
        self.with(|s| s.simulate_with = name);
    }

    /// Answers every `sendTransaction` with a `send*` template (`None`:
    /// judge the envelope).
    pub fn send_with(&self, template: Option<&str>) {
        let name = template.map(str::to_owned);
        self.with(|s| s.send_with = name);
    }

    /// What happens to accepted transactions.
    pub fn outcome(&self, outcome: Outcome) {
        self.with(|s| s.outcome = outcome);
    }

    /// Cuts the server off: connections are closed without an answer.
    pub fn set_down(&self, down: bool) {
        self.with(|s| s.down = down);
    }

    /// Serves another network's passphrase from `getNetwork`.
    pub fn passphrase(&self, passphrase: &str) {
        let p = passphrase.to_owned();
        self.with(|s| s.passphrase = p);
    }

    /// Moves the network's latest ledger.
    pub fn latest_ledger(&self, ledger: u32) {
        self.with(|s| s.latest_ledger = ledger);
    }

    /// The server's clock (unix seconds; `createdAt` of inclusions).
    pub fn now(&self, now: i64) {
        self.with(|s| s.now = now);
    }

    /// Tracks an account (a fee payer) at `sequence`.
    pub fn account(&self, public: [u8; 32], sequence: i64) {
        self.with(|s| s.accounts.insert(public, sequence));
    }

    /// An account's sequence number as the network sees it.
    pub fn sequence(&self, public: [u8; 32]) -> Option<i64> {
        self.with(|s| s.accounts.get(&public).copied())
    }

    /// Puts a transaction on the ledger (`SUCCESS` or `FAILED`), included
    /// `age` seconds before now. Returns its hash.
    pub fn include(&self, envelope: &str, success: bool, age: i64) -> String {
        self.with(|s| {
            let env = decode(envelope, s.network_id);
            let hash = env.hash_hex();
            let record = Record {
                envelope: envelope.to_owned(),
                status: if success { "SUCCESS" } else { "FAILED" },
                polls_left: 0,
                created_at: s.now - age,
                ledger: s.latest_ledger - 1,
                fee_bump: env.inner_hash != env.hash,
                inner_hash: to_hex(&env.inner_hash),
            };
            s.ledger.insert(hash.clone(), record);
            hash
        })
    }

    /// The calls received, `(method, params)`.
    pub fn calls(&self) -> Vec<(String, Value)> {
        self.with(|s| s.calls.clone())
    }

    /// The methods called, in order.
    pub fn methods(&self) -> Vec<String> {
        self.with(|s| s.calls.iter().map(|(m, _)| m.clone()).collect())
    }

    /// The envelopes `sendTransaction` accepted or refused, in order.
    pub fn sent(&self) -> Vec<String> {
        self.with(|s| s.sent.clone())
    }

    /// The envelopes `simulateTransaction` was asked about.
    pub fn simulated(&self) -> Vec<String> {
        self.with(|s| {
            s.calls
                .iter()
                .filter(|(m, _)| m == "simulateTransaction")
                .map(|(_, p)| p["transaction"].as_str().unwrap().to_owned())
                .collect()
        })
    }

    /// Forgets the recorded calls.
    pub fn clear_calls(&self) {
        self.with(|s| {
            s.calls.clear();
            s.sent.clear();
        });
    }
}

fn decode(envelope: &str, network_id: [u8; 32]) -> Envelope {
    let env = TransactionEnvelope::from_xdr_base64(envelope, Limits::none()).unwrap();
    Envelope::new(env, network_id).unwrap()
}

fn serve(stream: TcpStream, state: &Mutex<State>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    if state.lock().unwrap().down {
        // Like a node that is gone: the connection closes unanswered.
        return;
    }
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let answer = {
        let mut state = state.lock().unwrap();
        let method = request["method"].as_str().unwrap_or_default().to_owned();
        let params = request["params"].clone();
        state.calls.push((method.clone(), params.clone()));
        match handle(&mut state, &method, &params) {
            Ok(result) => json!({"jsonrpc": "2.0", "id": request["id"], "result": result}),
            Err((code, message)) => json!({
                "jsonrpc": "2.0", "id": request["id"],
                "error": {"code": code, "message": message}
            }),
        }
    };
    let text = answer.to_string();
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
    let _ = stream.flush();
}

fn template(state: &State, name: &str) -> Value {
    let value = state.templates[name].clone();
    assert!(!value.is_null(), "no `{name}` in rpc-responses.json");
    value
}

fn handle(state: &mut State, method: &str, params: &Value) -> Result<Value, (i64, String)> {
    match method {
        "getNetwork" => {
            let mut answer = template(state, "getNetwork");
            answer["passphrase"] = json!(state.passphrase);
            Ok(answer)
        }
        "getLatestLedger" => {
            let mut answer = template(state, "getLatestLedger");
            answer["sequence"] = json!(state.latest_ledger);
            answer["closeTime"] = json!(state.now.to_string());
            Ok(answer)
        }
        "simulateTransaction" => {
            let envelope = params["transaction"]
                .as_str()
                .ok_or((-32602, "invalid_xdr".to_owned()))?;
            TransactionEnvelope::from_xdr_base64(envelope, Limits::none())
                .map_err(|_| (-32602, "invalid_xdr".to_owned()))?;
            let mut answer = template(state, &state.simulate_with.clone());
            answer["latestLedger"] = json!(state.latest_ledger);
            Ok(answer)
        }
        "sendTransaction" => send(state, params),
        "getTransaction" => {
            let hash = params["hash"]
                .as_str()
                .unwrap_or_default()
                .to_ascii_lowercase();
            Ok(transaction(state, &hash))
        }
        "getLedgerEntries" => {
            let key = params["keys"][0].as_str().unwrap_or_default();
            let key = LedgerKey::from_xdr_base64(key, Limits::none())
                .map_err(|_| (-32602, "cannot unmarshal key value".to_owned()))?;
            if let LedgerKey::ContractData(data) = &key
                && let ScVal::LedgerKeyNonce(ScNonceKey { nonce }) = data.key
            {
                let used = crate::rt::rails::stellar::keys::address_account(&data.contract)
                    .is_some_and(|payer| nonce_used(state, payer, nonce));
                let mut answer = template(
                    state,
                    if used {
                        "getLedgerEntriesNonce"
                    } else {
                        "getLedgerEntriesMissing"
                    },
                );
                if used {
                    answer["entries"][0]["key"] = params["keys"][0].clone();
                }
                answer["latestLedger"] = json!(state.latest_ledger);
                return Ok(answer);
            }
            let account = match key {
                LedgerKey::Account(a) => {
                    let crate::rt::rails::stellar::xdr::PublicKey::PublicKeyTypeEd25519(k) =
                        a.account_id.0;
                    Some(k.0)
                }
                _ => None,
            };
            match account.and_then(|a| state.accounts.get(&a).map(|seq| (a, *seq))) {
                Some((_, sequence)) => {
                    let mut answer = template(state, "getLedgerEntriesSponsor");
                    let entry = answer["entries"][0]["xdr"].as_str().unwrap().to_owned();
                    let mut data =
                        LedgerEntryData::from_xdr_base64(&entry, Limits::none()).unwrap();
                    if let LedgerEntryData::Account(account) = &mut data {
                        account.seq_num = SequenceNumber(sequence);
                    }
                    answer["entries"][0]["xdr"] =
                        json!(data.to_xdr_base64(Limits::none()).unwrap());
                    answer["entries"][0]["key"] = params["keys"][0].clone();
                    answer["latestLedger"] = json!(state.latest_ledger);
                    Ok(answer)
                }
                None => {
                    let mut answer = template(state, "getLedgerEntriesMissing");
                    answer["latestLedger"] = json!(state.latest_ledger);
                    Ok(answer)
                }
            }
        }
        "getEvents" => {
            // Every SAC transfer on the ledger (the rail filters and checks
            // them itself), newest last, in the template's shape.
            let mut answer = template(state, "getEventsTransfer");
            let model = answer["events"][0].clone();
            let mut events = Vec::new();
            let mut landed: Vec<(&String, &Record)> = state
                .ledger
                .iter()
                .filter(|(_, r)| r.status == "SUCCESS" && r.polls_left == 0)
                .collect();
            landed.sort_by_key(|(_, r)| r.ledger);
            for (hash, record) in landed {
                let mut event = model.clone();
                event["txHash"] = json!(hash);
                event["ledger"] = json!(record.ledger);
                events.push(event);
            }
            answer["events"] = json!(events);
            answer["latestLedger"] = json!(state.latest_ledger);
            Ok(answer)
        }
        _ => Err((-32601, "method not found".to_owned())),
    }
}

fn send(state: &mut State, params: &Value) -> Result<Value, (i64, String)> {
    let text = params["transaction"]
        .as_str()
        .ok_or((-32602, "invalid_xdr".to_owned()))?;
    let envelope = TransactionEnvelope::from_xdr_base64(text, Limits::none())
        .map_err(|_| (-32602, "invalid_xdr".to_owned()))?;
    let env = Envelope::new(envelope, state.network_id)
        .map_err(|_| (-32602, "invalid_hash".to_owned()))?;
    let hash = env.hash_hex();
    state.sent.push(text.to_owned());
    let answer = |state: &State, name: &str| {
        let mut answer = template(state, name);
        answer["hash"] = json!(hash);
        answer["latestLedger"] = json!(state.latest_ledger);
        answer["latestLedgerCloseTime"] = json!(state.now.to_string());
        answer
    };
    if let Some(name) = state.send_with.clone() {
        return Ok(answer(state, &name));
    }
    if state.ledger.contains_key(&hash) {
        return Ok(answer(state, "sendDuplicate"));
    }
    // stellar-core's checks that matter here: the source's signature and,
    // for accounts this server tracks, the sequence number.
    if env.check_signed().is_err() {
        return Ok(answer(state, "sendError"));
    }
    let source = muxed_key(&env.transaction().source_account);
    if let Some(current) = state.accounts.get(&source).copied() {
        if env.transaction().seq_num.0 != current + 1 {
            let mut refused = answer(state, "sendError");
            refused["errorResultXdr"] = json!(bad_seq_result());
            return Ok(refused);
        }
        state.accounts.insert(source, current + 1);
    }
    let (status, polls_left) = match state.outcome {
        Outcome::Success { after_polls } => ("SUCCESS", after_polls),
        Outcome::Failed => ("FAILED", 1),
        Outcome::Never => ("NEVER", 0),
    };
    let record = Record {
        envelope: text.to_owned(),
        status,
        polls_left,
        created_at: state.now,
        ledger: state.latest_ledger + 1,
        fee_bump: env.inner_hash != env.hash,
        inner_hash: to_hex(&env.inner_hash),
    };
    state.ledger.insert(hash.clone(), record);
    Ok(answer(state, "sendPending"))
}

/// Whether a landed, successful transaction used `payer`'s authorization
/// with `nonce` (the network then holds its nonce entry).
fn nonce_used(state: &State, payer: [u8; 32], nonce: i64) -> bool {
    state
        .ledger
        .values()
        .filter(|r| r.status == "SUCCESS" && r.polls_left == 0)
        .any(|r| {
            let env = decode(&r.envelope, state.network_id);
            env.transaction()
                .operations
                .iter()
                .any(|op| match &op.body {
                    OperationBody::InvokeHostFunction(invoke) => {
                        invoke.auth.iter().any(|entry| match &entry.credentials {
                            SorobanCredentials::Address(c) => {
                                c.nonce == nonce
                                    && crate::rt::rails::stellar::keys::address_account(&c.address)
                                        == Some(payer)
                            }
                            _ => false,
                        })
                    }
                    _ => false,
                })
        })
}

fn bad_seq_result() -> String {
    use crate::rt::rails::stellar::xdr::{
        TransactionResult, TransactionResultExt, TransactionResultResult,
    };
    TransactionResult {
        fee_charged: 100,
        result: TransactionResultResult::TxBadSeq,
        ext: TransactionResultExt::V0,
    }
    .to_xdr_base64(Limits::none())
    .unwrap()
}

fn transaction(state: &mut State, hash: &str) -> Value {
    // Like stellar-rpc, a fee bump is found by either of its hashes; the
    // answer is the fee bump's.
    let outer = state
        .ledger
        .iter()
        .find(|(_, r)| r.fee_bump && r.inner_hash == hash)
        .map(|(outer, _)| outer.clone());
    let hash = match &outer {
        Some(outer) if !state.ledger.contains_key(hash) => outer.as_str(),
        _ => hash,
    };
    let included = match state.ledger.get_mut(hash) {
        Some(record) if record.status != "NEVER" => {
            if record.polls_left > 0 {
                record.polls_left -= 1;
                None
            } else {
                Some(record.clone())
            }
        }
        _ => None,
    };
    match included {
        None => {
            let mut answer = template(state, "getTransactionNotFound");
            answer["txHash"] = json!(hash);
            answer["latestLedger"] = json!(state.latest_ledger);
            answer["latestLedgerCloseTime"] = json!(state.now.to_string());
            answer
        }
        Some(record) => {
            let name = if record.status == "SUCCESS" {
                "getTransactionSuccess"
            } else {
                "getTransactionFailed"
            };
            let mut answer = template(state, name);
            answer["txHash"] = json!(hash);
            answer["envelopeXdr"] = json!(record.envelope);
            answer["feeBump"] = json!(record.fee_bump);
            answer["ledger"] = json!(record.ledger);
            answer["createdAt"] = json!(record.created_at.to_string());
            answer["latestLedger"] = json!(state.latest_ledger.max(record.ledger));
            answer["latestLedgerCloseTime"] = json!(state.now.to_string());
            answer
        }
    }
}

/// A transaction's hash on the fixtures' network.
pub fn hash_of(envelope: &str) -> String {
    let passphrase = data("transactions.json")["passphrase"]
        .as_str()
        .unwrap()
        .to_owned();
    let id = crate::rt::rails::stellar::keys::network_id(&passphrase);
    to_hex(&decode(envelope, id).hash)
}
