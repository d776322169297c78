//! What only the SQL store does: the bounded cleanup of expired rows, run
//! on demand and by its own timer, by an index on each expiry column (on
//! SQLite, and on PostgreSQL when `MPP_TEST_POSTGRES_URL` is set; each test
//! drops its tables or deletes its file when it ends), and the gate on
//! PostgreSQL through an outage: a private `postgres` server on its own
//! port is stopped and started again. (The shared semantics:
//! `store_conformance.rs`; restarts and several processes:
//! `shared_stores.rs`.)
//!
//! The outage test needs the machine's PostgreSQL server binaries
//! (`/usr/lib/postgresql/<version>/bin`). Without them it prints that it
//! skipped, unless `CI` is set, where it fails.

#![cfg(any(feature = "sqlite", feature = "postgres"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/stores.rs"]
mod stores;
mod support;

use std::time::{Duration, Instant};

#[cfg(feature = "postgres")]
use mpp_runtime::random;
use mpp_runtime::store::{
    EXPIRED_SESSION_GRACE, PaymentStatus, SessionRecord, SettlementRecord, SqlStore, Store,
};
use mpp_runtime::wire::Timestamp;
use sqlx::Connection;
use stores::Cleanup;

#[cfg(feature = "postgres")]
fn unique(prefix: &str) -> String {
    format!("{prefix}{:x}", random::u128() >> 64)
}

/// A SQL database for one test: its URL and table prefix, removed when the
/// test ends.
struct Database {
    url: String,
    prefix: String,
    _cleanup: Cleanup,
}

impl Database {
    #[cfg(feature = "sqlite")]
    fn sqlite(name: &str) -> Self {
        let path = stores::sqlite_path(name);
        Self {
            url: stores::sqlite_url(&path),
            prefix: "mpp_".into(),
            _cleanup: Cleanup::sqlite(path),
        }
    }

    /// `None` (after saying so) without `MPP_TEST_POSTGRES_URL`.
    #[cfg(feature = "postgres")]
    fn postgres() -> Option<Self> {
        let url = match std::env::var("MPP_TEST_POSTGRES_URL") {
            Ok(url) if !url.is_empty() => url,
            _ if std::env::var_os("CI").is_some() => {
                panic!("MPP_TEST_POSTGRES_URL is not set: CI must run the PostgreSQL store tests")
            }
            _ => {
                eprintln!("skipped: set MPP_TEST_POSTGRES_URL to run the PostgreSQL store tests");
                return None;
            }
        };
        let prefix = unique("mpp_c") + "_";
        Some(Self {
            _cleanup: Cleanup::postgres(&url, &prefix),
            url,
            prefix,
        })
    }

    async fn store(&self) -> SqlStore {
        SqlStore::connect(&self.url, &self.prefix).await.unwrap()
    }

    /// The count `sql` answers (`{p}` is the table prefix), read past the
    /// store.
    async fn count(&self, sql: &str) -> i64 {
        let sql = sqlx::AssertSqlSafe(sql.replace("{p}", &self.prefix));
        #[cfg(feature = "sqlite")]
        if self.url.starts_with("sqlite") {
            let mut db = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
            return sqlx::query_scalar(sql).fetch_one(&mut db).await.unwrap();
        }
        #[cfg(feature = "postgres")]
        {
            let mut db = sqlx::PgConnection::connect(&self.url).await.unwrap();
            return sqlx::query_scalar(sql).fetch_one(&mut db).await.unwrap();
        }
        #[allow(unreachable_code)]
        {
            panic!("no database for {}", self.url)
        }
    }

    /// How many rows `table` (without the prefix) holds.
    async fn rows(&self, table: &str) -> i64 {
        self.count(&format!("SELECT COUNT(*) FROM {{p}}{table}"))
            .await
    }
}

fn session(id: &str, expires_at: Timestamp) -> SessionRecord {
    stores::session(id, "s", 2, expires_at)
}

/// Expires in the past, by more than the grace every store keeps an
/// expired session: due for deletion.
fn long_ago() -> Timestamp {
    let now = Timestamp::now();
    Timestamp::from_unix(now.unix() - EXPIRED_SESSION_GRACE.as_secs() - 3600)
}

fn settlement(reference: &str) -> SettlementRecord {
    SettlementRecord {
        reference: reference.to_owned(),
        method: "test".into(),
        route: "GET /r".into(),
        challenge_id: "ch".into(),
        amount: "100".into(),
        currency: "usd".into(),
        status: PaymentStatus::Succeeded,
        amount_refunded: None,
        session: None,
        created_at: Timestamp::now(),
        updated_at: Timestamp::now(),
    }
}

/// Expired claims, locks and sessions (past their grace) are deleted in
/// bounded batches; live ones stay.
/// Claims `lapsing` (each for `lease`) and `live` (ten minutes), a lock for
/// `lease`, a session long expired (`sess_old`) and a live one
/// (`sess_live`).
async fn expiring_and_live_rows(store: &SqlStore, lease: Duration, lapsing: &[&str], live: &str) {
    let now = Timestamp::now();
    for key in lapsing {
        assert!(store.claim(key, lease).await.unwrap());
    }
    assert!(store.claim(live, Duration::from_secs(600)).await.unwrap());
    assert!(store.lock("lapsing", lease).await.unwrap().is_some());
    store
        .create_session(session("sess_old", long_ago()), now)
        .await
        .unwrap();
    store
        .create_session(
            session("sess_live", now.plus(Duration::from_secs(600))),
            now,
        )
        .await
        .unwrap();
}

async fn expired_rows_are_deleted(store: SqlStore) {
    expiring_and_live_rows(&store, Duration::from_millis(200), &["short"], "long").await;
    tokio::time::sleep(Duration::from_millis(400)).await;

    // Batches of one row: each table's batch repeats until one comes back
    // short.
    assert_eq!(store.delete_expired(1).await.unwrap(), 3);
    assert_eq!(store.delete_expired(1000).await.unwrap(), 0);
    assert!(store.is_claimed("long").await.unwrap());
    assert!(!store.is_claimed("short").await.unwrap());
    assert!(store.session("sess_old").await.unwrap().is_none());
    assert_eq!(
        store.session("sess_live").await.unwrap().unwrap().remaining,
        2
    );
    assert!(store.claim("short", Duration::from_secs(5)).await.unwrap());
}

/// A round repeats its batch while the batch comes back full, and stops
/// after `CLEANUP_BATCHES_PER_ROUND` batches per table.
async fn cleanup_rounds_repeat_full_batches_and_stay_bounded(db: Database) {
    let store = db.store().await;
    let cap = u64::from(SqlStore::CLEANUP_BATCHES_PER_ROUND);
    let expired = cap + 50;
    for i in 0..expired {
        assert!(
            store
                .claim(&format!("c{i}"), Duration::from_millis(1))
                .await
                .unwrap()
        );
    }
    assert!(store.claim("live", Duration::from_secs(600)).await.unwrap());
    tokio::time::sleep(Duration::from_millis(50)).await;

    // Batches of one: the round stops at the cap, the next takes the rest.
    assert_eq!(store.delete_expired(1).await.unwrap(), cap);
    assert_eq!(db.rows("claims").await, 51);
    assert_eq!(store.delete_expired(1).await.unwrap(), 50);
    assert_eq!(db.rows("claims").await, 1);

    // 250 expired rows in batches of 10: one round, 25 full batches.
    for i in 0..250 {
        assert!(
            store
                .claim(&format!("d{i}"), Duration::from_millis(1))
                .await
                .unwrap()
        );
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(store.delete_expired(10).await.unwrap(), 250);
    assert_eq!(db.rows("claims").await, 1);
    assert!(store.is_claimed("live").await.unwrap());
}

/// The store's own timer deletes expired rows of every table (on a short
/// interval here, set once the rows are written) and leaves live ones.
async fn the_cleanup_timer_deletes_expired_rows(db: Database) {
    let store = db.store().await;
    expiring_and_live_rows(&store, Duration::from_millis(50), &["a", "b", "c"], "live").await;
    store
        .put_settlement(settlement("pi_old"), Duration::from_millis(50))
        .await
        .unwrap();
    store
        .put_settlement(settlement("pi_live"), Duration::from_secs(600))
        .await
        .unwrap();
    let counts = async || {
        [
            db.rows("claims").await,
            db.rows("locks").await,
            db.rows("sessions").await,
            db.rows("settlements").await,
        ]
    };
    assert_eq!(counts().await, [4, 1, 2, 2]);

    // Rounds every 200 ms from now on (instead of every minute).
    let store = store.cleanup_every(Duration::from_millis(200));
    let deadline = Instant::now() + Duration::from_secs(20);
    while counts().await != [1, 0, 1, 1] {
        assert!(
            Instant::now() < deadline,
            "the cleanup timer did not delete the expired rows: {:?}",
            counts().await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(store.is_claimed("live").await.unwrap());
    assert_eq!(
        store.session("sess_live").await.unwrap().unwrap().remaining,
        2
    );
    assert!(store.settlement("pi_live").await.unwrap().is_some());
}

/// The migration indexes the column each table's cleanup selects by, and
/// running it again changes nothing.
async fn the_cleanup_columns_are_indexed(db: Database, catalog: &str) {
    let first = db.store().await;
    let again = db.store().await;
    for (table, column) in [
        ("claims", "expires_at"),
        ("locks", "expires_at"),
        ("sessions", "purge_at"),
        ("settlements", "expires_at"),
    ] {
        let index = format!("{}{table}_{column}_idx", db.prefix);
        let found = db.count(&catalog.replace("{index}", &index)).await;
        assert_eq!(found, 1, "no index {index}");
    }
    assert!(first.claim("k", Duration::from_secs(5)).await.unwrap());
    assert!(again.is_claimed("k").await.unwrap());
}

#[cfg(feature = "sqlite")]
const SQLITE_INDEX: &str =
    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = '{index}'";

#[cfg(feature = "postgres")]
const POSTGRES_INDEX: &str = "SELECT COUNT(*) FROM pg_indexes WHERE indexname = '{index}'";

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn sqlite_deletes_expired_rows() {
    let db = Database::sqlite("cleanup");
    expired_rows_are_deleted(db.store().await).await;
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn sqlite_cleanup_rounds_repeat_full_batches_and_stay_bounded() {
    cleanup_rounds_repeat_full_batches_and_stay_bounded(Database::sqlite("rounds")).await;
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn sqlite_cleanup_timer_deletes_expired_rows() {
    the_cleanup_timer_deletes_expired_rows(Database::sqlite("timer")).await;
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn sqlite_cleanup_columns_are_indexed() {
    the_cleanup_columns_are_indexed(Database::sqlite("indexes"), SQLITE_INDEX).await;
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn sqlite_reports_what_to_fix() {
    let bad_prefix = SqlStore::connect("sqlite::memory:", "Mpp-")
        .await
        .unwrap_err();
    assert!(
        bad_prefix.to_string().contains("MPP_STORE_PREFIX"),
        "{bad_prefix}"
    );
    let no_dir = SqlStore::connect("sqlite:///nonexistent-dir/for/sure/mpp.db", "mpp_")
        .await
        .unwrap_err();
    assert!(
        no_dir
            .to_string()
            .contains("cannot open `sqlite:///nonexistent-dir"),
        "{no_dir}"
    );
    let not_sql = SqlStore::connect("mysql://db", "mpp_").await.unwrap_err();
    assert!(not_sql.to_string().contains("sqlite://"), "{not_sql}");
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_deletes_expired_rows() {
    let Some(db) = Database::postgres() else {
        return;
    };
    expired_rows_are_deleted(db.store().await).await;
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_cleanup_rounds_repeat_full_batches_and_stay_bounded() {
    if let Some(db) = Database::postgres() {
        cleanup_rounds_repeat_full_batches_and_stay_bounded(db).await;
    }
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_cleanup_timer_deletes_expired_rows() {
    if let Some(db) = Database::postgres() {
        the_cleanup_timer_deletes_expired_rows(db).await;
    }
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_cleanup_columns_are_indexed() {
    if let Some(db) = Database::postgres() {
        the_cleanup_columns_are_indexed(db, POSTGRES_INDEX).await;
    }
}

#[cfg(feature = "postgres")]
mod outage {
    use std::path::PathBuf;
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    use mpp_runtime::store::SqlStore;
    use mpp_runtime::wire::ProblemType;
    use mpp_runtime::*;

    use super::support::*;

    /// A throwaway PostgreSQL cluster on its own port, run as the `postgres`
    /// user when the tests run as root (the server refuses root).
    struct PrivatePostgres {
        child: Option<Child>,
        bin: PathBuf,
        data: PathBuf,
        port: u16,
        as_postgres: bool,
    }

    fn server_binaries() -> Option<PathBuf> {
        let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|entry| Some(entry.ok()?.path().join("bin")))
            .filter(|bin| bin.join("postgres").exists() && bin.join("initdb").exists())
            .collect();
        versions.sort();
        versions.pop()
    }

    fn is_root() -> bool {
        Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
    }

    impl PrivatePostgres {
        fn command(&self, program: &str) -> Command {
            let path = self.bin.join(program);
            if self.as_postgres {
                let mut command = Command::new("setpriv");
                command
                    .args([
                        "--reuid=postgres",
                        "--regid=postgres",
                        "--init-groups",
                        "--",
                    ])
                    .arg(path);
                command
            } else {
                Command::new(path)
            }
        }

        fn init() -> Option<Self> {
            let Some(bin) = server_binaries() else {
                if std::env::var_os("CI").is_some() {
                    panic!(
                        "no PostgreSQL server binaries under /usr/lib/postgresql: CI must run the outage test"
                    );
                }
                eprintln!("skipped: no PostgreSQL server binaries under /usr/lib/postgresql");
                return None;
            };
            let data = std::env::temp_dir().join(format!(
                "mpp-pg-outage-{}-{:x}",
                std::process::id(),
                random::u128() >> 64
            ));
            std::fs::create_dir_all(&data).unwrap();
            let as_postgres = is_root();
            if as_postgres {
                let status = Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(&data)
                    .status()
                    .unwrap();
                assert!(status.success(), "chown of the data directory failed");
            }
            let server = Self {
                child: None,
                bin,
                data,
                port: free_port(),
                as_postgres,
            };
            let out = server
                .command("initdb")
                .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
                .arg(&server.data)
                .stdout(Stdio::null())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            Some(server)
        }

        fn start(&mut self) {
            let child = self
                .command("postgres")
                .arg("-D")
                .arg(&self.data)
                .args(["-p", &self.port.to_string(), "-k"])
                .arg(&self.data)
                .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            self.child = Some(child);
            let deadline = Instant::now() + Duration::from_secs(30);
            while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
                assert!(Instant::now() < deadline, "postgres did not start");
                std::thread::sleep(Duration::from_millis(50));
            }
        }

        fn url(&self) -> String {
            format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
        }

        /// Immediate shutdown, as when the database host goes away.
        fn stop(&mut self) {
            if let Some(mut child) = self.child.take() {
                let _ = Command::new("kill")
                    .args(["-QUIT", &child.id().to_string()])
                    .status();
                let _ = child.wait();
            }
        }
    }

    impl Drop for PrivatePostgres {
        fn drop(&mut self) {
            self.stop();
            let _ = std::fs::remove_dir_all(&self.data);
        }
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_outage_fails_closed_and_the_gate_recovers() {
        let Some(mut server) = PrivatePostgres::init() else {
            return;
        };
        server.start();
        let store = SqlStore::connect(&server.url(), "mpp_").await.unwrap();
        let rail = TestRail::new("test");
        let gate = Gate::builder(config().build().unwrap())
            .rail(Shared(rail.clone()))
            .store(store)
            .build()
            .unwrap();
        let metered = route(
            &gate,
            "/m",
            PaymentSpec::new().amount("1.00").grants(3).scope("m"),
        );
        let single = route(&gate, "/r", PaymentSpec::new().amount("1.00").scope("s"));

        // A session bought before the outage.
        let c = challenge(&gate, &metered, "/m").await;
        let grant = granted(gate.admit(&metered, with_auth("/m", &pay(&c, "ok"))).await);
        let session = grant
            .session()
            .expect("a metered grant opens a session")
            .id
            .clone();
        // A paid credential not yet presented.
        let c = challenge(&gate, &single, "/r").await;
        let paid = pay(&c, "ok");
        assert_eq!(rail.settled(), 1);

        server.stop();
        let refused = denied(gate.admit(&single, with_auth("/r", &paid)).await);
        assert_eq!(refused.status, 503, "{}", refused.body_text());
        assert_eq!(problem(&refused), ProblemType::ServiceUnavailable);
        let refused = denied(
            gate.admit(&metered, with_auth("/m", &session_auth(&session)))
                .await,
        );
        assert_eq!(refused.status, 503, "a session is never spent blind");
        assert_eq!(
            rail.settled(),
            1,
            "nothing is charged while the store is down"
        );

        // The database comes back (crash recovery of the same data): the
        // credential is still good and the session still holds its credits.
        server.start();
        let grant = granted_after_recovery(&gate, &single, "/r", &paid).await;
        assert_eq!(grant.receipt().method, "test");
        let spent = granted(
            gate.admit(&metered, with_auth("/m", &session_auth(&session)))
                .await,
        );
        assert_eq!(spent.session().unwrap().remaining, 1, "3 bought, 2 used");
        assert_eq!(rail.settled(), 2);
    }
}
