//! One session spend on each store, side by side in one run: the memory
//! store always; SQLite (a file in the temp directory) with `--features
//! sqlite`; Redis and PostgreSQL when `MPP_TEST_REDIS_URL` /
//! `MPP_TEST_POSTGRES_URL` are set (build with `--features redis,postgres`).
//!
//! ```sh
//! MPP_TEST_REDIS_URL=redis://127.0.0.1:6379 \
//! MPP_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test \
//!   cargo bench -p mpp-runtime --features sqlite,redis,postgres --bench stores
//! ```

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use mpp_runtime::store::{SessionRecord, Store};
use mpp_runtime::wire::{Receipt, Timestamp};
use mpp_runtime::{MemoryStore, random};

/// A store to bench, and what to remove when the run ends.
type Benched = (&'static str, Arc<dyn Store>, Leftover);

/// What a bench leaves behind: a PostgreSQL prefix's tables, a SQLite file.
enum Leftover {
    Nothing,
    #[cfg(any(feature = "postgres", feature = "sqlite"))]
    Tables(mpp_runtime::store::SqlStore, Option<std::path::PathBuf>),
}

fn stores(runtime: &tokio::runtime::Runtime) -> Vec<Benched> {
    #[cfg_attr(
        not(any(feature = "redis", feature = "postgres", feature = "sqlite")),
        allow(unused_mut)
    )]
    let mut stores: Vec<Benched> =
        vec![("memory", Arc::new(MemoryStore::new()), Leftover::Nothing)];
    let prefix = format!("mpp_b{:x}", random::u128() >> 64);
    #[cfg(feature = "redis")]
    if let Ok(url) = std::env::var("MPP_TEST_REDIS_URL") {
        let store = runtime
            .block_on(mpp_runtime::store::RedisStore::connect(
                &url,
                format!("{prefix}:"),
            ))
            .unwrap();
        // Every key has a TTL: Redis removes them itself.
        stores.push(("redis", Arc::new(store), Leftover::Nothing));
    }
    #[cfg(feature = "postgres")]
    if let Ok(url) = std::env::var("MPP_TEST_POSTGRES_URL") {
        let store = runtime
            .block_on(mpp_runtime::store::SqlStore::connect(
                &url,
                &format!("{prefix}_"),
            ))
            .unwrap();
        let leftover = Leftover::Tables(store.clone(), None);
        stores.push(("postgres", Arc::new(store), leftover));
    }
    #[cfg(feature = "sqlite")]
    {
        let path = std::env::temp_dir().join(format!("{prefix}.db"));
        let store = runtime
            .block_on(mpp_runtime::store::SqlStore::connect(
                &format!("sqlite://{}", path.display()),
                "mpp_",
            ))
            .unwrap();
        let leftover = Leftover::Tables(store.clone(), Some(path));
        stores.push(("sqlite", Arc::new(store), leftover));
    }
    let _ = (runtime, prefix);
    stores
}

fn store_benches(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let now = Timestamp::now();
    let benched = stores(&runtime);
    for (name, store, _) in &benched {
        let id = format!("sess_bench_{:x}", random::u128());
        let record = SessionRecord {
            id: id.clone(),
            scope: "m".into(),
            route: "GET /metered".into(),
            grants: i32::MAX as u32,
            remaining: i32::MAX as u32,
            expires_at: now.plus(Duration::from_secs(3600)),
            receipt: Receipt::success("test", "ref", now).into(),
        };
        runtime.block_on(store.create_session(record, now)).unwrap();
        c.bench_function(&format!("spend_session/{name}"), |b| {
            b.iter(|| {
                runtime
                    .block_on(store.spend_session(black_box(&id), "m", now))
                    .unwrap()
            })
        });
    }
    for (_, _, leftover) in benched {
        match leftover {
            Leftover::Nothing => {}
            #[cfg(any(feature = "postgres", feature = "sqlite"))]
            Leftover::Tables(store, file) => {
                runtime.block_on(store.drop_tables()).unwrap();
                if let Some(file) = file {
                    for suffix in ["", "-wal", "-shm"] {
                        let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
                    }
                }
            }
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = store_benches
}
criterion_main!(benches);
