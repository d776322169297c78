//! The bench servers sell what the load script spends, and the instant test
//! rail pays only with its proof, once per challenge.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mpp_bench::client::{
    Connection, Reply, buy_session, credential_for, credential_with_proof, mint_credentials,
};
use mpp_rocket::ConfigBuilder;

const SECRET: &str = "bench-test-secret-of-at-least-32-bytes!!";

fn config() -> ConfigBuilder {
    mpp_bench::config().secret(SECRET)
}

fn body(reply: &Reply) -> String {
    String::from_utf8_lossy(&reply.body).into_owned()
}

#[test]
fn actix_bench_server_over_http() {
    let (tx, rx) = std::sync::mpsc::channel();
    let server = std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let gate = mpp_bench::actix_app::gate(config()).await.unwrap();
            let (server, port) = mpp_bench::actix_app::server(Some(gate), 0, 1).unwrap();
            tx.send((server.handle(), port)).unwrap();
            server.await.unwrap();
        })
    });
    let (handle, port) = rx.recv().unwrap();
    let addr = format!("127.0.0.1:{port}");
    let mut connection = Connection::open(&addr).unwrap();

    let bare = connection.get("/bare", None).unwrap();
    assert_eq!((bare.status, body(&bare).as_str()), (200, "ok"));

    // A 402, paid once with the rail's proof; the replay is refused.
    let challenge = connection.get("/paid", None).unwrap();
    let credential = credential_for(&challenge).unwrap();
    let paid = connection.get("/paid", Some(&credential)).unwrap();
    assert_eq!((paid.status, body(&paid).as_str()), (200, "ok"));
    assert!(paid.header("payment-receipt").is_some());
    let replay = connection.get("/paid", Some(&credential)).unwrap();
    assert_eq!(replay.status, 402);
    assert!(
        body(&replay).contains("invalid-challenge"),
        "{}",
        body(&replay)
    );

    // Any other proof is refused.
    let challenge = connection.get("/paid", None).unwrap();
    let forged = credential_with_proof(&challenge, "anything").unwrap();
    let refused = connection.get("/paid", Some(&forged)).unwrap();
    assert_eq!(refused.status, 402);
    assert!(
        body(&refused).contains("verification-failed"),
        "{}",
        body(&refused)
    );

    // Minted credentials each pay exactly once.
    let mut minted = Vec::new();
    mint_credentials(&addr, "/paid", 3, &mut minted).unwrap();
    let minted = String::from_utf8(minted).unwrap();
    let lines: Vec<&str> = minted.lines().collect();
    assert_eq!(lines.len(), 3);
    for line in &lines {
        assert_eq!(connection.get("/paid", Some(line)).unwrap().status, 200);
    }
    for line in &lines {
        assert_eq!(connection.get("/paid", Some(line)).unwrap().status, 402);
    }

    // A session of a million credits, spent one at a time.
    let session = buy_session(&addr, "/metered").unwrap();
    assert_eq!(session.remaining, mpp_bench::METERED_GRANTS - 1);
    let auth = format!("Payment session=\"{}\"", session.id);
    let spent = connection.get("/metered", Some(&auth)).unwrap();
    assert_eq!(spent.status, 200);
    assert!(
        spent
            .header("payment-session")
            .unwrap()
            .contains(&format!("remaining=\"{}\"", mpp_bench::METERED_GRANTS - 2)),
        "{:?}",
        spent.header("payment-session")
    );

    actix_web::rt::System::new().block_on(handle.stop(true));
    server.join().unwrap();
}

#[test]
fn actix_bare_mode_has_no_gate() {
    let (tx, rx) = std::sync::mpsc::channel();
    let server = std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let (server, port) = mpp_bench::actix_app::server(None, 0, 1).unwrap();
            tx.send((server.handle(), port)).unwrap();
            server.await.unwrap();
        })
    });
    let (handle, port) = rx.recv().unwrap();
    let mut connection = Connection::open(&format!("127.0.0.1:{port}")).unwrap();
    assert_eq!(connection.get("/bare", None).unwrap().status, 200);
    assert_eq!(connection.get("/paid", None).unwrap().status, 404);
    actix_web::rt::System::new().block_on(handle.stop(true));
    server.join().unwrap();
}

#[test]
fn rocket_bench_app_sells_once() {
    use rocket::http::Header;
    use rocket::local::blocking::Client;

    let app = mpp_bench::rocket_app::rocket(false, 0, config());
    let client = Client::untracked(app).unwrap();
    let reply = |response: rocket::local::blocking::LocalResponse<'_>| Reply {
        status: response.status().code,
        headers: response
            .headers()
            .iter()
            .map(|h| (h.name().as_str().to_ascii_lowercase(), h.value().to_owned()))
            .collect(),
        body: response.into_bytes().unwrap_or_default(),
    };

    assert_eq!(reply(client.get("/bare").dispatch()).status, 200);
    let challenge = reply(client.get("/paid").dispatch());
    assert_eq!(challenge.status, 402);
    let credential = credential_for(&challenge).unwrap();
    let pay = || {
        reply(
            client
                .get("/paid")
                .header(Header::new("Authorization", credential.clone()))
                .dispatch(),
        )
    };
    let paid = pay();
    assert_eq!((paid.status, body(&paid).as_str()), (200, "ok"));
    assert!(paid.header("payment-receipt").is_some());
    assert_eq!(pay().status, 402);
}
