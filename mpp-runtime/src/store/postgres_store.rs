//! [`PostgresStore`]: the gate's state in PostgreSQL, shared by every
//! application server that points at the same database and table prefix
//! (feature `postgres`).
//!
//! The store creates its tables itself ([`PostgresStore::connect`] runs the
//! idempotent migration). Every operation is one statement: claims and
//! locks are inserts that only replace an expired row, an unlock deletes
//! only its holder's row, and a session spend is one guarded
//! `UPDATE … SET remaining = remaining - 1 WHERE … AND remaining > 0 AND
//! expires_at > $now RETURNING …`, so it can never go below zero. A
//! background task deletes expired rows, a bounded batch a minute.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
// Statements are built from fixed text and table names made of a validated
// prefix (lowercase letters, digits, `_`); every value is a bound parameter.
use sqlx::{AssertSqlSafe, Row};

use super::codec::{settlement_from, settlement_json};
use super::{LockToken, SessionRecord, SettlementRecord, SpendOutcome, Store, StoreError};
use crate::BoxFuture;
use crate::wire::{Receipt, Timestamp};

/// How long a session row outlives its expiry (a late spend is answered
/// "expired", not "not found").
const SESSION_GRACE_MS: i64 = 24 * 3600 * 1000;
/// Rows deleted per table and cleanup round.
const CLEANUP_BATCH: i64 = 1000;

/// The gate's store in PostgreSQL.
///
/// ```no_run
/// # async fn demo() -> Result<(), mpp_runtime::StoreError> {
/// use mpp_runtime::store::PostgresStore;
/// let store = PostgresStore::connect("postgres://127.0.0.1/shop", "mpp_").await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    tables: Arc<Tables>,
    _cleanup: Arc<Cleanup>,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("prefix", &self.tables.prefix)
            .finish_non_exhaustive()
    }
}

/// The table names, fixed at connection.
struct Tables {
    prefix: String,
    claims: String,
    locks: String,
    sessions: String,
    settlements: String,
}

/// Stops the cleanup task when the last store clone is dropped.
struct Cleanup(tokio::task::AbortHandle);

impl Drop for Cleanup {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn failed(error: sqlx::Error) -> StoreError {
    StoreError::new(format!("postgres: {error}"))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn secs(at: Timestamp) -> i64 {
    i64::try_from(at.unix()).unwrap_or(i64::MAX)
}

impl PostgresStore {
    /// Connects to `url` (`postgres://…`), creates the tables if needed
    /// (`<prefix>claims`, `<prefix>locks`, `<prefix>sessions`,
    /// `<prefix>settlements`; the prefix is lowercase letters, digits and
    /// `_`) and starts the cleanup of expired rows. Statements time out
    /// after 5 seconds, so an outage fails requests closed (503).
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, StoreError> {
        if !prefix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(StoreError::new(format!(
                "the PostgreSQL table prefix may only hold lowercase letters, digits and `_`, not `{prefix}`"
            )));
        }
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(|connection, _| {
                Box::pin(async move {
                    sqlx::query("SET statement_timeout = 5000")
                        .execute(connection)
                        .await
                        .map(|_| ())
                })
            })
            .connect(url)
            .await
            .map_err(failed)?;
        let tables = Arc::new(Tables {
            prefix: prefix.to_owned(),
            claims: format!("{prefix}claims"),
            locks: format!("{prefix}locks"),
            sessions: format!("{prefix}sessions"),
            settlements: format!("{prefix}settlements"),
        });
        migrate(&pool, &tables).await?;
        let task = tokio::spawn(cleanup(pool.clone(), tables.clone()));
        Ok(Self {
            pool,
            tables,
            _cleanup: Arc::new(Cleanup(task.abort_handle())),
        })
    }
}

/// Creates the tables (idempotent).
async fn migrate(pool: &PgPool, t: &Tables) -> Result<(), StoreError> {
    let statements = [
        format!(
            "CREATE TABLE IF NOT EXISTS {} (key TEXT PRIMARY KEY, expires_at BIGINT NOT NULL)",
            t.claims
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {} (key TEXT PRIMARY KEY, token TEXT NOT NULL, expires_at BIGINT NOT NULL)",
            t.locks
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {} (id TEXT PRIMARY KEY, scope TEXT NOT NULL, route TEXT NOT NULL, \
             grants INTEGER NOT NULL, remaining INTEGER NOT NULL CHECK (remaining >= 0), \
             expires_at BIGINT NOT NULL, receipt TEXT NOT NULL, purge_at BIGINT NOT NULL)",
            t.sessions
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {} (reference TEXT PRIMARY KEY, record TEXT NOT NULL, expires_at BIGINT NOT NULL)",
            t.settlements
        ),
    ];
    // Concurrent first starts of several servers must not race on the
    // catalog: serialize the migration on an advisory lock.
    let mut tx = pool.begin().await.map_err(failed)?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
        .bind(format!("mpp-runtime:{}", t.prefix))
        .execute(&mut *tx)
        .await
        .map_err(failed)?;
    for statement in statements {
        sqlx::query(AssertSqlSafe(statement))
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
    }
    tx.commit().await.map_err(failed)
}

/// Deletes expired rows, a bounded batch per table each minute.
async fn cleanup(pool: PgPool, t: Arc<Tables>) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        for (table, column) in [
            (&t.claims, "expires_at"),
            (&t.locks, "expires_at"),
            (&t.sessions, "purge_at"),
            (&t.settlements, "expires_at"),
        ] {
            let statement = format!(
                "DELETE FROM {table} WHERE ctid IN (SELECT ctid FROM {table} WHERE {column} <= $1 LIMIT $2)"
            );
            if let Err(e) = sqlx::query(AssertSqlSafe(statement))
                .bind(now_ms())
                .bind(CLEANUP_BATCH)
                .execute(&pool)
                .await
            {
                tracing::warn!(%e, table, "could not delete expired rows; retrying in a minute");
            }
        }
    }
}

fn session_from(row: &PgRow) -> Result<SessionRecord, StoreError> {
    let corrupt = || StoreError::new("postgres: a session row is corrupt");
    let get_u32 = |name: &str| -> Result<u32, StoreError> {
        let v: i32 = row.try_get(name).map_err(failed)?;
        u32::try_from(v).map_err(|_| corrupt())
    };
    let expires: i64 = row.try_get("expires_at").map_err(failed)?;
    let receipt: String = row.try_get("receipt").map_err(failed)?;
    Ok(SessionRecord {
        id: row.try_get("id").map_err(failed)?,
        scope: row.try_get("scope").map_err(failed)?,
        route: row.try_get("route").map_err(failed)?,
        grants: get_u32("grants")?,
        remaining: get_u32("remaining")?,
        expires_at: Timestamp::from_unix(u64::try_from(expires).map_err(|_| corrupt())?),
        receipt: Receipt::parse(&receipt).map_err(|_| corrupt())?,
    })
}

impl PostgresStore {
    /// Inserts `key` with `token` for `ttl` unless a live row holds it.
    async fn take(
        &self,
        table: &str,
        key: &str,
        token: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let now = now_ms();
        let statement = format!(
            "INSERT INTO {table} AS t (key, {extra}expires_at) VALUES ($1, {value}$2) \
             ON CONFLICT (key) DO UPDATE SET {update}expires_at = EXCLUDED.expires_at \
             WHERE t.expires_at <= $3 RETURNING key",
            extra = if token.is_empty() { "" } else { "token, " },
            value = if token.is_empty() { "" } else { "$4, " },
            update = if token.is_empty() {
                ""
            } else {
                "token = EXCLUDED.token, "
            },
        );
        let mut query = sqlx::query(AssertSqlSafe(statement))
            .bind(key)
            .bind(now.saturating_add(ms(ttl)))
            .bind(now);
        if !token.is_empty() {
            query = query.bind(token);
        }
        let row = query.fetch_optional(&self.pool).await.map_err(failed)?;
        Ok(row.is_some())
    }
}

impl Store for PostgresStore {
    fn claim<'a>(&'a self, key: &'a str, ttl: Duration) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move { self.take(&self.tables.claims, key, "", ttl).await })
    }

    fn is_claimed<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let statement = format!(
                "SELECT 1 FROM {} WHERE key = $1 AND expires_at > $2",
                self.tables.claims
            );
            let row = sqlx::query(AssertSqlSafe(statement))
                .bind(key)
                .bind(now_ms())
                .fetch_optional(&self.pool)
                .await
                .map_err(failed)?;
            Ok(row.is_some())
        })
    }

    fn lock<'a>(
        &'a self,
        key: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Option<LockToken>, StoreError>> {
        Box::pin(async move {
            let token = LockToken::random();
            let taken = self
                .take(&self.tables.locks, key, &token.0.to_string(), ttl)
                .await?;
            Ok(taken.then_some(token))
        })
    }

    fn unlock<'a>(
        &'a self,
        key: &'a str,
        token: LockToken,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let statement = format!(
                "DELETE FROM {} WHERE key = $1 AND token = $2",
                self.tables.locks
            );
            sqlx::query(AssertSqlSafe(statement))
                .bind(key)
                .bind(token.0.to_string())
                .execute(&self.pool)
                .await
                .map_err(failed)?;
            Ok(())
        })
    }

    fn create_session(
        &self,
        session: SessionRecord,
        now: Timestamp,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let _ = now;
            let statement = format!(
                "INSERT INTO {} (id, scope, route, grants, remaining, expires_at, receipt, purge_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING RETURNING id",
                self.tables.sessions
            );
            let expires = secs(session.expires_at);
            let row = sqlx::query(AssertSqlSafe(statement))
                .bind(&session.id)
                .bind(&session.scope)
                .bind(&session.route)
                .bind(i32::try_from(session.grants).unwrap_or(i32::MAX))
                .bind(i32::try_from(session.remaining).unwrap_or(i32::MAX))
                .bind(expires)
                .bind(session.receipt.to_header())
                .bind(
                    expires
                        .saturating_mul(1000)
                        .saturating_add(SESSION_GRACE_MS),
                )
                .fetch_optional(&self.pool)
                .await
                .map_err(failed)?;
            match row {
                Some(_) => Ok(()),
                None => Err(StoreError::new(
                    "postgres: a session with this id already exists",
                )),
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
            let t = &self.tables.sessions;
            let spend = format!(
                "UPDATE {t} SET remaining = remaining - 1 \
                 WHERE id = $1 AND scope = $2 AND remaining > 0 AND expires_at > $3 RETURNING *"
            );
            if let Some(row) = sqlx::query(AssertSqlSafe(spend))
                .bind(id)
                .bind(scope)
                .bind(secs(now))
                .fetch_optional(&self.pool)
                .await
                .map_err(failed)?
            {
                return Ok(SpendOutcome::Spent(session_from(&row)?));
            }
            // Nothing spent: say why.
            let read = format!("SELECT scope, remaining, expires_at FROM {t} WHERE id = $1");
            let Some(row) = sqlx::query(AssertSqlSafe(read))
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(failed)?
            else {
                return Ok(SpendOutcome::NotFound);
            };
            let owner: String = row.try_get("scope").map_err(failed)?;
            let expires: i64 = row.try_get("expires_at").map_err(failed)?;
            Ok(if owner != scope {
                SpendOutcome::ScopeMismatch
            } else if expires <= secs(now) {
                SpendOutcome::Expired
            } else {
                SpendOutcome::Exhausted
            })
        })
    }

    fn session<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<SessionRecord>, StoreError>> {
        Box::pin(async move {
            let statement = format!("SELECT * FROM {} WHERE id = $1", self.tables.sessions);
            let row = sqlx::query(AssertSqlSafe(statement))
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(failed)?;
            row.as_ref().map(session_from).transpose()
        })
    }

    fn end_session<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let statement = format!(
                "UPDATE {} SET remaining = 0 WHERE id = $1 RETURNING id",
                self.tables.sessions
            );
            let row = sqlx::query(AssertSqlSafe(statement))
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(failed)?;
            Ok(row.is_some())
        })
    }

    fn put_settlement(
        &self,
        record: SettlementRecord,
        ttl: Duration,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let statement = format!(
                "INSERT INTO {} (reference, record, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (reference) DO UPDATE SET record = EXCLUDED.record, expires_at = EXCLUDED.expires_at",
                self.tables.settlements
            );
            sqlx::query(AssertSqlSafe(statement))
                .bind(&record.reference)
                .bind(settlement_json(&record))
                .bind(now_ms().saturating_add(ms(ttl)))
                .execute(&self.pool)
                .await
                .map_err(failed)?;
            Ok(())
        })
    }

    fn settlement<'a>(
        &'a self,
        reference: &'a str,
    ) -> BoxFuture<'a, Result<Option<SettlementRecord>, StoreError>> {
        Box::pin(async move {
            let statement = format!(
                "SELECT record FROM {} WHERE reference = $1 AND expires_at > $2",
                self.tables.settlements
            );
            let row = sqlx::query(AssertSqlSafe(statement))
                .bind(reference)
                .bind(now_ms())
                .fetch_optional(&self.pool)
                .await
                .map_err(failed)?;
            match row {
                Some(row) => {
                    let text: String = row.try_get("record").map_err(failed)?;
                    settlement_from(&text).map(Some)
                }
                None => Ok(None),
            }
        })
    }
}
