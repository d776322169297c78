//! Opening a SQLite database for [`super::SqlStore`] and migrating it.

use std::str::FromStr;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Connection};

use super::statements::Tables;
use super::{STATEMENT_TIMEOUT, failed};
use crate::store::StoreError;

/// Connections per process. SQLite runs one writer at a time, so a few
/// connections serve reads while writes queue on the database lock.
const CONNECTIONS: u32 = 4;

/// The database at `url` (`sqlite://path`, created if missing), in WAL mode
/// so readers never wait for the writer and several processes can share the
/// file, with the tables created.
pub(super) async fn connect(url: &str, tables: &Tables) -> Result<SqlitePool, StoreError> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|e| {
            StoreError::new(format!(
                "MPP_STORE `{url}` is not a SQLite URL (`sqlite://path/to/file.db`): {e}"
            ))
        })?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // WAL with NORMAL is durable across application crashes; a power
        // loss can lose the last transactions, not corrupt the file.
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(STATEMENT_TIMEOUT);
    let pool = SqlitePoolOptions::new()
        .max_connections(CONNECTIONS)
        .acquire_timeout(STATEMENT_TIMEOUT)
        .connect_with(options)
        .await
        .map_err(|e| StoreError::new(format!("sqlite: cannot open `{url}`: {e}")))?;
    migrate(&pool, tables).await?;
    Ok(pool)
}

/// Creates the tables (idempotent) in one write transaction, so processes
/// starting together do not interleave.
async fn migrate(pool: &SqlitePool, tables: &Tables) -> Result<(), StoreError> {
    let mut connection = pool.acquire().await.map_err(failed("sqlite"))?;
    let mut tx = connection
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(failed("sqlite"))?;
    for statement in tables.schema() {
        sqlx::query(AssertSqlSafe(statement))
            .execute(&mut *tx)
            .await
            .map_err(failed("sqlite"))?;
    }
    tx.commit().await.map_err(failed("sqlite"))
}
