//! Test stores that clean up after themselves: a PostgreSQL table prefix
//! whose tables are dropped, and a SQLite file that is deleted, when the
//! test ends (passed or failed: the guard drops while a panic unwinds too).
//! Best effort: a cleanup that fails only prints why.
//!
//! Included with `#[path = "support/stores.rs"] mod stores;`.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use mpp_runtime::store::SessionRecord;
use mpp_runtime::wire::{Receipt, Timestamp};

/// What to remove when the test ends.
#[must_use = "the cleanup runs when the guard is dropped"]
pub enum Cleanup {
    /// Nothing (the memory store, Redis keys that expire by themselves).
    Nothing,
    /// The tables of `prefix` in the PostgreSQL database at `url`.
    #[cfg(feature = "postgres")]
    PostgresTables { url: String, prefix: String },
    /// A SQLite database file (with its `-wal` and `-shm` files).
    SqliteFile(PathBuf),
}

impl Cleanup {
    /// Drops the tables of `prefix` at `url` when dropped.
    #[cfg(feature = "postgres")]
    pub fn postgres(url: &str, prefix: &str) -> Self {
        Self::PostgresTables {
            url: url.to_owned(),
            prefix: prefix.to_owned(),
        }
    }

    /// Deletes the SQLite file at `path` when dropped.
    pub fn sqlite(path: impl Into<PathBuf>) -> Self {
        Self::SqliteFile(path.into())
    }
}

/// A fresh SQLite file path under the target directory.
pub fn sqlite_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{name}-{:x}.db", mpp_runtime::random::u128() >> 64))
}

/// A session of `grants` credits (all left) on `scope`, sold by `GET /r`,
/// as a paid request would have stored it.
pub fn session(id: &str, scope: &str, grants: u32, expires_at: Timestamp) -> SessionRecord {
    SessionRecord {
        id: id.to_owned(),
        scope: scope.to_owned(),
        route: "GET /r".to_owned(),
        grants,
        remaining: grants,
        expires_at,
        receipt: Receipt::success("test", "ref_session", Timestamp::now()).into(),
    }
}

/// The SQLite URL of `path`.
pub fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        match self {
            Self::Nothing => {}
            #[cfg(feature = "postgres")]
            Self::PostgresTables { url, prefix } => {
                let (url, tables) = (url.clone(), prefix.clone());
                // Its own thread and runtime: this may run inside the test's
                // runtime, or while it unwinds.
                let dropped = std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| e.to_string())?;
                    runtime.block_on(async {
                        let store = mpp_runtime::store::SqlStore::connect(&url, &tables)
                            .await
                            .map_err(|e| e.to_string())?;
                        store.drop_tables().await.map_err(|e| e.to_string())
                    })
                })
                .join();
                match dropped {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => eprintln!("could not drop the test tables {prefix}*: {e}"),
                    Err(_) => eprintln!("could not drop the test tables {prefix}*"),
                }
            }
            Self::SqliteFile(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut file = path.clone().into_os_string();
                    file.push(suffix);
                    let _ = std::fs::remove_file(file);
                }
            }
        }
    }
}
