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
