//! The store's SQL text, built once per store from its table prefix. The
//! same statements run on PostgreSQL and SQLite: both number parameters
//! `$1…`, both have `INSERT … ON CONFLICT … DO UPDATE … WHERE` and
//! `RETURNING`, and expired rows are selected by primary key. The one
//! difference is spliced in: the expression for the database's clock
//! ([`Clock`]), which decides every lease and time to live, so app servers
//! with skewed clocks still agree on when a claim or a lock lapses.

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

    /// `CREATE TABLE IF NOT EXISTS` for each table, then `CREATE INDEX IF
    /// NOT EXISTS` on the column the cleanup selects expired rows by
    /// (idempotent, both databases).
    pub(super) fn schema(&self) -> Vec<String> {
        let mut statements = vec![
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
        ];
        statements.extend(self.expiry_columns().map(|(table, _, column)| {
            format!("CREATE INDEX IF NOT EXISTS {table}_{column}_idx ON {table} ({column})")
        }));
        statements
    }

    /// `(table, primary key, expiry column)`: what the cleanup deletes by.
    pub(super) fn expiry_columns(&self) -> [(&str, &'static str, &'static str); 4] {
        [
            (&self.claims, "key", "expires_at"),
            (&self.locks, "key", "expires_at"),
            (&self.sessions, "id", "purge_at"),
            (&self.settlements, "reference", "expires_at"),
        ]
    }

    /// Every table of this prefix.
    pub(super) fn all(&self) -> [&str; 4] {
        self.expiry_columns().map(|(table, _, _)| table)
    }
}

/// The database's current time in milliseconds since the Unix epoch, as a
/// SQL expression.
#[derive(Clone, Copy, Debug)]
pub(super) enum Clock {
    /// The PostgreSQL server's clock: shared by every app server, so a lease
    /// never depends on one server's clock. `statement_timestamp()` (the
    /// start of the statement) rather than `clock_timestamp()`: it is
    /// stable within the statement, so the cleanup can use its index.
    #[cfg(feature = "postgres")]
    Postgres,
    /// The clock of the machine the file is on (every process sharing a
    /// SQLite file runs there).
    #[cfg(feature = "sqlite")]
    Sqlite,
}

impl Clock {
    fn now_ms(self) -> &'static str {
        match self {
            #[cfg(feature = "postgres")]
            Self::Postgres => "(CAST(EXTRACT(EPOCH FROM statement_timestamp()) * 1000 AS BIGINT))",
            #[cfg(feature = "sqlite")]
            Self::Sqlite => "(CAST(unixepoch('subsec') * 1000 AS INTEGER))",
        }
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

/// Every statement the store runs. `now` below is the database's clock
/// ([`Clock`]) in milliseconds; durations are bound in milliseconds.
pub(super) struct Statements {
    /// `$1` key, `$2` ttl: inserted unless a live row holds it.
    pub(super) claim: Sql,
    /// `$1` key.
    pub(super) is_claimed: Sql,
    /// `$1` key, `$2` ttl, `$3` token.
    pub(super) lock: Sql,
    /// `$1` key, `$2` token.
    pub(super) unlock: Sql,
    /// `$1…$8`: the session's columns (`purge_at` last).
    pub(super) create_session: Sql,
    /// The one guarded statement that spends a credit: `$1` id, `$2` scope,
    /// `$3` the gate's now (seconds).
    pub(super) spend: Sql,
    /// Why a spend did not happen: `$1` id.
    pub(super) spend_refused: Sql,
    /// `$1` id.
    pub(super) session: Sql,
    /// `$1` id.
    pub(super) end_session: Sql,
    /// `$1` reference, `$2` record, `$3` ttl.
    pub(super) put_settlement: Sql,
    /// `$1` reference.
    pub(super) settlement: Sql,
    /// `(table, statement)`: deletes at most `$1` expired rows.
    pub(super) cleanup: Vec<(String, Sql)>,
}

impl Statements {
    pub(super) fn new(t: &Tables, clock: Clock) -> Self {
        let now = clock.now_ms();
        let take = |table: &str, token: bool| {
            let (column, value, update) = if token {
                ("token, ", "$3, ", "token = EXCLUDED.token, ")
            } else {
                ("", "", "")
            };
            Sql::new(format!(
                "INSERT INTO {table} AS t (key, {column}expires_at) VALUES ($1, {value}{now} + $2) \
                 ON CONFLICT (key) DO UPDATE SET {update}expires_at = EXCLUDED.expires_at \
                 WHERE t.expires_at <= {now} RETURNING key"
            ))
        };
        let sessions = &t.sessions;
        // A session row past its purge time is gone, as in every store,
        // whether or not the cleanup has deleted it yet.
        let live = format!("purge_at > {now}");
        Self {
            claim: take(&t.claims, false),
            is_claimed: Sql::new(format!(
                "SELECT 1 FROM {} WHERE key = $1 AND expires_at > {now}",
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
                "SELECT scope, expires_at FROM {sessions} WHERE id = $1 AND {live}"
            )),
            session: Sql::new(format!(
                "SELECT id, scope, route, grants, remaining, expires_at, receipt FROM {sessions} \
                 WHERE id = $1 AND {live}"
            )),
            end_session: Sql::new(format!(
                "UPDATE {sessions} SET remaining = 0 WHERE id = $1 AND {live} RETURNING id"
            )),
            put_settlement: Sql::new(format!(
                "INSERT INTO {} (reference, record, expires_at) VALUES ($1, $2, {now} + $3) \
                 ON CONFLICT (reference) DO UPDATE SET record = EXCLUDED.record, expires_at = EXCLUDED.expires_at",
                t.settlements
            )),
            settlement: Sql::new(format!(
                "SELECT record FROM {} WHERE reference = $1 AND expires_at > {now}",
                t.settlements
            )),
            cleanup: t
                .expiry_columns()
                .into_iter()
                .map(|(table, key, column)| {
                    (
                        table.to_owned(),
                        Sql::new(format!(
                            "DELETE FROM {table} WHERE {key} IN \
                             (SELECT {key} FROM {table} WHERE {column} <= {now} LIMIT $1)"
                        )),
                    )
                })
                .collect(),
        }
    }
}
