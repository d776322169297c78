//! [`RedisStore`]: the gate's state in Redis, shared by every process that
//! points at the same server and key prefix (feature `redis`).
//!
//! Every operation is one command or one Lua script, so each is atomic on
//! the server: claims and locks are `SET NX PX`, an unlock deletes only the
//! holder's token, and a session spend checks scope, expiry and credits and
//! decrements in one script, so it can never go below zero. Every key has a
//! TTL (claims and locks their own, sessions their expiry plus
//! [`EXPIRED_SESSION_GRACE`](super::EXPIRED_SESSION_GRACE),
//! settlement records theirs), so the store never grows without bound.

use std::fmt;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script, Value as RedisValue};

use super::codec::{settlement_from, settlement_json};
use super::{
    EXPIRED_SESSION_GRACE, LockToken, SessionRecord, SettlementRecord, SpendOutcome, Store,
    StoreError,
};
use crate::BoxFuture;
use crate::wire::{EncodedReceipt, Timestamp};

const UNLOCK: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0";

const CREATE_SESSION: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], 'scope', ARGV[1], 'route', ARGV[2], 'grants', ARGV[3],
  'remaining', ARGV[4], 'expires_at', ARGV[5], 'receipt', ARGV[6])
redis.call('PEXPIREAT', KEYS[1], ARGV[7])
return 1";

/// Returns `{status}`: 2 exhausted, 3 expired, 4 not found, 5 scope
/// mismatch; or, spent, `{1, scope, route, grants, remaining, expires_at,
/// receipt}` (one round trip).
const SPEND_SESSION: &str = r"
local s = redis.call('HMGET', KEYS[1], 'scope', 'remaining', 'expires_at', 'route', 'grants', 'receipt')
if not s[1] then
  return {4}
end
if s[1] ~= ARGV[1] then
  return {5}
end
if tonumber(s[3]) <= tonumber(ARGV[2]) then
  return {3}
end
if tonumber(s[2]) <= 0 then
  return {2}
end
local left = redis.call('HINCRBY', KEYS[1], 'remaining', -1)
return {1, s[1], s[4], s[5], tostring(left), s[3], s[6]}";

const END_SESSION: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], 'remaining', 0)
return 1";

/// The gate's store in Redis.
///
/// ```no_run
/// # async fn demo() -> Result<(), mpp_runtime::StoreError> {
/// use mpp_runtime::store::RedisStore;
/// let store = RedisStore::connect("redis://127.0.0.1:6379", "myshop:").await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
    prefix: String,
    scripts: std::sync::Arc<Scripts>,
}

/// The Lua scripts, hashed once (`EVALSHA`, loaded on first use).
struct Scripts {
    unlock: Script,
    create_session: Script,
    spend_session: Script,
    end_session: Script,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn failed(error: redis::RedisError) -> StoreError {
    StoreError::new(format!("redis: {error}"))
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

impl RedisStore {
    /// Connects to `url` (`redis://…`, `rediss://…`); every key starts with
    /// `prefix` (give each application, or each test run, its own). Each
    /// command times out after 2 seconds, so an outage fails requests
    /// closed (503) instead of hanging them.
    pub async fn connect(url: &str, prefix: impl Into<String>) -> Result<Self, StoreError> {
        let client = redis::Client::open(url)
            .map_err(|e| StoreError::new(format!("invalid Redis URL: {e}")))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(1);
        let connection = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(failed)?;
        Ok(Self {
            connection,
            prefix: prefix.into(),
            scripts: std::sync::Arc::new(Scripts {
                unlock: Script::new(UNLOCK),
                create_session: Script::new(CREATE_SESSION),
                spend_session: Script::new(SPEND_SESSION),
                end_session: Script::new(END_SESSION),
            }),
        })
    }

    fn key(&self, kind: &str, id: &str) -> String {
        format!("{}{kind}:{id}", self.prefix)
    }

    fn connection(&self) -> ConnectionManager {
        self.connection.clone()
    }
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn session_from(id: &str, fields: &[(String, String)]) -> Result<SessionRecord, StoreError> {
    let corrupt = || {
        StoreError::new(format!(
            "redis: session record {} is corrupt",
            crate::wire::redacted(id)
        ))
    };
    let number = |name: &str| -> Result<u64, StoreError> {
        field(fields, name)
            .and_then(|v| v.parse().ok())
            .ok_or_else(corrupt)
    };
    let small = |name: &str| -> Result<u32, StoreError> {
        u32::try_from(number(name)?).map_err(|_| corrupt())
    };
    Ok(SessionRecord {
        id: id.to_owned(),
        scope: field(fields, "scope").ok_or_else(corrupt)?.to_owned(),
        route: field(fields, "route").ok_or_else(corrupt)?.to_owned(),
        grants: small("grants")?,
        remaining: small("remaining")?,
        expires_at: Timestamp::from_unix(number("expires_at")?),
        receipt: EncodedReceipt::parse(field(fields, "receipt").ok_or_else(corrupt)?)
            .map_err(|_| corrupt())?,
    })
}

impl Store for RedisStore {
    fn claim<'a>(&'a self, key: &'a str, ttl: Duration) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let set: Option<String> = redis::cmd("SET")
                .arg(self.key("claim", key))
                .arg(1)
                .arg("NX")
                .arg("PX")
                .arg(millis(ttl))
                .query_async(&mut self.connection())
                .await
                .map_err(failed)?;
            Ok(set.is_some())
        })
    }

    fn is_claimed<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            self.connection()
                .exists(self.key("claim", key))
                .await
                .map_err(failed)
        })
    }

    fn lock<'a>(
        &'a self,
        key: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Option<LockToken>, StoreError>> {
        Box::pin(async move {
            let token = LockToken::random();
            let set: Option<String> = redis::cmd("SET")
                .arg(self.key("lock", key))
                .arg(token.0.to_string())
                .arg("NX")
                .arg("PX")
                .arg(millis(ttl))
                .query_async(&mut self.connection())
                .await
                .map_err(failed)?;
            Ok(set.map(|_| token))
        })
    }

    fn unlock<'a>(
        &'a self,
        key: &'a str,
        token: LockToken,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let _: i64 = self
                .scripts
                .unlock
                .key(self.key("lock", key))
                .arg(token.0.to_string())
                .invoke_async(&mut self.connection())
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
            let expire_at_ms = session
                .expires_at
                .unix()
                .saturating_add(EXPIRED_SESSION_GRACE.as_secs())
                .saturating_mul(1000);
            let created: i64 = self
                .scripts
                .create_session
                .key(self.key("session", &session.id))
                .arg(&session.scope)
                .arg(&session.route)
                .arg(session.grants)
                .arg(session.remaining)
                .arg(session.expires_at.unix())
                .arg(session.receipt.header())
                .arg(expire_at_ms)
                .invoke_async(&mut self.connection())
                .await
                .map_err(failed)?;
            if created == 1 {
                Ok(())
            } else {
                Err(StoreError::new(
                    "redis: a session with this id already exists",
                ))
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
            let key = self.key("session", id);
            let answer: Vec<RedisValue> = self
                .scripts
                .spend_session
                .key(&key)
                .arg(scope)
                .arg(now.unix())
                .invoke_async(&mut self.connection())
                .await
                .map_err(failed)?;
            let status = match answer.first() {
                Some(RedisValue::Int(status)) => *status,
                _ => return Err(StoreError::new("redis: unexpected spend answer")),
            };
            Ok(match status {
                1 => {
                    let text = |i: usize| -> Result<String, StoreError> {
                        match answer.get(i) {
                            Some(RedisValue::BulkString(bytes)) => {
                                Ok(String::from_utf8_lossy(bytes).into_owned())
                            }
                            _ => Err(StoreError::new("redis: unexpected spend answer")),
                        }
                    };
                    let fields = [
                        ("scope", text(1)?),
                        ("route", text(2)?),
                        ("grants", text(3)?),
                        ("remaining", text(4)?),
                        ("expires_at", text(5)?),
                        ("receipt", text(6)?),
                    ]
                    .map(|(k, v)| (k.to_owned(), v));
                    SpendOutcome::Spent(session_from(id, &fields)?)
                }
                2 => SpendOutcome::Exhausted,
                3 => SpendOutcome::Expired,
                4 => SpendOutcome::NotFound,
                5 => SpendOutcome::ScopeMismatch,
                other => {
                    return Err(StoreError::new(format!(
                        "redis: unexpected spend answer {other}"
                    )));
                }
            })
        })
    }

    fn session<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<SessionRecord>, StoreError>> {
        Box::pin(async move {
            let fields: Vec<(String, String)> = self
                .connection()
                .hgetall(self.key("session", id))
                .await
                .map_err(failed)?;
            if fields.is_empty() {
                return Ok(None);
            }
            session_from(id, &fields).map(Some)
        })
    }

    fn end_session<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let ended: i64 = self
                .scripts
                .end_session
                .key(self.key("session", id))
                .invoke_async(&mut self.connection())
                .await
                .map_err(failed)?;
            Ok(ended == 1)
        })
    }

    fn put_settlement(
        &self,
        record: SettlementRecord,
        ttl: Duration,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let _: RedisValue = redis::cmd("SET")
                .arg(self.key("settlement", &record.reference))
                .arg(settlement_json(&record))
                .arg("PX")
                .arg(millis(ttl))
                .query_async(&mut self.connection())
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
            let text: Option<String> = self
                .connection()
                .get(self.key("settlement", reference))
                .await
                .map_err(failed)?;
            text.as_deref().map(settlement_from).transpose()
        })
    }
}
