//! Finding the payment in a receipt: a TIP-20 `TransferWithMemo` log of the
//! challenge's token, to its recipient, for exactly its amount, whose memo
//! binds the challenge.

use alloy::primitives::{Address, B256, U256};
use alloy::sol;
use alloy::sol_types::SolEvent;

use super::memo;
use crate::rails::chain::ChainLog;

sol! {
    /// TIP-20's transfer event.
    event Transfer(address indexed from, address indexed to, uint256 amount);
    /// TIP-20's transfer-with-memo event.
    event TransferWithMemo(address indexed from, address indexed to, uint256 amount, bytes32 indexed memo);
    /// TIP-20's memo transfer.
    function transferWithMemo(address to, uint256 amount, bytes32 memo) external returns (bool);
    /// Plain ERC-20 transfer.
    function transfer(address to, uint256 amount) external returns (bool);
}

/// What a challenge asks to be paid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected<'a> {
    /// The TIP-20 token.
    pub token: Address,
    /// Who must be paid.
    pub recipient: Address,
    /// Exactly how much, in base units.
    pub amount: U256,
    /// The server's realm (bound by the memo).
    pub realm: &'a str,
    /// The challenge's id (bound by the memo).
    pub challenge_id: &'a str,
}

/// Why no log pays the challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mismatch {
    /// No transfer of the token to the recipient at all.
    NoTransfer,
    /// A transfer to the recipient, but of another amount.
    WrongAmount,
    /// The right transfer without a memo (a plain `transfer`).
    NoMemo,
    /// The right transfer, with a memo that is not for this challenge.
    ForeignMemo,
    /// A call that is not a transfer of the challenge's token.
    ForeignCall,
}

impl Mismatch {
    /// A sentence for the payer.
    pub fn explain(self) -> &'static str {
        match self {
            Self::NoTransfer => {
                "the transaction does not transfer the challenge's token to its recipient"
            }
            Self::WrongAmount => "the transaction transfers another amount than the challenge's",
            Self::NoMemo => {
                "the transfer carries no memo; pay with `transferWithMemo` and the challenge's attribution memo"
            }
            Self::ForeignMemo => "the transfer's memo is not bound to this challenge and realm",
            Self::ForeignCall => {
                "the transaction may only call `transfer`/`transferWithMemo` of the challenge's token, without value"
            }
        }
    }
}

fn topic_address(topic: &B256) -> Address {
    Address::from_slice(&topic[12..])
}

/// The payer of the first log that pays `expected` (from `sender`, when
/// known), or the closest reason none does.
pub fn find_payment(
    logs: &[ChainLog],
    expected: &Expected<'_>,
    sender: Option<Address>,
) -> Result<Address, Mismatch> {
    let mut closest = Mismatch::NoTransfer;
    for log in logs.iter().filter(|l| l.address == expected.token) {
        let Some(signature) = log.topics.first() else {
            continue;
        };
        let with_memo = *signature == TransferWithMemo::SIGNATURE_HASH;
        if !with_memo && *signature != Transfer::SIGNATURE_HASH {
            continue;
        }
        let expected_topics = if with_memo { 4 } else { 3 };
        if log.topics.len() != expected_topics || log.data.len() != 32 {
            continue;
        }
        if topic_address(&log.topics[2]) != expected.recipient
            || sender.is_some_and(|s| topic_address(&log.topics[1]) != s)
        {
            continue;
        }
        if U256::from_be_slice(&log.data) != expected.amount {
            closest = closest.max_with(Mismatch::WrongAmount);
            continue;
        }
        if !with_memo {
            closest = closest.max_with(Mismatch::NoMemo);
            continue;
        }
        if memo::binds(&log.topics[3], expected.realm, expected.challenge_id) {
            return Ok(topic_address(&log.topics[1]));
        }
        closest = closest.max_with(Mismatch::ForeignMemo);
    }
    Err(closest)
}

impl Mismatch {
    fn rank(self) -> u8 {
        match self {
            Self::NoTransfer => 0,
            Self::WrongAmount => 1,
            Self::NoMemo => 2,
            Self::ForeignMemo => 3,
            Self::ForeignCall => 4,
        }
    }

    pub(crate) fn max_with(self, other: Self) -> Self {
        if other.rank() > self.rank() {
            other
        } else {
            self
        }
    }
}
