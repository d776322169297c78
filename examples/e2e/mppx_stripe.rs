//! End to end with real peers: an example server binary, the stock mppx
//! 0.11 CLI (`tools/mppx`), and the Stripe emulator (`tools/stripe-emulator`,
//! base URL in `MPP_TEST_STRIPE_API_BASE`). Shared by both examples' tests.
//!
//! Without the emulator or the CLI the test prints that it skipped, unless
//! `CI` is set, where it fails: CI must run it.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const KEY: &str = "sk_test_mpp_e2e";

/// What the CI needs, or `None` after saying what is missing.
fn prerequisites() -> Option<(String, PathBuf)> {
    let mppx =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tools/mppx/node_modules/.bin/mppx");
    let base = std::env::var("MPP_TEST_STRIPE_API_BASE")
        .ok()
        .filter(|b| !b.is_empty());
    match (base, mppx.exists()) {
        (Some(base), true) => Some((base, mppx)),
        _ if std::env::var_os("CI").is_some() => panic!(
            "the end-to-end test needs tools/stripe-emulator/start.sh (MPP_TEST_STRIPE_API_BASE) and `npm ci --prefix tools/mppx`, as .ci/run sets up"
        ),
        _ => {
            eprintln!(
                "skipped: set MPP_TEST_STRIPE_API_BASE (tools/stripe-emulator/start.sh) and run `npm ci --prefix tools/mppx`"
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

fn start(bin: &str, port_env: &str, port: u16, base: &str) -> Server {
    let child = Command::new(bin)
        .env(port_env, port.to_string())
        .env("ROCKET_ADDRESS", "127.0.0.1")
        .env("ROCKET_LOG_LEVEL", "critical")
        .env("MPP_SECRET_KEY", "e2e-secret-of-at-least-thirty-two-bytes!")
        .env("MPP_REALM", "shop.test")
        .env("STRIPE_SECRET_KEY", KEY)
        .env("STRIPE_API_BASE", base)
        .env("STRIPE_NETWORK_ID", "profile_test_e2e")
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

fn mppx(cli: &PathBuf, base: &str, url: &str, payment_method: &str) -> Output {
    Command::new(cli)
        .arg(url)
        .args(["-M", &format!("paymentMethod={payment_method}")])
        .env("MPPX_STRIPE_SECRET_KEY", KEY)
        .env(
            "MPPX_STRIPE_SPT_URL",
            format!("{base}/v1/test_helpers/shared_payment/granted_tokens"),
        )
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `GET {base}{path}` on the emulator (plain HTTP on loopback), as JSON.
fn emulator_get(base: &str, path: &str) -> serde_json::Value {
    use std::io::{Read, Write};
    let authority = base.trim_start_matches("http://").trim_end_matches('/');
    let mut socket = std::net::TcpStream::connect(authority).unwrap();
    write!(
        socket,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nAuthorization: Bearer {KEY}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    socket.read_to_string(&mut answer).unwrap();
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    // The emulator may answer chunked: the JSON runs from the first `{` or
    // `[` to the last `}` or `]`.
    let start = body.find(['{', '[']).unwrap_or(0);
    let end = body.rfind(['}', ']']).unwrap_or(0);
    let json = &body[start..=end.max(start)];
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {answer}"))
}

/// The stock mppx client pays the example's routes through the emulator.
pub(crate) fn pays_the_example(bin: &str, port_env: &str) {
    let Some((base, cli)) = prerequisites() else {
        return;
    };
    let port = free_port();
    let _server = start(bin, port_env, port, &base);
    let url = |path: &str| format!("http://127.0.0.1:{port}{path}");

    let paid = mppx(&cli, &base, &url("/quote"), "pm_card_visa");
    let stdout = text(&paid.stdout);
    println!(
        "mppx /quote (pm_card_visa) -> exit {:?}: {stdout}",
        paid.status.code()
    );
    assert!(paid.status.success(), "{stdout} {}", text(&paid.stderr));
    let body: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert!(
        body["paid_with"].as_str().unwrap().starts_with("pi_"),
        "{body}"
    );

    let metered = mppx(&cli, &base, &url("/report"), "pm_card_visa");
    let body: serde_json::Value = serde_json::from_str(text(&metered.stdout).trim()).unwrap();
    println!("mppx /report -> {body}");
    assert_eq!(body["reads_left"], 9);

    let declined = mppx(&cli, &base, &url("/quote"), "pm_card_chargeCustomerFail");
    let out = format!("{}{}", text(&declined.stdout), text(&declined.stderr));
    println!(
        "mppx /quote (declined card) -> exit {:?}: {out}",
        declined.status.code()
    );
    assert_eq!(declined.status.code(), Some(75), "{out}");
    assert!(
        out.contains("verification-failed") && out.contains("declined"),
        "{out}"
    );

    // Charged only if delivered (capture = "after"): a delivered summary
    // captures its PaymentIntent; a failed one cancels it.
    let delivered = mppx(&cli, &base, &url("/summary?topic=rust"), "pm_card_visa");
    let stdout = text(&delivered.stdout);
    println!(
        "mppx /summary?topic=rust -> exit {:?}: {stdout}",
        delivered.status.code()
    );
    let body: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    let intent = body["paid_with"].as_str().unwrap();
    assert_eq!(
        emulator_get(&base, &format!("/v1/payment_intents/{intent}"))["status"],
        "succeeded"
    );

    // The handler that sold it is named in the intent's metadata.
    let handler = format!(
        "{}::summary",
        std::path::Path::new(bin)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace('-', "_")
    );
    // Intents of this handler that were canceled, found through the cancel
    // calls the emulator saw.
    let canceled = || {
        let seen = emulator_get(&base, "/_shim/requests?all=1");
        let mut ids: Vec<String> = seen
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| r["path"].as_str())
            .filter_map(|path| {
                path.strip_prefix("/v1/payment_intents/")?
                    .strip_suffix("/cancel")
            })
            .map(str::to_owned)
            .collect();
        ids.sort();
        ids.dedup();
        ids.iter()
            .filter(|id| {
                let pi = emulator_get(&base, &format!("/v1/payment_intents/{id}"));
                pi["metadata"]["mpp_route"]
                    .as_str()
                    .is_some_and(|r| r.ends_with(&handler))
                    && pi["status"] == "canceled"
            })
            .count()
    };
    let before = canceled();
    let failed = mppx(&cli, &base, &url("/summary?topic=fail"), "pm_card_visa");
    let out = format!("{}{}", text(&failed.stdout), text(&failed.stderr));
    println!(
        "mppx /summary?topic=fail -> exit {:?}: {out}",
        failed.status.code()
    );
    assert!(
        out.contains("not charged") && !out.contains("Payment Receipt"),
        "{out}"
    );
    assert_eq!(
        canceled(),
        before + 1,
        "the failed summary's intent was not canceled"
    );

    // A missing post is a 404 before any payment: mppx is never asked to pay.
    // The CLI exits 0 on a plain HTTP error and prints its body.
    let missing = mppx(&cli, &base, &url("/posts/9"), "pm_card_visa");
    let out = format!("{}{}", text(&missing.stdout), text(&missing.stderr));
    println!("mppx /posts/9 -> exit {:?}: {out}", missing.status.code());
    assert!(
        out.contains(r#""status":404"#) && out.contains("No such post"),
        "{out}"
    );
    assert!(
        !out.contains("Payment Receipt") && !out.contains("pi_"),
        "{out}"
    );
}
