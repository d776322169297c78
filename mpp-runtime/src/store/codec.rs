//! How the shared stores write records as text: settlement records as JSON,
//! receipts as their `Payment-Receipt` header value.

use super::{PaymentStatus, SettlementRecord, StoreError};
use crate::wire::Timestamp;

/// A settlement record as JSON.
pub(crate) fn settlement_json(record: &SettlementRecord) -> String {
    serde_json::json!({
        "reference": record.reference,
        "method": record.method,
        "route": record.route,
        "challenge_id": record.challenge_id,
        "amount": record.amount,
        "currency": record.currency,
        "status": record.status.as_str(),
        "amount_refunded": record.amount_refunded,
        "session": record.session,
        "created_at": record.created_at.unix(),
        "updated_at": record.updated_at.unix(),
    })
    .to_string()
}

/// A settlement record from [`settlement_json`].
pub(crate) fn settlement_from(text: &str) -> Result<SettlementRecord, StoreError> {
    let corrupt = || StoreError::new("a stored settlement record is corrupt");
    let v: serde_json::Value = serde_json::from_str(text).map_err(|_| corrupt())?;
    let s = |name: &str| v[name].as_str().map(str::to_owned).ok_or_else(corrupt);
    let opt = |name: &str| v[name].as_str().map(str::to_owned);
    let t = |name: &str| {
        v[name]
            .as_u64()
            .map(Timestamp::from_unix)
            .ok_or_else(corrupt)
    };
    Ok(SettlementRecord {
        reference: s("reference")?,
        method: s("method")?,
        route: s("route")?,
        challenge_id: s("challenge_id")?,
        amount: s("amount")?,
        currency: s("currency")?,
        status: PaymentStatus::parse(&s("status")?).ok_or_else(corrupt)?,
        amount_refunded: opt("amount_refunded"),
        session: opt("session"),
        created_at: t("created_at")?,
        updated_at: t("updated_at")?,
    })
}
