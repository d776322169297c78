//! The store's SQL text, built once per store from its table prefix. The
//! same statements run on PostgreSQL and SQLite: both number parameters
//! `$1…`, both have `INSERT … ON CONFLICT … DO UPDATE … WHERE` and
//! `RETURNING`, and expired rows are selected by primary key.

use std::sync::Arc;

use sqlx::{AssertSqlSafe, SqlSafeStr, SqlStr};

/// The four tables of one prefix.
pub(super) struct Tables {
    pub(super) prefix: String,
    pub(super) claims: String,
    pub(super) locks: String,
    pub(super) sessions: String,
    pub(super) settlements: String,
}

impl Tables {
    /// The tables named `<prefix>claims`, …; the prefix is lowercase ASCII
    /// letters, digits and `_`, so names are safe to splice into SQL.
    pub(super) fn new(prefix: &str) -> Result<Self, String> {
        if !prefix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(format!(
                "the SQL table prefix may only hold lowercase letters, digits and `_`, not `{prefix}` (set MPP_STORE_PREFIX)"
            ));
        }
        Ok(Self {
            prefix: prefix.to_owned(),
            claims: format!("{prefix}claims"),
            locks: format!("{prefix}locks"),
            sessions: format!("{prefix}sessions"),
            settlements: format!("{prefix}settlements"),
        })
    }

    /// `CREATE TABLE IF NOT EXISTS` for each table (idempotent).
    pub(super) fn schema(&self) -> [String; 4] {
        [
            format!(
                "CREATE TABLE IF NOT EXISTS {} (key TEXT PRIMARY KEY, expires_at BIGINT NOT NULL)",
                self.claims
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {} (key TEXT PRIMARY KEY, token TEXT NOT NULL, expires_at BIGINT NOT NULL)",
                self.locks
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {} (id TEXT PRIMARY KEY, scope TEXT NOT NULL, route TEXT NOT NULL, \
                 grants INTEGER NOT NULL, remaining INTEGER NOT NULL CHECK (remaining >= 0), \
                 expires_at BIGINT NOT NULL, receipt TEXT NOT NULL, purge_at BIGINT NOT NULL)",
                self.sessions
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {} (reference TEXT PRIMARY KEY, record TEXT NOT NULL, expires_at BIGINT NOT NULL)",
                self.settlements
            ),
        ]
    }
}

/// A statement held once and shared by every call (no formatting per
/// request; the driver caches the prepared statement per connection).
#[derive(Clone)]
pub(super) struct Sql(SqlStr);

impl Sql {
    fn new(text: String) -> Self {
        Self(AssertSqlSafe(Arc::<str>::from(text)).into_sql_str())
    }

    /// The statement, ready for `sqlx::query`.
    pub(super) fn get(&self) -> SqlStr {
        self.0.clone()
    }
}

/// Every statement the store runs.
pub(super) struct Statements {
    /// `$1` key, `$2` expires_at, `$3` now: inserted unless a live row holds it.
    pub(super) claim: Sql,
    pub(super) is_claimed: Sql,
    /// `$1` key, `$2` expires_at, `$3` now, `$4` token.
    pub(super) lock: Sql,
    pub(super) unlock: Sql,
    pub(super) create_session: Sql,
    /// The one guarded statement that spends a credit.
    pub(super) spend: Sql,
    /// Why a spend did not happen.
    pub(super) spend_refused: Sql,
    pub(super) session: Sql,
    pub(super) end_session: Sql,
    pub(super) put_settlement: Sql,
    pub(super) settlement: Sql,
    /// `(table, statement)`: deletes a bounded batch of expired rows.
    pub(super) cleanup: Vec<(String, Sql)>,
}

impl Statements {
    pub(super) fn new(t: &Tables) -> Self {
        let take = |table: &str, token: bool| {
            let (column, value, update) = if token {
                ("token, ", "$4, ", "token = EXCLUDED.token, ")
            } else {
                ("", "", "")
            };
            Sql::new(format!(
                "INSERT INTO {table} AS t (key, {column}expires_at) VALUES ($1, {value}$2) \
                 ON CONFLICT (key) DO UPDATE SET {update}expires_at = EXCLUDED.expires_at \
                 WHERE t.expires_at <= $3 RETURNING key"
            ))
        };
        let sessions = &t.sessions;
        Self {
            claim: take(&t.claims, false),
            is_claimed: Sql::new(format!(
                "SELECT 1 FROM {} WHERE key = $1 AND expires_at > $2",
                t.claims
            )),
            lock: take(&t.locks, true),
            unlock: Sql::new(format!(
                "DELETE FROM {} WHERE key = $1 AND token = $2",
                t.locks
            )),
            create_session: Sql::new(format!(
                "INSERT INTO {sessions} (id, scope, route, grants, remaining, expires_at, receipt, purge_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING RETURNING id"
            )),
            spend: Sql::new(format!(
                "UPDATE {sessions} SET remaining = remaining - 1 \
                 WHERE id = $1 AND scope = $2 AND remaining > 0 AND expires_at > $3 \
                 RETURNING id, scope, route, grants, remaining, expires_at, receipt"
            )),
            spend_refused: Sql::new(format!(
                "SELECT scope, expires_at FROM {sessions} WHERE id = $1"
            )),
            session: Sql::new(format!(
                "SELECT id, scope, route, grants, remaining, expires_at, receipt FROM {sessions} WHERE id = $1"
            )),
            end_session: Sql::new(format!(
                "UPDATE {sessions} SET remaining = 0 WHERE id = $1 RETURNING id"
            )),
            put_settlement: Sql::new(format!(
                "INSERT INTO {} (reference, record, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (reference) DO UPDATE SET record = EXCLUDED.record, expires_at = EXCLUDED.expires_at",
                t.settlements
            )),
            settlement: Sql::new(format!(
                "SELECT record FROM {} WHERE reference = $1 AND expires_at > $2",
                t.settlements
            )),
            cleanup: [
                (&t.claims, "key", "expires_at"),
                (&t.locks, "key", "expires_at"),
                (&t.sessions, "id", "purge_at"),
                (&t.settlements, "reference", "expires_at"),
            ]
            .into_iter()
            .map(|(table, key, column)| {
                (
                    table.clone(),
                    Sql::new(format!(
                        "DELETE FROM {table} WHERE {key} IN \
                         (SELECT {key} FROM {table} WHERE {column} <= $1 LIMIT $2)"
                    )),
                )
            })
            .collect(),
        }
    }
}
