//! End to end on real chains: an example server binary, the stock mppx 0.11
//! CLI (`tools/mppx`) and anvil (`tools/chain`). Shared by both examples'
//! tests.
//!
//! - Tempo (anvil in Tempo mode, URL in `MPP_TEST_TEMPO_RPC_URL`): the CLI
//!   pays `/weather` (offered by Tempo and by card) in pull mode (it signs,
//!   the server broadcasts) and in push mode (it broadcasts, the server
//!   checks the hash; `tools/mppx/tempo-push.config.mjs`).
//! - EVM (plain anvil with the EIP-3009 test token, `MPP_TEST_EVM_RPC_URL`
//!   and `MPP_TEST_EVM_TOKEN`): the CLI signs an authorization for `/rate`
//!   (`tools/mppx/evm.config.mjs`) and the server relays it.
//!
//! Balances are read on chain with `cast`. Without the chains or the tools
//! the tests print that they skipped, unless `CI` is set, where they fail:
//! CI must run them.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const PATH_USD: &str = "0x20c0000000000000000000000000000000000000";
/// anvil's dev account 9 funds Tempo payers (the runtime's tests use 0–7).
const FUNDER_KEY: &str = "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6";
/// anvil's dev account 0 deployed the EIP-3009 test token and mints it.
const TOKEN_OWNER_KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
/// anvil's dev account 8 relays EIP-3009 authorizations (pays their gas).
const RELAYER_KEY: &str = "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97";

struct Tools {
    rpc: String,
    mppx: PathBuf,
    cast: PathBuf,
    config: PathBuf,
}

/// The tools and the chain named by `rpc_var`, or `None` after saying what
/// is missing (a failure under `CI`).
fn tools(rpc_var: &str, config: &str, setup: &str) -> Option<Tools> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tools");
    let mppx = root.join("mppx/node_modules/.bin/mppx");
    let cast = root.join("chain/node_modules/.bin/cast");
    let rpc = std::env::var(rpc_var).ok().filter(|u| !u.is_empty());
    match rpc {
        Some(rpc) if mppx.exists() && cast.exists() => Some(Tools {
            rpc,
            mppx,
            cast,
            config: root.join("mppx").join(config),
        }),
        _ if std::env::var_os("CI").is_some() => panic!(
            "this end-to-end test needs {setup} ({rpc_var}), `npm ci --prefix tools/chain` and `npm ci --prefix tools/mppx`, as .ci/run sets up"
        ),
        _ => {
            eprintln!(
                "skipped: set {rpc_var} ({setup}) and run `npm ci --prefix tools/chain` and `npm ci --prefix tools/mppx`"
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

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn run(command: &mut Command) -> Output {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    output
}

impl Tools {
    fn cast(&self, args: &[&str]) -> String {
        let out = run(Command::new(&self.cast)
            .args(args)
            .args(["--rpc-url", &self.rpc]));
        text(&out.stdout).trim().to_owned()
    }

    /// A fresh key (anvil mines one expiring-nonce payment per sender)
    /// holding 5 pathUSD.
    fn funded_payer(&self) -> String {
        let (key, address) = self.new_wallet();
        self.cast(&[
            "send",
            "--private-key",
            FUNDER_KEY,
            PATH_USD,
            "transfer(address,uint256)",
            &address,
            "5000000",
        ]);
        key
    }

    fn new_wallet(&self) -> (String, String) {
        let out = run(Command::new(&self.cast).args(["wallet", "new", "--json"]));
        let wallet: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (
            wallet[0]["private_key"].as_str().unwrap().to_owned(),
            wallet[0]["address"].as_str().unwrap().to_owned(),
        )
    }

    fn balance(&self, token: &str, owner: &str) -> u128 {
        let out = self.cast(&["call", token, "balanceOf(address)(uint256)", owner]);
        out.split_whitespace().next().unwrap().parse().unwrap()
    }

    /// The `status` of a transaction's receipt (`0x1` on success).
    fn receipt_status(&self, hash: &str) -> String {
        let receipt: serde_json::Value =
            serde_json::from_str(&self.cast(&["receipt", hash, "--json"])).unwrap();
        receipt["status"].as_str().unwrap_or_default().to_owned()
    }

    /// Runs the CLI against `url`, with the configuration file when asked.
    fn pay(&self, url: &str, key: &str, with_config: bool, env: &[(&str, &str)]) -> Output {
        let mut command = Command::new(&self.mppx);
        command
            .arg(url)
            .arg("-v")
            .env("MPPX_PRIVATE_KEY", key)
            .env("MPPX_RPC_URL", &self.rpc)
            .envs(env.iter().copied());
        if with_config {
            command.arg("--config").arg(&self.config);
        } else {
            command.args(["--rpc-url", &self.rpc]);
        }
        command.output().unwrap()
    }
}

fn start(bin: &str, port_env: &str, port: u16, env: &[(&str, &str)]) -> Server {
    let child = Command::new(bin)
        .env(port_env, port.to_string())
        .env("ROCKET_ADDRESS", "127.0.0.1")
        .env("ROCKET_LOG_LEVEL", "critical")
        .env("MPP_SECRET_KEY", "e2e-secret-of-at-least-thirty-two-bytes!")
        .env("MPP_REALM", "shop.test")
        // `/weather`'s offered methods depend on which rails are set.
        .env_remove("STELLAR_RECIPIENT")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{bin} did not start listening on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

/// The `method` of each challenge in the 402 of an unpaid `GET path`.
fn offered_methods(port: u16, path: &str) -> Vec<String> {
    use std::io::{Read, Write};
    let mut socket = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        socket,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    socket.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 402"), "{answer}");
    answer
        .lines()
        .filter(|l| l.to_ascii_lowercase().starts_with("www-authenticate:"))
        .filter_map(|l| {
            let start = l.find("method=\"")? + 8;
            let end = start + l[start..].find('"')?;
            Some(l[start..end].to_owned())
        })
        .collect()
}

/// The stock mppx client pays the example's two-method route on Tempo, in
/// pull and in push mode; the money arrives on chain.
pub(crate) fn pays_the_example_on_tempo(bin: &str, port_env: &str) {
    let Some(tools) = tools(
        "MPP_TEST_TEMPO_RPC_URL",
        "tempo-push.config.mjs",
        "tools/chain/start.sh tempo",
    ) else {
        return;
    };
    let (_, recipient) = tools.new_wallet();
    let port = free_port();
    let _server = start(
        bin,
        port_env,
        port,
        &[
            ("TEMPO_RECIPIENT", &recipient),
            ("TEMPO_RPC_URL", &tools.rpc),
            ("TEMPO_CHAIN_ID", "1337"),
            ("TEMPO_POLL_INTERVAL_MS", "100"),
        ],
    );
    let name = Path::new(bin).file_name().unwrap().to_string_lossy();
    let url = format!("http://127.0.0.1:{port}/weather?city=Porto");
    assert_eq!(tools.balance(PATH_USD, &recipient), 0);
    // The route offers two methods, Tempo first; mppx picks Tempo.
    assert_eq!(
        offered_methods(port, "/weather"),
        ["tempo", "stripe"],
        "the 402 offers a challenge per method"
    );

    let mut expected = 0;
    for (mode, push) in [("pull", false), ("push", true)] {
        let payer = tools.funded_payer();
        let paid = tools.pay(&url, &payer, push, &[]);
        let stdout = text(&paid.stdout);
        let stderr = text(&paid.stderr);
        println!(
            "{name}: mppx {mode} mode -> exit {:?}\n{stderr}{stdout}",
            paid.status.code()
        );
        assert!(paid.status.success(), "{stdout} {stderr}");
        let body_start = stdout.find('{').unwrap();
        let body: serde_json::Value = serde_json::from_str(stdout[body_start..].trim()).unwrap();
        assert_eq!(body["method"], "tempo", "{body}");
        let hash = body["paid_with"].as_str().unwrap();
        assert!(
            hash.len() == 66 && hash.starts_with("0x"),
            "not a transaction hash: {hash}"
        );
        assert!(
            format!("{stdout}{stderr}").contains(hash),
            "the receipt names the transaction"
        );
        assert_eq!(
            tools.receipt_status(hash),
            "0x1",
            "{hash} succeeded on chain"
        );
        expected += 500_000;
        let balance = tools.balance(PATH_USD, &recipient);
        println!("{name}: recipient {recipient} holds {balance} pathUSD base units after {mode}");
        assert_eq!(
            balance, expected,
            "0.50 USD = 500000 base units per payment"
        );
    }
}

/// The stock mppx client signs an EIP-3009 authorization for the example's
/// `/rate`; the server relays it and the token arrives on chain.
pub(crate) fn pays_the_example_with_evm(bin: &str, port_env: &str) {
    let Some(tools) = tools(
        "MPP_TEST_EVM_RPC_URL",
        "evm.config.mjs",
        "tools/chain/start.sh evm and tools/chain/deploy-token.sh",
    ) else {
        return;
    };
    let token = std::env::var("MPP_TEST_EVM_TOKEN")
        .expect("MPP_TEST_EVM_TOKEN (tools/chain/deploy-token.sh)");
    let (_, recipient) = tools.new_wallet();
    let (payer_key, payer) = tools.new_wallet();
    tools.cast(&[
        "send",
        "--private-key",
        TOKEN_OWNER_KEY,
        &token,
        "mint(address,uint256)",
        &payer,
        "1000000",
    ]);
    let port = free_port();
    let _server = start(
        bin,
        port_env,
        port,
        &[
            ("EVM_RECIPIENT", &recipient),
            ("EVM_RPC_URL", &tools.rpc),
            ("EVM_CHAIN_ID", "31337"),
            ("EVM_TOKEN", &token),
            ("EVM_RELAYER_KEY", RELAYER_KEY),
            ("EVM_POLL_INTERVAL_MS", "100"),
        ],
    );
    let name = Path::new(bin).file_name().unwrap().to_string_lossy();
    let paid = tools.pay(
        &format!("http://127.0.0.1:{port}/rate"),
        &payer_key,
        true,
        &[
            ("MPPX_EVM_TOKEN_NAME", "Test USD"),
            ("MPPX_EVM_TOKEN_VERSION", "2"),
        ],
    );
    let stdout = text(&paid.stdout);
    let stderr = text(&paid.stderr);
    println!(
        "{name}: mppx evm -> exit {:?}\n{stderr}{stdout}",
        paid.status.code()
    );
    assert!(paid.status.success(), "{stdout} {stderr}");
    let body: serde_json::Value =
        serde_json::from_str(stdout[stdout.find('{').unwrap()..].trim()).unwrap();
    assert_eq!(body["method"], "evm", "{body}");
    let hash = body["paid_with"].as_str().unwrap();
    assert_eq!(
        tools.receipt_status(hash),
        "0x1",
        "{hash} succeeded on chain"
    );
    let (to_recipient, from_payer) = (
        tools.balance(&token, &recipient),
        tools.balance(&token, &payer),
    );
    println!(
        "{name}: recipient {recipient} holds {to_recipient}, payer {payer} {from_payer} test-token base units"
    );
    assert_eq!(to_recipient, 500_000, "0.50 USD = 500000 base units");
    assert_eq!(from_payer, 500_000);
}
