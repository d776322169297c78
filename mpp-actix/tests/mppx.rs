//! Interoperability with the stock MPP client, mppx 0.11 (installed by
//! `.ci/run` into `tools/mppx`): mppx parses our 402s with its own parser,
//! serializes a credential the way an mppx client does, which our server
//! accepts, and parses our receipt.
//!
//! Without `tools/mppx/node_modules` the test prints that it skipped, unless
//! `CI` is set, where it fails: CI must run it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../mpp-runtime/tests/support/rail.rs"]
mod rail;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use actix_web::http::StatusCode;
use actix_web::{App, get};
use mpp_actix::runtime::wire::{Challenge, Receipt as WireReceipt};
use mpp_actix::{ConfigBuilder, Mpp, Receipt, Settings, paid};
use rail::{Shared, TestRail};
use serde_json::{Value, json};

#[paid(amount = "2.50", methods = ["chain", "card"], description = "Café ☕ report")]
#[get("/both")]
async fn both(receipt: Receipt) -> String {
    receipt.reference
}

/// Runs the mppx tool, or `None` (after saying why) when it is not installed
/// outside CI.
fn mppx(request: &Value) -> Option<Value> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tools/mppx");
    if !dir.join("node_modules/mppx/package.json").exists() {
        if std::env::var_os("CI").is_some() {
            panic!("mppx is not installed: run `npm ci --prefix tools/mppx` (as .ci/run does)");
        }
        eprintln!(
            "skipped: mppx is not installed; run `npm ci --prefix tools/mppx` to include this test"
        );
        return None;
    }
    let mut child = Command::new("node")
        .arg("interop.mjs")
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node must be on PATH to run the mppx interop test");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "mppx failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(serde_json::from_slice(&output.stdout).unwrap())
}

#[actix_rt::test]
async fn the_stock_mppx_client_reads_our_402_pays_and_reads_the_receipt() {
    let card = TestRail::new("card");
    let chain = TestRail::new("chain");
    let gate = Mpp::build_with(
        Mpp::configure(
            ConfigBuilder::default()
                .secret("mppx-interop-secret-of-32-bytes-or-more")
                .realm("shop.test"),
        )
        .rail(Shared(card.clone()))
        .rail(Shared(chain.clone())),
        Settings::default(),
    )
    .unwrap();
    let server = actix_test::start(move || App::new().app_data(gate.clone()).service(both));

    let mut unpaid = server.get("/both").send().await.unwrap();
    assert_eq!(unpaid.status(), StatusCode::PAYMENT_REQUIRED);
    let headers: Vec<String> = unpaid
        .headers()
        .get_all("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let _ = unpaid.body().await;
    assert_eq!(headers.len(), 2);

    let Some(parsed) =
        mppx(&json!({"op": "challenges", "headers": headers, "payload": {"proof": "ok"}}))
    else {
        return;
    };
    // mppx's reading of every challenge equals ours, field for field.
    let ours: Vec<Value> = headers
        .iter()
        .map(|h| Challenge::parse(h).unwrap().to_json())
        .collect();
    assert_eq!(parsed["challenges"].as_array().unwrap(), &ours);
    assert_eq!(ours[0]["method"], "chain");
    assert_eq!(parsed["challenges"][0]["description"], "Café ☕ report");

    // The credential mppx serializes is accepted as is.
    let credential = parsed["credential"].as_str().unwrap();
    let mut paid = server
        .get("/both")
        .insert_header(("Authorization", credential))
        .send()
        .await
        .unwrap();
    assert_eq!(paid.status(), StatusCode::OK);
    let receipt_header = paid
        .headers()
        .get("payment-receipt")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let body = paid.body().await.unwrap();
    assert_eq!(body, "chain_1");
    assert_eq!((chain.settled(), card.settled()), (1, 0));

    // mppx reads the receipt.
    let receipt = mppx(&json!({"op": "receipt", "header": receipt_header})).unwrap();
    assert_eq!(receipt["receipt"]["status"], "success");
    assert_eq!(receipt["receipt"]["method"], "chain");
    assert_eq!(receipt["receipt"]["reference"], "chain_1");
    let ours = WireReceipt::parse(&receipt_header).unwrap();
    assert_eq!(receipt["receipt"]["timestamp"], ours.timestamp.as_str());
}
