//! Opening a PostgreSQL pool for [`super::SqlStore`] and migrating it.

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Executor};

use super::statements::Tables;
use super::{STATEMENT_TIMEOUT, failed};
use crate::store::StoreError;

/// A pool whose statements time out (an outage fails closed), with the
/// tables created.
pub(super) async fn connect(url: &str, tables: &Tables) -> Result<PgPool, StoreError> {
    let timeout_ms = STATEMENT_TIMEOUT.as_millis();
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(STATEMENT_TIMEOUT)
        .after_connect(move |connection, _| {
            Box::pin(async move {
                connection
                    .execute(AssertSqlSafe(format!(
                        "SET statement_timeout = {timeout_ms}"
                    )))
                    .await
                    .map(|_| ())
            })
        })
        .connect(url)
        .await
        .map_err(failed("postgres"))?;
    migrate(&pool, tables).await?;
    Ok(pool)
}

/// Creates the tables (idempotent). Concurrent first starts of several
/// servers must not race on the catalog, so the migration holds an advisory
/// lock named after the prefix.
async fn migrate(pool: &PgPool, tables: &Tables) -> Result<(), StoreError> {
    let mut tx = pool.begin().await.map_err(failed("postgres"))?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
        .bind(format!("mpp-runtime:{}", tables.prefix))
        .execute(&mut *tx)
        .await
        .map_err(failed("postgres"))?;
    for statement in tables.schema() {
        sqlx::query(AssertSqlSafe(statement))
            .execute(&mut *tx)
            .await
            .map_err(failed("postgres"))?;
    }
    tx.commit().await.map_err(failed("postgres"))
}
