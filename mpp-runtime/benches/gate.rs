//! Criterion benchmarks of the gate's hot paths: minting a 402, verifying a
//! credential, a paid retry end to end, spending a session credit, and what
//! the `#[paid]`-generated guard adds around the gate.
//!
//! `cargo bench -p mpp-runtime`; results are summarized in docs/BENCHMARKS.md.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use mpp_runtime::wire::{Challenge, Credential, Receipt, Timestamp};
use mpp_runtime::*;
use support::*;

fn first_challenge(response: &Response) -> Challenge {
    Challenge::parse(response.header("www-authenticate").unwrap()).unwrap()
}

fn gate_benches(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let rail = TestRail::new("test");
    let gate = gate_with(&rail);
    let route = route(&gate, "/report", PaymentSpec::new().amount("5.00"));

    c.bench_function("mint_402", |b| {
        b.iter(|| black_box(gate.challenge(black_box(&route))))
    });

    let challenge = first_challenge(&gate.challenge(&route));
    let header = pay(&challenge, "ok");
    c.bench_function("verify_credential", |b| {
        b.iter(|| {
            let credential = Credential::parse(black_box(&header)).unwrap();
            gate.verify_credential(&route, &credential).unwrap();
        })
    });

    c.bench_function("parse_credential", |b| {
        b.iter(|| Credential::parse(black_box(&header)).unwrap())
    });
    let credential = Credential::parse(&header).unwrap();
    c.bench_function("verify_parsed_credential", |b| {
        b.iter(|| {
            gate.verify_credential(&route, black_box(&credential))
                .unwrap()
        })
    });

    c.bench_function("mint_and_verify", |b| {
        b.iter(|| {
            let response = gate.challenge(black_box(&route));
            let credential = Credential::parse(black_box(&header)).unwrap();
            gate.verify_credential(&route, &credential).unwrap();
            black_box(response)
        })
    });

    c.bench_function("admit_unpaid_402", |b| {
        b.iter(
            || match runtime.block_on(gate.admit(&route, get("/report"))) {
                Admission::Denied(response) => black_box(response),
                Admission::Granted(_) => unreachable!(),
            },
        )
    });

    c.bench_function("admit_paid_retry", |b| {
        b.iter_batched(
            || {
                let challenge = first_challenge(&gate.challenge(&route));
                with_auth("/report", &pay(&challenge, "ok"))
            },
            |request| match runtime.block_on(gate.admit(&route, request)) {
                Admission::Granted(grant) => black_box(grant),
                Admission::Denied(response) => panic!("{}", response.body_text()),
            },
            BatchSize::SmallInput,
        )
    });

    // Session spends: a session with more credits than the bench will use.
    let store = MemoryStore::new();
    let now = Timestamp::now();
    let record = |id: &str| SessionRecord {
        id: id.into(),
        scope: "m".into(),
        route: "GET /metered".into(),
        grants: u32::MAX,
        remaining: u32::MAX,
        expires_at: now.plus(Duration::from_secs(3600)),
        receipt: Receipt::success("test", "ref", now).into(),
    };
    runtime
        .block_on(store.create_session(record("sess_bench"), now))
        .unwrap();
    c.bench_function("store_spend_session", |b| {
        b.iter(|| {
            runtime
                .block_on(store.spend_session(black_box("sess_bench"), "m", now))
                .unwrap()
        })
    });

    let session_gate = Gate::builder(config().build().unwrap())
        .rail(Shared(rail.clone()))
        .store(store.clone())
        .build()
        .unwrap();
    let metered = session_gate
        .route(&RouteSpec::new(
            "GET",
            "/metered",
            PaymentSpec::new().amount("5.00").grants(10).scope("m"),
        ))
        .unwrap();
    let auth = session_auth("sess_bench");
    c.bench_function("admit_session_spend", |b| {
        b.iter(|| {
            match runtime.block_on(session_gate.admit(&metered, with_auth("/metered", &auth))) {
                Admission::Granted(grant) => black_box(grant),
                Admission::Denied(response) => panic!("{}", response.body_text()),
            }
        })
    });
    drop(route);
    let _ = metered;
}

/// What the code `#[paid]` generates adds around `Gate::admit` per request:
/// the adapter copies the request into a `RequestView`, and
/// `handler::admit::<R>` finds the route `R` prepared at startup (kept in
/// the handler's `PreparedRoute`, as `#[paid]` generates it). Compare
/// `guard_admit_402` with `admit_unpaid_402`, and the `rocket_*`/`actix_*`
/// benches of `mpp-bench` (which add the frameworks' own routing and
/// response building).
struct BenchRoute;

fn bench_spec() -> RouteSpec {
    RouteSpec::new("GET", "/report", PaymentSpec::new().amount("5.00"))
        .with_handler("bench::report")
}

impl mpp_runtime::handler::PaidRoute for BenchRoute {
    fn route_spec() -> &'static RouteSpec {
        static SPEC: std::sync::LazyLock<RouteSpec> = std::sync::LazyLock::new(bench_spec);
        &SPEC
    }

    fn prepared() -> Option<&'static mpp_runtime::handler::PreparedRoute> {
        static PREPARED: mpp_runtime::handler::PreparedRoute =
            mpp_runtime::handler::PreparedRoute::new();
        Some(&PREPARED)
    }
}

/// The same route without a `PreparedRoute`: looked up in the gate's route
/// table on every request (what handlers did before they kept their route).
struct LookedUpRoute;

impl mpp_runtime::handler::PaidRoute for LookedUpRoute {
    fn route_spec() -> &'static RouteSpec {
        static SPEC: std::sync::LazyLock<RouteSpec> = std::sync::LazyLock::new(bench_spec);
        &SPEC
    }
}

/// The headers a typical agent request carries, as adapters see them.
const AGENT_HEADERS: [(&str, &str); 6] = [
    ("host", "api.example.com"),
    ("user-agent", "mppx/0.11.0 node/20"),
    ("accept", "application/json"),
    ("accept-encoding", "gzip, deflate, br"),
    ("connection", "keep-alive"),
    ("x-request-id", "7f9c2ba4e88f827d616045507605853e"),
];

fn agent_request() -> RequestView {
    let mut view = RequestView::new("GET", "/report");
    for (name, value) in AGENT_HEADERS {
        view.push_header(name, value);
    }
    view
}

fn guard_benches(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let rail = TestRail::new("test");
    let gate = gate_with(&rail);
    mpp_runtime::handler::prepare::<BenchRoute>(&gate).unwrap();

    c.bench_function("guard_request_view", |b| {
        b.iter(|| black_box(agent_request()))
    });
    c.bench_function("guard_route_lookup", |b| {
        b.iter(|| black_box(mpp_runtime::handler::prepare::<BenchRoute>(black_box(&gate)).unwrap()))
    });
    c.bench_function("guard_admit_402", |b| {
        b.iter(|| {
            match runtime.block_on(mpp_runtime::handler::admit::<BenchRoute>(
                &gate,
                agent_request(),
            )) {
                Err(response) => black_box(response),
                Ok(_) => unreachable!(),
            }
        })
    });
    c.bench_function("guard_admit_402_looked_up", |b| {
        b.iter(|| {
            match runtime.block_on(mpp_runtime::handler::admit::<LookedUpRoute>(
                &gate,
                agent_request(),
            )) {
                Err(response) => black_box(response),
                Ok(_) => unreachable!(),
            }
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = gate_benches, guard_benches
}
criterion_main!(benches);
