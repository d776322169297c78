//! Settlement records: what the gate remembers about each payment it took,
//! so provider notifications (webhooks) can be reconciled with it.

use std::fmt;

use crate::wire::Timestamp;

/// Where a payment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PaymentStatus {
    /// Reserved, not yet captured (`capture = "after"` while the handler runs).
    Authorized,
    /// Taken.
    Succeeded,
    /// The provider reported the payment failed.
    Failed,
    /// The authorization was released (or the provider canceled the payment).
    Canceled,
    /// Part of the payment was refunded.
    PartiallyRefunded,
    /// All of the payment was refunded.
    Refunded,
    /// The payer disputed the payment.
    Disputed,
}

impl PaymentStatus {
    /// The lowercase name (`succeeded`, `partially_refunded`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Authorized => "authorized",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
            Self::PartiallyRefunded => "partially_refunded",
            Self::Refunded => "refunded",
            Self::Disputed => "disputed",
        }
    }

    /// Parses [`PaymentStatus::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "authorized" => Self::Authorized,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            "canceled" => Self::Canceled,
            "partially_refunded" => Self::PartiallyRefunded,
            "refunded" => Self::Refunded,
            "disputed" => Self::Disputed,
            _ => return None,
        })
    }

    /// How far along a payment's life this status is. Notifications can
    /// arrive out of order; a record never moves back to an earlier stage.
    pub(crate) const fn stage(self) -> u8 {
        match self {
            Self::Authorized => 0,
            Self::Failed | Self::Canceled => 1,
            Self::Succeeded => 2,
            Self::PartiallyRefunded => 3,
            Self::Refunded => 4,
            Self::Disputed => 5,
        }
    }
}

impl fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One payment the gate took (or reserved), keyed by the provider's
/// reference. `Debug` redacts the session id (a bearer token).
#[derive(Clone, PartialEq, Eq)]
pub struct SettlementRecord {
    /// The provider's reference (`pi_…`, a transaction hash).
    pub reference: String,
    /// The payment method.
    pub method: String,
    /// The route that sold access.
    pub route: String,
    /// The id of the challenge that was paid.
    pub challenge_id: String,
    /// The amount, in the challenge's units.
    pub amount: String,
    /// The currency, as in the challenge.
    pub currency: String,
    /// Where the payment stands.
    pub status: PaymentStatus,
    /// How much was refunded, in the challenge's units, if anything.
    pub amount_refunded: Option<String>,
    /// The metered session the payment bought, if any.
    pub session: Option<String>,
    /// When the gate took the payment.
    pub created_at: Timestamp,
    /// When the record last changed.
    pub updated_at: Timestamp,
}

impl fmt::Debug for SettlementRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SettlementRecord")
            .field("reference", &self.reference)
            .field("method", &self.method)
            .field("route", &self.route)
            .field("challenge_id", &self.challenge_id)
            .field("amount", &self.amount)
            .field("currency", &self.currency)
            .field("status", &self.status)
            .field("amount_refunded", &self.amount_refunded)
            .field(
                "session",
                &self.session.as_deref().map(crate::wire::redacted),
            )
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_and_only_move_forward() {
        let all = [
            PaymentStatus::Authorized,
            PaymentStatus::Succeeded,
            PaymentStatus::Failed,
            PaymentStatus::Canceled,
            PaymentStatus::PartiallyRefunded,
            PaymentStatus::Refunded,
            PaymentStatus::Disputed,
        ];
        for status in all {
            assert_eq!(PaymentStatus::parse(status.as_str()), Some(status));
        }
        assert!(PaymentStatus::Refunded.stage() > PaymentStatus::Succeeded.stage());
        assert!(PaymentStatus::Succeeded.stage() > PaymentStatus::Authorized.stage());
        assert_eq!(PaymentStatus::parse("paid"), None);
    }
}
