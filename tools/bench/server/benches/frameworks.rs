//! What `#[paid]` costs inside each framework, in process (no sockets):
//! the same request to the bare route and to the paid route of the bench
//! apps, through Rocket's local client and Actix's test service. The
//! difference is the generated guard/extractor, the gate and the response
//! conversion; the rest is the framework's own routing and response work.
//!
//! `cargo bench -p mpp-bench --bench frameworks`; results in docs/BENCHMARKS.md.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use mpp_bench::client::{Reply, credential_for};
use mpp_rocket::ConfigBuilder;

const SECRET: &str = "bench-secret-of-at-least-thirty-two-bytes!";

fn config() -> ConfigBuilder {
    mpp_bench::config().secret(SECRET)
}

fn rocket_reply(response: rocket::local::blocking::LocalResponse<'_>) -> Reply {
    let status = response.status().code;
    let headers = response
        .headers()
        .iter()
        .map(|h| (h.name().as_str().to_ascii_lowercase(), h.value().to_owned()))
        .collect();
    let body = response.into_bytes().unwrap_or_default();
    Reply {
        status,
        headers,
        body,
    }
}

fn rocket_benches(c: &mut Criterion) {
    use rocket::http::Header;
    use rocket::local::blocking::Client;

    let app = mpp_bench::rocket_app::rocket(false, 0, config());
    let client = Client::untracked(app).unwrap();

    c.bench_function("rocket_bare", |b| {
        b.iter(|| black_box(client.get("/bare").dispatch().status()))
    });
    c.bench_function("rocket_402", |b| {
        b.iter(|| {
            let response = client.get("/paid").dispatch();
            assert_eq!(response.status().code, 402);
            black_box(response)
        })
    });

    // A session holds a million credits; criterion may spend more.
    let buy = || {
        let challenge = rocket_reply(client.get("/metered").dispatch());
        let paid = client
            .get("/metered")
            .header(Header::new(
                "Authorization",
                credential_for(&challenge).unwrap(),
            ))
            .dispatch();
        let session = paid
            .headers()
            .get_one("Payment-Session")
            .unwrap()
            .to_owned();
        let session = mpp_rocket::runtime::wire::SessionInfo::parse(&session).unwrap();
        (
            format!("Payment session=\"{}\"", session.id),
            session.remaining,
        )
    };
    let mut session = buy();
    c.bench_function("rocket_session_spend", |b| {
        b.iter(|| {
            if session.1 == 0 {
                session = buy();
            }
            session.1 -= 1;
            let response = client
                .get("/metered")
                .header(Header::new("Authorization", session.0.clone()))
                .dispatch();
            assert_eq!(response.status().code, 200);
            black_box(response)
        })
    });
    c.bench_function("rocket_paid_retry", |b| {
        b.iter_batched(
            || credential_for(&rocket_reply(client.get("/paid").dispatch())).unwrap(),
            |credential| {
                let response = client
                    .get("/paid")
                    .header(Header::new("Authorization", credential))
                    .dispatch();
                assert_eq!(response.status().code, 200);
                black_box(response)
            },
            BatchSize::SmallInput,
        )
    });
}

fn actix_benches(c: &mut Criterion) {
    use actix_web::test::{TestRequest, call_service, init_service, read_body};

    let system = actix_web::rt::System::new();
    let gate = system
        .block_on(mpp_bench::actix_app::gate(config()))
        .unwrap();
    let app = system.block_on(init_service(mpp_bench::actix_app::app(Some(gate))));
    let reply = |response: actix_web::dev::ServiceResponse| {
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap().to_owned()))
            .collect();
        Reply {
            status,
            headers,
            body: Vec::new(),
        }
    };

    c.bench_function("actix_bare", |b| {
        b.iter(|| {
            let request = TestRequest::get().uri("/bare").to_request();
            black_box(system.block_on(call_service(&app, request)))
        })
    });
    c.bench_function("actix_402", |b| {
        b.iter(|| {
            let request = TestRequest::get().uri("/paid").to_request();
            let response = system.block_on(call_service(&app, request));
            assert_eq!(response.status().as_u16(), 402);
            black_box(response)
        })
    });

    // A session holds a million credits; criterion may spend more.
    let buy = || {
        let request = TestRequest::get().uri("/metered").to_request();
        let challenge = reply(system.block_on(call_service(&app, request)));
        let request = TestRequest::get()
            .uri("/metered")
            .insert_header(("Authorization", credential_for(&challenge).unwrap()))
            .to_request();
        let paid = system.block_on(call_service(&app, request));
        let session = paid
            .headers()
            .get("payment-session")
            .unwrap()
            .to_str()
            .unwrap();
        let session = mpp_actix::runtime::wire::SessionInfo::parse(session).unwrap();
        let _ = system.block_on(read_body(paid));
        (
            format!("Payment session=\"{}\"", session.id),
            session.remaining,
        )
    };
    let mut session = buy();
    c.bench_function("actix_session_spend", |b| {
        b.iter(|| {
            if session.1 == 0 {
                session = buy();
            }
            session.1 -= 1;
            let request = TestRequest::get()
                .uri("/metered")
                .insert_header(("Authorization", session.0.as_str()))
                .to_request();
            let response = system.block_on(call_service(&app, request));
            if response.status().as_u16() != 200 {
                let body = system.block_on(read_body(response));
                panic!("{}", String::from_utf8_lossy(&body));
            }
            black_box(response)
        })
    });
    c.bench_function("actix_paid_retry", |b| {
        b.iter_batched(
            || {
                let request = TestRequest::get().uri("/paid").to_request();
                credential_for(&reply(system.block_on(call_service(&app, request)))).unwrap()
            },
            |credential| {
                let request = TestRequest::get()
                    .uri("/paid")
                    .insert_header(("Authorization", credential))
                    .to_request();
                let response = system.block_on(call_service(&app, request));
                assert_eq!(response.status().as_u16(), 200);
                black_box(response)
            },
            BatchSize::SmallInput,
        )
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = rocket_benches, actix_benches
}
criterion_main!(benches);
