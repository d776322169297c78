//! [`SqlStore`]: the gate's state in a SQL database through sqlx, either
//! **PostgreSQL** (feature `postgres`), shared by every application server
//! that points at the same database and table prefix, or **SQLite**
//! (feature `sqlite`), a file that survives restarts and can be shared by
//! the processes of one machine.
//!
//! The store creates its tables itself ([`SqlStore::connect`] runs the
//! idempotent migration). Every operation is one statement: claims and
//! locks are inserts that only replace an expired row (a lease with
//! expiry, so a lock whose holder died frees itself), an unlock deletes
//! only its holder's row, and a session spend is one guarded
//! `UPDATE … SET remaining = remaining - 1 WHERE id = $1 AND scope = $2 AND
//! remaining > 0 AND expires_at > $3 RETURNING …`, backed by
//! `CHECK (remaining >= 0)`, so it can never go below zero. Leases and
//! times to live are judged by the database's clock (PostgreSQL: the
//! server's, shared by every app server), session expiry by the gate's.
//! A background task deletes expired rows each minute, in batches of 1000
//! per table, repeating while a batch comes back full (at most
//! [`SqlStore::CLEANUP_BATCHES_PER_ROUND`] batches per table and round), by
//! an index on each table's expiry column.

#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;
mod statements;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use sqlx::{ColumnIndex, Decode, Row, Type};

use super::codec::{settlement_from, settlement_json};
use super::{
    EXPIRED_SESSION_GRACE, LockToken, SessionRecord, SettlementRecord, SpendOutcome, Store,
    StoreError,
};
use crate::BoxFuture;
use crate::wire::{EncodedReceipt, Timestamp};
use statements::{Clock, Statements, Tables};

/// Rows deleted per table and statement by the background cleanup.
const CLEANUP_BATCH: u32 = 1000;
/// The longest a statement (or a wait for a connection or a lock) may take
/// before the request fails closed with a 503.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(5);

/// The gate's store in PostgreSQL or SQLite.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// # #[cfg(feature = "sqlite")] {
/// use mpp_runtime::store::{SqlStore, Store};
/// # let dir = std::env::temp_dir().join(format!("mpp-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// # let path = dir.join("mpp.db");
/// let store = SqlStore::connect(&format!("sqlite://{}", path.display()), "mpp_").await?;
/// assert!(store.claim("challenge-1", std::time::Duration::from_secs(60)).await?);
/// assert!(!store.claim("challenge-1", std::time::Duration::from_secs(60)).await?);
/// # }
/// # Ok::<(), mpp_runtime::StoreError>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct SqlStore {
    backend: Backend,
    tables: Arc<Tables>,
    sql: Arc<Statements>,
    cleanup: Arc<Cleanup>,
}

/// The connection pool of one database kind.
#[derive(Clone)]
enum Backend {
    #[cfg(feature = "postgres")]
    Postgres(sqlx::PgPool),
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::SqlitePool),
}

impl Backend {
    fn name(&self) -> &'static str {
        match self {
            #[cfg(feature = "postgres")]
            Self::Postgres(_) => "postgres",
            #[cfg(feature = "sqlite")]
            Self::Sqlite(_) => "sqlite",
        }
    }

    fn clock(&self) -> Clock {
        match self {
            #[cfg(feature = "postgres")]
            Self::Postgres(_) => Clock::Postgres,
            #[cfg(feature = "sqlite")]
            Self::Sqlite(_) => Clock::Sqlite,
        }
    }
}

/// Runs `$body` with `$pool` bound to the store's pool, whatever its kind:
/// the same statements and binds, type-checked once per database.
macro_rules! with_pool {
    ($backend:expr, $pool:ident => $body:expr) => {
        match $backend {
            #[cfg(feature = "postgres")]
            Backend::Postgres($pool) => $body,
            #[cfg(feature = "sqlite")]
            Backend::Sqlite($pool) => $body,
        }
    };
}

impl fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlStore")
            .field("database", &self.backend.name())
            .field("prefix", &self.tables.prefix)
            .finish_non_exhaustive()
    }
}

/// The cleanup task, shared by every clone of a store; stopped when the
/// last clone is dropped.
struct Cleanup(std::sync::Mutex<tokio::task::AbortHandle>);

impl Cleanup {
    /// Runs `task` instead of the current one.
    fn replace(&self, task: tokio::task::AbortHandle) {
        let mut current = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        std::mem::replace(&mut *current, task).abort();
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .abort();
    }
}

fn failed(database: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |error| StoreError::new(format!("{database}: {error}"))
}

fn ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn secs(at: Timestamp) -> i64 {
    i64::try_from(at.unix()).unwrap_or(i64::MAX)
}

fn secs_of(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

impl SqlStore {
    /// Connects to `url` and creates the tables if needed
    /// (`<prefix>claims`, `<prefix>locks`, `<prefix>sessions`,
    /// `<prefix>settlements`; the prefix is lowercase letters, digits and
    /// `_`), then starts the cleanup of expired rows.
    ///
    /// - `postgres://user@host/db` (feature `postgres`): statements time out
    ///   after 5 seconds, so an outage fails requests closed (503).
    /// - `sqlite://path/to/file.db` (feature `sqlite`): the file is created
    ///   if missing and opened in WAL mode, so several processes of one
    ///   machine can share it; a writer waits at most 5 seconds for the lock.
    ///   `sqlite::memory:` is a private in-memory database (tests).
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, StoreError> {
        let tables = Tables::new(prefix).map_err(StoreError::new)?;
        let scheme = url.split(':').next().unwrap_or_default();
        let backend = match scheme {
            #[cfg(feature = "postgres")]
            "postgres" | "postgresql" => Backend::Postgres(postgres::connect(url, &tables).await?),
            #[cfg(feature = "sqlite")]
            "sqlite" => Backend::Sqlite(sqlite::connect(url, &tables).await?),
            other => {
                return Err(StoreError::new(format!(
                    "SqlStore needs a `postgres://…` (feature `postgres`) or `sqlite://…` (feature `sqlite`) URL, not `{other}:…`"
                )));
            }
        };
        let tables = Arc::new(tables);
        let sql = Arc::new(Statements::new(&tables, backend.clock()));
        let task = tokio::spawn(cleanup(backend.clone(), sql.clone(), Self::CLEANUP_EVERY));
        Ok(Self {
            backend,
            tables,
            sql,
            cleanup: Arc::new(Cleanup(std::sync::Mutex::new(task.abort_handle()))),
        })
    }

    /// How often the background task deletes expired rows, unless
    /// [`SqlStore::cleanup_every`] says otherwise.
    pub const CLEANUP_EVERY: Duration = Duration::from_secs(60);

    /// The most batches one cleanup round deletes per table (of 1000 rows
    /// each in the background task): a round repeats a batch while it comes
    /// back full, so the store keeps up with up to 100,000 expiring rows per
    /// table and minute, and one round stays bounded.
    pub const CLEANUP_BATCHES_PER_ROUND: u32 = 100;

    /// Deletes expired rows every `every` (at least 10 ms) instead of every
    /// [`SqlStore::CLEANUP_EVERY`], for this store and its clones; the
    /// first round runs `every` from now.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # #[cfg(feature = "sqlite")] {
    /// use mpp_runtime::store::SqlStore;
    /// let store = SqlStore::connect("sqlite::memory:", "mpp_")
    ///     .await?
    ///     .cleanup_every(std::time::Duration::from_secs(10));
    /// # }
    /// # Ok::<(), mpp_runtime::StoreError>(())
    /// # }).unwrap();
    /// ```
    #[must_use]
    pub fn cleanup_every(self, every: Duration) -> Self {
        let every = every.max(Duration::from_millis(10));
        let task = tokio::spawn(cleanup(self.backend.clone(), self.sql.clone(), every));
        self.cleanup.replace(task.abort_handle());
        self
    }

    /// Deletes expired rows now, in batches of `batch` rows per table,
    /// repeating while a batch comes back full but at most
    /// [`SqlStore::CLEANUP_BATCHES_PER_ROUND`] batches per table; returns
    /// how many were deleted. The store also does this by itself (batches
    /// of 1000), every [`SqlStore::CLEANUP_EVERY`].
    pub async fn delete_expired(&self, batch: u32) -> Result<u64, StoreError> {
        delete_expired(&self.backend, &self.sql, batch).await
    }

    /// Drops this prefix's four tables with everything in them (uninstalling
    /// the store, or a test cleaning up after itself). Other stores on the
    /// same tables fail closed afterwards, until one connects again (which
    /// creates them empty).
    pub async fn drop_tables(&self) -> Result<(), StoreError> {
        for table in self.tables.all() {
            let statement = format!("DROP TABLE IF EXISTS {table}");
            with_pool!(&self.backend, pool => sqlx::query(sqlx::AssertSqlSafe(statement))
                .execute(pool)
                .await
                .map(|_| ())
                .map_err(failed(self.backend.name())))?;
        }
        Ok(())
    }
}

/// Deletes expired rows every `every`.
async fn cleanup(backend: Backend, sql: Arc<Statements>, every: Duration) {
    let first = tokio::time::Instant::now() + every;
    let mut tick = tokio::time::interval_at(first, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = delete_expired(&backend, &sql, CLEANUP_BATCH).await {
            tracing::warn!(%e, "could not delete expired rows; retrying at the next round");
        }
    }
}

/// One cleanup round: per table, batches of `batch` rows while a batch
/// comes back full, at most [`SqlStore::CLEANUP_BATCHES_PER_ROUND`].
async fn delete_expired(
    backend: &Backend,
    sql: &Statements,
    batch: u32,
) -> Result<u64, StoreError> {
    if batch == 0 {
        return Ok(0);
    }
    let mut deleted = 0;
    let mut first_error = None;
    for (table, statement) in &sql.cleanup {
        let mut full = true;
        for _ in 0..SqlStore::CLEANUP_BATCHES_PER_ROUND {
            let result = with_pool!(backend, pool => sqlx::query(statement.get())
                .bind(i64::from(batch))
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
                .map_err(failed(backend.name())));
            match result {
                Ok(rows) => {
                    deleted += rows;
                    full = rows >= u64::from(batch);
                    if !full {
                        break;
                    }
                }
                Err(e) => {
                    tracing::debug!(%e, table, "expired rows not deleted");
                    first_error.get_or_insert(e);
                    full = false;
                    break;
                }
            }
        }
        if full {
            tracing::warn!(
                table,
                batches = SqlStore::CLEANUP_BATCHES_PER_ROUND,
                "more expired rows than one cleanup round deletes; the rest go in the next rounds"
            );
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(deleted),
    }
}

/// A session from the columns `id, scope, route, grants, remaining,
/// expires_at, receipt`.
fn session_from<R>(row: &R, database: &'static str) -> Result<SessionRecord, StoreError>
where
    R: Row,
    for<'n> &'n str: ColumnIndex<R>,
    for<'r> i32: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
{
    let corrupt = || StoreError::new(format!("{database}: a session row is corrupt"));
    let get_u32 = |name: &str| -> Result<u32, StoreError> {
        let v: i32 = row.try_get(name).map_err(failed(database))?;
        u32::try_from(v).map_err(|_| corrupt())
    };
    let expires: i64 = row.try_get("expires_at").map_err(failed(database))?;
    let receipt: String = row.try_get("receipt").map_err(failed(database))?;
    Ok(SessionRecord {
        id: row.try_get("id").map_err(failed(database))?,
        scope: row.try_get("scope").map_err(failed(database))?,
        route: row.try_get("route").map_err(failed(database))?,
        grants: get_u32("grants")?,
        remaining: get_u32("remaining")?,
        expires_at: Timestamp::from_unix(u64::try_from(expires).map_err(|_| corrupt())?),
        receipt: EncodedReceipt::parse(&receipt).map_err(|_| corrupt())?,
    })
}

impl Store for SqlStore {
    fn claim<'a>(&'a self, key: &'a str, ttl: Duration) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let row = with_pool!(&self.backend, pool => sqlx::query(self.sql.claim.get())
                .bind(key)
                .bind(ms(ttl))
                .fetch_optional(pool)
                .await
                .map(|row| row.is_some()));
            row.map_err(failed(self.backend.name()))
        })
    }

    fn is_claimed<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let row = with_pool!(&self.backend, pool => sqlx::query(self.sql.is_claimed.get())
                .bind(key)
                .fetch_optional(pool)
                .await
                .map(|row| row.is_some()));
            row.map_err(failed(self.backend.name()))
        })
    }

    fn lock<'a>(
        &'a self,
        key: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Option<LockToken>, StoreError>> {
        Box::pin(async move {
            let token = LockToken::random();
            let taken = with_pool!(&self.backend, pool => sqlx::query(self.sql.lock.get())
                .bind(key)
                .bind(ms(ttl))
                .bind(token.0.to_string())
                .fetch_optional(pool)
                .await
                .map(|row| row.is_some()));
            Ok(taken.map_err(failed(self.backend.name()))?.then_some(token))
        })
    }

    fn unlock<'a>(
        &'a self,
        key: &'a str,
        token: LockToken,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let done = with_pool!(&self.backend, pool => sqlx::query(self.sql.unlock.get())
                .bind(key)
                .bind(token.0.to_string())
                .execute(pool)
                .await
                .map(|_| ()));
            done.map_err(failed(self.backend.name()))
        })
    }

    fn create_session(
        &self,
        session: SessionRecord,
        now: Timestamp,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let _ = now;
            let database = self.backend.name();
            let expires = secs(session.expires_at);
            let count = |n: u32| {
                i32::try_from(n).map_err(|_| {
                    StoreError::new(format!(
                        "{database}: a session holds at most {} credits",
                        i32::MAX
                    ))
                })
            };
            let (grants, remaining) = (count(session.grants)?, count(session.remaining)?);
            let receipt = session.receipt.header();
            let purge_at = expires
                .saturating_add(secs_of(EXPIRED_SESSION_GRACE))
                .saturating_mul(1000);
            let created = with_pool!(&self.backend, pool => sqlx::query(self.sql.create_session.get())
                .bind(&session.id)
                .bind(&session.scope)
                .bind(&session.route)
                .bind(grants)
                .bind(remaining)
                .bind(expires)
                .bind(receipt)
                .bind(purge_at)
                .fetch_optional(pool)
                .await
                .map(|row| row.is_some()));
            if created.map_err(failed(database))? {
                Ok(())
            } else {
                Err(StoreError::new(format!(
                    "{database}: a session with this id already exists"
                )))
            }
        })
    }

    fn spend_session<'a>(
        &'a self,
        id: &'a str,
        scope: &'a str,
        now: Timestamp,
    ) -> BoxFuture<'a, Result<SpendOutcome, StoreError>> {
        Box::pin(async move {
            let database = self.backend.name();
            let spent = with_pool!(&self.backend, pool => {
                match sqlx::query(self.sql.spend.get())
                    .bind(id)
                    .bind(scope)
                    .bind(secs(now))
                    .fetch_optional(pool)
                    .await
                    .map_err(failed(database))?
                {
                    Some(row) => Some(session_from(&row, database)?),
                    None => None,
                }
            });
            if let Some(record) = spent {
                return Ok(SpendOutcome::Spent(record));
            }
            // Nothing spent: say why.
            let found: Option<(String, i64)> = with_pool!(&self.backend, pool => {
                match sqlx::query(self.sql.spend_refused.get())
                    .bind(id)
                    .fetch_optional(pool)
                    .await
                    .map_err(failed(database))?
                {
                    Some(row) => Some((
                        row.try_get("scope").map_err(failed(database))?,
                        row.try_get("expires_at").map_err(failed(database))?,
                    )),
                    None => None,
                }
            });
            Ok(match found {
                None => SpendOutcome::NotFound,
                Some((owner, _)) if owner != scope => SpendOutcome::ScopeMismatch,
                Some((_, expires)) if expires <= secs(now) => SpendOutcome::Expired,
                Some(_) => SpendOutcome::Exhausted,
            })
        })
    }

    fn session<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<SessionRecord>, StoreError>> {
        Box::pin(async move {
            let database = self.backend.name();
            with_pool!(&self.backend, pool => {
                match sqlx::query(self.sql.session.get())
                    .bind(id)
                    .fetch_optional(pool)
                    .await
                    .map_err(failed(database))?
                {
                    Some(row) => session_from(&row, database).map(Some),
                    None => Ok(None),
                }
            })
        })
    }

    fn end_session<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let ended = with_pool!(&self.backend, pool => sqlx::query(self.sql.end_session.get())
                .bind(id)
                .fetch_optional(pool)
                .await
                .map(|row| row.is_some()));
            ended.map_err(failed(self.backend.name()))
        })
    }

    fn put_settlement(
        &self,
        record: SettlementRecord,
        ttl: Duration,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let text = settlement_json(&record);
            let done = with_pool!(&self.backend, pool => sqlx::query(self.sql.put_settlement.get())
                .bind(&record.reference)
                .bind(&text)
                .bind(ms(ttl))
                .execute(pool)
                .await
                .map(|_| ()));
            done.map_err(failed(self.backend.name()))
        })
    }

    fn settlement<'a>(
        &'a self,
        reference: &'a str,
    ) -> BoxFuture<'a, Result<Option<SettlementRecord>, StoreError>> {
        Box::pin(async move {
            let database = self.backend.name();
            let text: Option<String> = with_pool!(&self.backend, pool => {
                match sqlx::query(self.sql.settlement.get())
                    .bind(reference)
                    .fetch_optional(pool)
                    .await
                    .map_err(failed(database))?
                {
                    Some(row) => Some(row.try_get("record").map_err(failed(database))?),
                    None => None,
                }
            });
            text.as_deref().map(settlement_from).transpose()
        })
    }
}
