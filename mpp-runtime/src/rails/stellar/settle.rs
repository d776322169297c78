//! Settling a Stellar credential: a complete signed transaction (pull), an
//! authorization the server sponsors (sponsored pull), or a submitted
//! transaction's hash (push).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use serde_json::Value;
use serde_json::json;
use stellar_xdr::{
    AccountId, ContractDataDurability, DecoratedSignature, LedgerEntryData, LedgerKey,
    LedgerKeyAccount, LedgerKeyContractData, Limits, Memo, MuxedAccount, OperationBody,
    Preconditions, PublicKey, ReadXdr, ScNonceKey, ScSymbol, ScVal, SequenceNumber, Signature,
    SignatureHint, SorobanCredentials, SorobanTransactionData, TimeBounds, TimePoint, Transaction,
    TransactionEnvelope, TransactionExt, TransactionV1Envelope, Uint256, VecM, WriteXdr,
};

use super::keys::{self, Keypair};
use super::rpc::{RpcError, Simulation, TransactionInfo};
use super::transfer::{
    self, Envelope, Expected, Funding, TransferCall, check_authorization, check_expiration,
    check_movements, check_time_bounds, find_transfer, from_hex, max_ledger, movements, muxed_key,
};
use super::{InFlight, METHOD, StellarRail};
use crate::rail::{SettleError, SettleRequest, Settlement};
use crate::wire::Timestamp;

/// How long a consumed hash or authorization stays in the proof ledger.
const PROOF_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// The oldest an on-chain payment may be to pay a challenge: well inside
/// [`PROOF_TTL`], so a hash is always remembered for as long as it could
/// be presented.
const MAX_PAYMENT_AGE: u64 = 24 * 3600;

/// The inclusion fee of a sponsored transaction (stroops), on top of its
/// resource fee.
const INCLUSION_FEE: i64 = 100;

/// How long a sponsored transaction is valid for (never beyond the
/// challenge's expiry).
const SPONSORED_TX_SECONDS: u64 = 60;

/// Clock skew allowed between this server and the network's ledger close
/// times when anchoring a payment to its challenge: a transaction included
/// up to this long before the challenge was issued (by this server's
/// clock) still counts as made for it.
const ISSUE_SKEW_SECONDS: u64 = 30;

/// Slack after a sponsored transaction's `maxTime` before it is certain
/// never to be included.
const CLOSE_SLACK_SECONDS: u64 = 30;

/// How far back (about a day of ledgers) the transaction that used a
/// payer's authorization is looked for.
const RECOVERY_LOOKBACK_LEDGERS: u32 = 17_280;

fn refuse(detail: impl Into<String>) -> SettleError {
    SettleError::verification_failed(detail)
}

/// One submission lock per fee account in this process: the network keeps
/// one pending transaction per source account, and sequence numbers must
/// not collide.
type SponsorLocks = Mutex<HashMap<[u8; 32], Arc<tokio::sync::Mutex<()>>>>;

fn sponsor_lock(account: [u8; 32]) -> Arc<tokio::sync::Mutex<()>> {
    static LOCKS: OnceLock<SponsorLocks> = OnceLock::new();
    let locks = LOCKS.get_or_init(Mutex::default);
    let mut locks = locks.lock().unwrap_or_else(PoisonError::into_inner);
    locks.entry(account).or_default().clone()
}

/// The string field `name` of a payload.
fn field<'a>(request: &'a SettleRequest, name: &str) -> Result<&'a str, SettleError> {
    request
        .payload
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| SettleError::invalid_payload(format!("the payload has no string `{name}`")))
}

/// The first line of an RPC error message, bounded.
fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    line.chars().take(300).collect()
}

impl StellarRail {
    fn now(&self) -> u64 {
        self.clock.now().unix()
    }

    /// What the request asks for.
    fn expected(&self, request: &SettleRequest) -> Result<Expected, SettleError> {
        let amount = request
            .request
            .str_field("amount")
            .and_then(|a| a.parse::<i128>().ok())
            .ok_or_else(|| SettleError::internal("the challenge request has no integer amount"))?;
        Ok(Expected {
            token: self.token,
            recipient: self.recipient.clone(),
            amount,
            network_id: self.network.id(),
        })
    }

    /// The challenge's expiry (unix seconds).
    fn expires(request: &SettleRequest) -> Result<u64, SettleError> {
        request
            .challenge
            .expires
            .as_deref()
            .and_then(|e| Timestamp::parse_rfc3339(e).ok())
            .map(Timestamp::unix)
            .ok_or_else(|| SettleError::internal("the challenge has no expiry"))
    }

    /// The payer the credential's `source` names
    /// (`did:pkh:stellar:<network>:G…`), if any.
    fn source_payer(&self, source: Option<&Value>) -> Result<Option<[u8; 32]>, SettleError> {
        let Some(source) = source else {
            return Ok(None);
        };
        let prefix = format!("did:pkh:{}:", self.network.caip2());
        let bad = || {
            refuse(format!(
                "the credential's source must be `{prefix}<G… account>`"
            ))
        };
        let account = source
            .as_str()
            .and_then(|s| s.strip_prefix(&prefix))
            .ok_or_else(bad)?;
        keys::parse_account(account).map(Some).map_err(|_| bad())
    }

    fn check_source(
        &self,
        request: &SettleRequest,
        transfer: &TransferCall<'_>,
    ) -> Result<(), SettleError> {
        match self.source_payer(request.source.as_ref())? {
            Some(claimed) if claimed != transfer.from => Err(refuse(format!(
                "the credential's source {} is not the transfer's payer {}",
                keys::account_strkey(&claimed),
                transfer.payer()
            ))),
            _ => Ok(()),
        }
    }

    /// Checks once that the RPC serves the configured network.
    async fn ensure_network(&self) -> Result<(), SettleError> {
        self.network_checked
            .get_or_try_init(|| async {
                let info = self
                    .rpc
                    .network()
                    .await
                    .map_err(|e| e.into_settle_error())?;
                if info.passphrase == self.network.passphrase() {
                    Ok(())
                } else {
                    tracing::error!(
                        served = %info.passphrase,
                        configured = self.network.caip2(),
                        "STELLAR_RPC_URL serves another network than STELLAR_NETWORK"
                    );
                    Err(SettleError::internal(format!(
                        "this server's Stellar RPC serves the network \"{}\", not {}; the operator must fix STELLAR_RPC_URL or STELLAR_NETWORK",
                        info.passphrase,
                        self.network.caip2()
                    )))
                }
            })
            .await
            .map(|_| ())
    }

    /// The ledger window an authorization must expire in.
    async fn ledger_window(&self, expires: u64) -> Result<(u32, u32), SettleError> {
        let latest = self
            .rpc
            .latest_ledger()
            .await
            .map_err(|e| e.into_settle_error())?;
        Ok((
            latest.sequence,
            max_ledger(latest.sequence, self.now(), expires),
        ))
    }

    fn binding(key: &str, request: &SettleRequest) -> String {
        format!("{key}@{}", request.challenge.id)
    }

    /// Refuses a proof that already paid another challenge.
    async fn refuse_used(&self, request: &SettleRequest, key: &str) -> Result<(), SettleError> {
        let store = |e| SettleError::internal(format!("the payment store is unavailable: {e}"));
        if !request.proofs.is_used(METHOD, key).await.map_err(store)? {
            return Ok(());
        }
        // This very challenge consumed it in an earlier attempt whose answer
        // was lost: settling again is idempotent.
        if request
            .proofs
            .is_used(METHOD, &Self::binding(key, request))
            .await
            .map_err(store)?
        {
            return Ok(());
        }
        Err(refuse(format!(
            "{key} has already paid for another request"
        )))
    }

    /// Consumes proofs for this challenge; refuses any already consumed by
    /// another challenge.
    async fn consume(&self, request: &SettleRequest, proofs: &[String]) -> Result<(), SettleError> {
        let store = |e| {
            SettleError::internal(format!(
                "the payment went through but could not be recorded ({e}); retry the same credential"
            ))
        };
        for key in proofs {
            let binding = Self::binding(key, request);
            let ours = request
                .proofs
                .is_used(METHOD, &binding)
                .await
                .map_err(store)?;
            let fresh = request
                .proofs
                .consume(METHOD, key, PROOF_TTL)
                .await
                .map_err(store)?;
            if fresh {
                request
                    .proofs
                    .consume(METHOD, &binding, PROOF_TTL)
                    .await
                    .map_err(store)?;
            } else if !ours {
                return Err(refuse(format!(
                    "{key} has already paid for another request"
                )));
            }
        }
        Ok(())
    }

    /// Checks a simulation: it succeeded, needs no restore, and the only
    /// token movement is the payment.
    fn check_simulation(
        simulation: &Simulation,
        expected: &Expected,
        from: &[u8; 32],
    ) -> Result<(), SettleError> {
        if let Some(error) = &simulation.error {
            return Err(refuse(format!(
                "the payment would fail on the network: {}",
                first_line(error)
            )));
        }
        if simulation.restore_preamble.is_some() {
            return Err(refuse(
                "some ledger entries the payment needs are archived (the payer's balance?); restore them, then pay again",
            ));
        }
        let found = movements(&simulation.events).map_err(SettleError::internal)?;
        check_movements(&found, expected, from)
    }

    /// Polls `getTransaction` until the transaction succeeds or fails.
    async fn await_final(&self, hash: &str) -> Result<TransactionInfo, SettleError> {
        let attempts = self.config.poll_attempts.max(1);
        for attempt in 0..attempts {
            if attempt > 0 {
                tokio::time::sleep(self.config.poll_interval).await;
            }
            let info = self
                .rpc
                .transaction(hash)
                .await
                .map_err(|e| e.into_settle_error())?;
            match info.status.as_str() {
                "SUCCESS" => return Ok(info),
                "FAILED" => return Err(Self::failed(hash, &info)),
                _ => {}
            }
        }
        Err(SettleError::internal(format!(
            "transaction {hash} is not confirmed yet; retry the same credential shortly"
        )))
    }

    fn failed(hash: &str, info: &TransactionInfo) -> SettleError {
        let code = info
            .result_xdr
            .as_deref()
            .and_then(transfer::result_code)
            .unwrap_or_else(|| "unknown result".to_owned());
        refuse(format!("transaction {hash} failed on the network ({code})"))
    }

    /// Checks a successful on-chain transaction pays the challenge, and
    /// consumes its proofs. `hash` is the one it was looked up by: its own,
    /// or the inner transaction's when the network holds it wrapped in a
    /// fee bump (both hashes are then claimed, and the receipt names the
    /// fee bump's, the one the network knows it by).
    async fn accept(
        &self,
        request: &SettleRequest,
        expected: &Expected,
        info: &TransactionInfo,
        hash: &str,
        extra_proofs: Vec<String>,
    ) -> Result<Settlement, SettleError> {
        let envelope_xdr = info.envelope_xdr.as_deref().ok_or_else(|| {
            SettleError::internal(format!(
                "the Stellar RPC returned transaction {hash} without its envelope"
            ))
        })?;
        let envelope = Envelope::decode_trusted(envelope_xdr, expected.network_id)
            .map_err(SettleError::internal)?;
        let outer = envelope.hash_hex();
        let inner = transfer::to_hex(&envelope.inner_hash);
        if outer != hash && inner != hash {
            return Err(SettleError::internal(format!(
                "the Stellar RPC returned another transaction ({outer}) for {hash}"
            )));
        }
        let transfer = find_transfer(envelope.transaction(), expected)?;
        self.check_source(request, &transfer)?;
        let now = self.now();
        let created = u64::try_from(info.created_at).unwrap_or(0);
        if created.saturating_add(MAX_PAYMENT_AGE) < now {
            return Err(refuse(format!(
                "transaction {outer} was included more than a day ago; pay this challenge with a new transaction"
            )));
        }
        // Included before the gate issued the challenge (beyond the clock
        // skew allowed): not made for it.
        let issued = request.issued_at.unix();
        if created.saturating_add(ISSUE_SKEW_SECONDS) < issued {
            return Err(refuse(format!(
                "transaction {outer} was included at {created} (unix time), before this challenge was issued (about {issued}); a payment made before its challenge cannot pay it: pay this challenge with a new transaction"
            )));
        }
        let mut proofs = vec![outer.clone()];
        if inner != outer {
            proofs.push(inner);
        }
        proofs.extend(extra_proofs);
        for key in &proofs {
            self.refuse_used(request, key).await?;
        }
        self.consume(request, &proofs).await?;
        let mut settlement = Settlement::new(
            &outer,
            request.request.str_field("amount").unwrap_or_default(),
            request.request.str_field("currency").unwrap_or_default(),
        );
        settlement.payer = Some(transfer.payer());
        Ok(settlement)
    }

    /// Pull mode: a transaction in the credential.
    pub(super) async fn settle_pull(
        &self,
        request: &SettleRequest,
    ) -> Result<Settlement, SettleError> {
        let text = field(request, "transaction")?;
        let expected = self.expected(request)?;
        let envelope = Envelope::decode(text, expected.network_id)?;
        let tx = envelope.transaction();
        let transfer = find_transfer(tx, &expected)?;
        self.check_source(request, &transfer)?;
        let source = muxed_key(&tx.source_account);
        if let Some(sponsor) = &self.fee_payer {
            let sponsor = sponsor.public_bytes();
            let op_source = transfer.operation.source_account.as_ref().map(muxed_key);
            if source == sponsor || op_source == Some(sponsor) {
                return Err(refuse(
                    "the transaction names this server's fee account as a source",
                ));
            }
        }
        if source == [0; 32] {
            return match &self.fee_payer {
                Some(sponsor) => {
                    self.settle_sponsored(request, &expected, &envelope, sponsor)
                        .await
                }
                None => Err(refuse(
                    "the transaction's source is the all-zeros account (a sponsored payment), but this server does not sponsor fees; sign a complete transaction",
                )),
            };
        }
        self.settle_signed(request, &expected, &envelope, text)
            .await
    }

    /// A complete transaction signed by the payer: checked, simulated and
    /// submitted unchanged.
    async fn settle_signed(
        &self,
        request: &SettleRequest,
        expected: &Expected,
        envelope: &Envelope,
        text: &str,
    ) -> Result<Settlement, SettleError> {
        let tx = envelope.transaction();
        let transfer = find_transfer(tx, expected)?;
        envelope.check_signed()?;
        let expires = Self::expires(request)?;
        check_time_bounds(tx, expires)?;
        let auth = check_authorization(&transfer, tx, Funding::Payer, expected.network_id)?;
        self.ensure_network().await?;
        if let Some(auth) = auth {
            let (latest, max) = self.ledger_window(expires).await?;
            check_expiration(&auth, latest, max)?;
        }
        let hash = envelope.hash_hex();
        self.refuse_used(request, &hash).await?;
        let inner = transfer::to_hex(&envelope.inner_hash);
        if inner != hash {
            self.refuse_used(request, &inner).await?;
        }

        // A retry whose submission already went through finds it instead
        // of submitting again.
        let known = self
            .rpc
            .transaction(&hash)
            .await
            .map_err(|e| e.into_settle_error())?;
        let info = match known.status.as_str() {
            "SUCCESS" => known,
            "FAILED" => return Err(Self::failed(&hash, &known)),
            _ => {
                let simulation = self
                    .rpc
                    .simulate(text)
                    .await
                    .map_err(|e| e.into_settle_error())?;
                Self::check_simulation(&simulation, expected, &transfer.from)?;
                self.submit(text, &hash, false).await?;
                self.await_final(&hash).await?
            }
        };
        self.accept(request, expected, &info, &hash, Vec::new())
            .await
    }

    /// `sendTransaction`, its answer mapped: the payer's transaction refused
    /// is the payer's to fix; a sponsored one refused for the fee account's
    /// reasons is the server's.
    async fn submit(&self, text: &str, hash: &str, sponsored: bool) -> Result<(), SettleError> {
        let sent = self
            .rpc
            .send(text)
            .await
            .map_err(|e| e.into_settle_error())?;
        if sent.hash != hash {
            return Err(SettleError::internal(format!(
                "the Stellar RPC hashed transaction {hash} as {}; is STELLAR_RPC_URL on {}?",
                sent.hash,
                self.network.caip2()
            )));
        }
        match sent.status.as_str() {
            "PENDING" | "DUPLICATE" => Ok(()),
            "TRY_AGAIN_LATER" => Err(SettleError::internal(
                "the Stellar network asked to try again later; retry the same credential shortly",
            )),
            "ERROR" => {
                let code = sent
                    .error_result_xdr
                    .as_deref()
                    .and_then(transfer::result_code)
                    .unwrap_or_else(|| "no result code".to_owned());
                let server_side = [
                    "txBAD_SEQ",
                    "txINSUFFICIENT_BALANCE",
                    "txNO_ACCOUNT",
                    "txINSUFFICIENT_FEE",
                ]
                .iter()
                .any(|c| code == *c);
                if sponsored && server_side {
                    tracing::error!(
                        code,
                        "a sponsored Stellar transaction was refused for the fee account's reasons"
                    );
                    Err(SettleError::internal(format!(
                        "the network refused this server's sponsored transaction ({code}); retry the same credential shortly"
                    )))
                } else {
                    Err(refuse(format!(
                        "the network refused the transaction ({code})"
                    )))
                }
            }
            other => Err(SettleError::internal(format!(
                "the Stellar RPC answered sendTransaction with `{other}`"
            ))),
        }
    }

    /// Sponsored pull mode: the payer signed an authorization entry; the
    /// server's fee account becomes the source, pays the fees and signs.
    async fn settle_sponsored(
        &self,
        request: &SettleRequest,
        expected: &Expected,
        envelope: &Envelope,
        sponsor: &Keypair,
    ) -> Result<Settlement, SettleError> {
        let tx = envelope.transaction();
        let transfer = find_transfer(tx, expected)?;
        if transfer.operation.source_account.is_some() {
            return Err(refuse(
                "a sponsored transaction's operation must not name a source account",
            ));
        }
        let funding = Funding::Sponsored {
            sponsor: sponsor.public_bytes(),
        };
        let Some(auth) = check_authorization(&transfer, tx, funding, expected.network_id)? else {
            return Err(refuse(
                "a sponsored payment needs the payer's signed address authorization",
            ));
        };
        let expires = Self::expires(request)?;
        self.ensure_network().await?;
        let (latest, max) = self.ledger_window(expires).await?;
        check_expiration(&auth, latest, max)?;
        let payer = transfer.payer();
        let auth_key = format!("auth:{payer}:{}", auth.nonce);
        self.refuse_used(request, &auth_key).await?;

        let slot = (payer, auth.nonce);
        if let Some(previous) = self.in_flight_get(&slot)
            && let Some(settled) = self
                .resume(request, expected, &previous, &slot, &auth_key)
                .await?
        {
            return Ok(settled);
        }
        // The authorization was already used on the network (by this
        // server in another process, or by anyone): the transfer happened;
        // find its transaction instead of paying again.
        if self.authorization_used(transfer.from, auth.nonce).await? {
            return self
                .recover(
                    request,
                    expected,
                    transfer.from,
                    auth.nonce,
                    latest,
                    &auth_key,
                )
                .await;
        }

        let lock = sponsor_lock(sponsor.public_bytes());
        let _held = lock.lock().await;
        let (signed, hash, max_time) = self
            .sponsored_transaction(expected, &transfer, sponsor, expires)
            .await?;
        self.in_flight_set(
            slot.clone(),
            Some(InFlight {
                envelope: signed.clone(),
                hash: hash.clone(),
                max_time,
            }),
        );
        if let Err(e) = self.submit(&signed, &hash, true).await {
            // Refused for good: forget it. Otherwise (an outage, "try again
            // later") it may yet be accepted; a retry resumes it.
            if e.kind != crate::rail::SettleErrorKind::Internal {
                self.in_flight_set(slot, None);
            }
            return Err(e);
        }
        match self.await_final(&hash).await {
            Ok(info) => {
                self.in_flight_set(slot, None);
                self.accept(request, expected, &info, &hash, vec![auth_key])
                    .await
            }
            Err(e) if e.kind == crate::rail::SettleErrorKind::Internal => Err(e),
            Err(e) => {
                self.in_flight_set(slot, None);
                // Another transaction may have used the authorization first.
                if self.authorization_used(transfer.from, auth.nonce).await? {
                    return self
                        .recover(
                            request,
                            expected,
                            transfer.from,
                            auth.nonce,
                            latest,
                            &auth_key,
                        )
                        .await;
                }
                Err(e)
            }
        }
    }

    /// Whether the payer's authorization nonce is spent on the network: its
    /// nonce entry exists only once a successful transaction used it.
    async fn authorization_used(&self, payer: [u8; 32], nonce: i64) -> Result<bool, SettleError> {
        let key = LedgerKey::ContractData(LedgerKeyContractData {
            contract: keys::account_address(payer),
            key: ScVal::LedgerKeyNonce(ScNonceKey { nonce }),
            durability: ContractDataDurability::Temporary,
        })
        .to_xdr_base64(Limits::none())
        .map_err(|_| SettleError::internal("cannot encode the authorization's nonce key"))?;
        self.rpc
            .ledger_entry(&key)
            .await
            .map(|entry| entry.is_some())
            .map_err(|e| e.into_settle_error())
    }

    /// Finds the successful transaction that used the payer's authorization
    /// (`payer`, `nonce`) among the token's recent transfers to the
    /// recipient, and accepts it.
    async fn recover(
        &self,
        request: &SettleRequest,
        expected: &Expected,
        payer: [u8; 32],
        nonce: i64,
        latest: u32,
        auth_key: &str,
    ) -> Result<Settlement, SettleError> {
        let encode = |v: &ScVal| {
            v.to_xdr_base64(Limits::none())
                .map_err(|_| SettleError::internal("cannot encode an event topic"))
        };
        let name = ScVal::Symbol(ScSymbol(
            "transfer"
                .try_into()
                .map_err(|_| SettleError::internal("cannot encode an event topic"))?,
        ));
        let name = encode(&name)?;
        let from = encode(&ScVal::Address(keys::account_address(payer)))?;
        let to = encode(&ScVal::Address(expected.recipient.clone()))?;
        // SEP-41 transfers have three topics; SAC transfers (CAP-67) add the
        // asset as a fourth.
        let filters = json!([{
            "type": "contract",
            "contractIds": [keys::contract_strkey(&expected.token)],
            "topics": [[name, from, to], [name, from, to, "*"]],
        }]);
        let start = latest.saturating_sub(RECOVERY_LOOKBACK_LEDGERS).max(1);
        let events = match self.rpc.events(start, filters.clone(), 200).await {
            Ok(events) => events,
            // An RPC that keeps less history refuses the start ledger: look
            // back an hour instead (a retry comes within the challenge's
            // lifetime).
            Err(RpcError::Rejected { .. }) => self
                .rpc
                .events(latest.saturating_sub(720).max(1), filters, 200)
                .await
                .map_err(|e| e.into_settle_error())?,
            Err(e) => return Err(e.into_settle_error()),
        };
        let mut seen = Vec::new();
        for event in events.iter().rev() {
            let hash = event.tx_hash.to_ascii_lowercase();
            if hash.is_empty() || seen.contains(&hash) {
                continue;
            }
            seen.push(hash.clone());
            let info = self
                .rpc
                .transaction(&hash)
                .await
                .map_err(|e| e.into_settle_error())?;
            if info.status != "SUCCESS" {
                continue;
            }
            let Some(envelope) = info
                .envelope_xdr
                .as_deref()
                .and_then(|x| Envelope::decode_trusted(x, expected.network_id).ok())
            else {
                continue;
            };
            if uses_authorization(&envelope, payer, nonce) {
                tracing::info!(
                    hash,
                    "found the transaction that used a sponsored authorization"
                );
                return self
                    .accept(request, expected, &info, &hash, vec![auth_key.to_owned()])
                    .await;
            }
        }
        Err(SettleError::internal(
            "the payer's authorization was used on the network, but its transaction is not found yet; retry the same credential shortly",
        ))
    }

    /// A retry of a sponsored credential whose transaction this process
    /// already submitted: `Some` when it settled, `None` when it can never
    /// land and a new one should be built.
    async fn resume(
        &self,
        request: &SettleRequest,
        expected: &Expected,
        previous: &InFlight,
        slot: &(String, i64),
        auth_key: &str,
    ) -> Result<Option<Settlement>, SettleError> {
        let info = self
            .rpc
            .transaction(&previous.hash)
            .await
            .map_err(|e| e.into_settle_error())?;
        match info.status.as_str() {
            "SUCCESS" => {
                self.in_flight_set(slot.clone(), None);
                self.accept(
                    request,
                    expected,
                    &info,
                    &previous.hash,
                    vec![auth_key.to_owned()],
                )
                .await
                .map(Some)
            }
            "FAILED" => {
                self.in_flight_set(slot.clone(), None);
                Err(Self::failed(&previous.hash, &info))
            }
            _ if self.now() > previous.max_time.saturating_add(CLOSE_SLACK_SECONDS) => {
                self.in_flight_set(slot.clone(), None);
                Ok(None)
            }
            _ => {
                self.submit(&previous.envelope, &previous.hash, true)
                    .await?;
                let info = self.await_final(&previous.hash).await?;
                self.in_flight_set(slot.clone(), None);
                self.accept(
                    request,
                    expected,
                    &info,
                    &previous.hash,
                    vec![auth_key.to_owned()],
                )
                .await
                .map(Some)
            }
        }
    }

    /// Builds, simulates, prices and signs the transaction the fee account
    /// submits for the payer's authorized transfer. Returns it (base64), its
    /// hash and its `maxTime` (at most the challenge's expiry, `expires`).
    async fn sponsored_transaction(
        &self,
        expected: &Expected,
        transfer: &TransferCall<'_>,
        sponsor: &Keypair,
        expires: u64,
    ) -> Result<(String, String, u64), SettleError> {
        let account = sponsor.public_bytes();
        let sequence = self.sponsor_sequence(account).await?;
        // Never valid beyond the challenge, like a payer's own transaction.
        let max_time = self.now().saturating_add(SPONSORED_TX_SECONDS).min(expires);
        let operations = VecM::try_from(vec![transfer.operation.clone()])
            .map_err(|_| SettleError::internal("cannot build the sponsored transaction"))?;
        let mut tx = Transaction {
            source_account: MuxedAccount::Ed25519(Uint256(account)),
            fee: u32::try_from(INCLUSION_FEE).unwrap_or(100),
            seq_num: SequenceNumber(sequence.saturating_add(1)),
            cond: Preconditions::Time(TimeBounds {
                min_time: TimePoint(0),
                max_time: TimePoint(max_time),
            }),
            memo: Memo::None,
            operations,
            ext: TransactionExt::V0,
        };
        // Resources come from the server's own simulation, never from the
        // payer's transaction.
        let unsigned = encode(&tx, Vec::new())?;
        let simulation = self
            .rpc
            .simulate(&unsigned)
            .await
            .map_err(|e| e.into_settle_error())?;
        Self::check_simulation(&simulation, expected, &transfer.from)?;
        let data = simulation.transaction_data.as_deref().ok_or_else(|| {
            SettleError::internal("the Stellar RPC's simulation returned no transactionData")
        })?;
        let data = SorobanTransactionData::from_xdr_base64(
            data,
            Limits {
                depth: 200,
                len: data.len(),
            },
        )
        .map_err(|e| SettleError::internal(format!("unreadable transactionData: {e}")))?;
        let resource_fee = data.resource_fee.max(simulation.min_resource_fee);
        let fee = INCLUSION_FEE.saturating_add(resource_fee);
        if fee > i64::from(self.config.max_fee) {
            return Err(refuse(format!(
                "sponsoring this payment would cost {fee} stroops, more than this server's cap of {} (STELLAR_MAX_FEE)",
                self.config.max_fee
            )));
        }
        tx.fee = u32::try_from(fee).map_err(|_| refuse("the fee does not fit a transaction"))?;
        tx.ext = TransactionExt::V1(data);
        let hash = tx
            .hash(expected.network_id)
            .map_err(|_| SettleError::internal("cannot hash the sponsored transaction"))?;
        let signature = DecoratedSignature {
            hint: SignatureHint(sponsor.hint()),
            signature: Signature(
                sponsor
                    .sign(&hash)
                    .to_vec()
                    .try_into()
                    .map_err(|_| SettleError::internal("cannot encode the signature"))?,
            ),
        };
        let signed = encode(&tx, vec![signature])?;
        Ok((signed, transfer::to_hex(&hash), max_time))
    }

    /// The fee account's current sequence number.
    async fn sponsor_sequence(&self, account: [u8; 32]) -> Result<i64, SettleError> {
        let key = LedgerKey::Account(LedgerKeyAccount {
            account_id: AccountId(PublicKey::PublicKeyTypeEd25519(Uint256(account))),
        })
        .to_xdr_base64(Limits::none())
        .map_err(|_| SettleError::internal("cannot encode the fee account's key"))?;
        let entry = self
            .rpc
            .ledger_entry(&key)
            .await
            .map_err(|e| e.into_settle_error())?;
        let address = keys::account_strkey(&account);
        let Some(entry) = entry else {
            tracing::error!(fee_payer = %address, "the Stellar fee account does not exist; fund it with XLM");
            return Err(SettleError::internal(format!(
                "this server's Stellar fee account {address} does not exist on {}; the operator must fund it",
                self.network.caip2()
            )));
        };
        match LedgerEntryData::from_xdr_base64(
            &entry,
            Limits {
                depth: 200,
                len: entry.len(),
            },
        ) {
            Ok(LedgerEntryData::Account(account)) => Ok(account.seq_num.0),
            _ => Err(SettleError::internal(format!(
                "the Stellar RPC returned an unreadable account entry for {address}"
            ))),
        }
    }

    fn in_flight_get(&self, slot: &(String, i64)) -> Option<InFlight> {
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(slot)
            .cloned()
    }

    fn in_flight_set(&self, slot: (String, i64), value: Option<InFlight>) {
        let mut map = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match value {
            Some(v) => {
                map.insert(slot, v);
            }
            None => {
                map.remove(&slot);
            }
        }
    }

    /// Push mode: the payer submitted the transaction and signed
    /// `"{challenge id}:{hash}"`.
    pub(super) async fn settle_push(
        &self,
        request: &SettleRequest,
    ) -> Result<Settlement, SettleError> {
        let hash_text = field(request, "hash")?;
        let hash = from_hex::<32>(hash_text)
            .map(|h| transfer::to_hex(&h))
            .ok_or_else(|| {
                SettleError::invalid_payload("`hash` must be 64 hex digits (a transaction hash)")
            })?;
        let signature = from_hex::<64>(field(request, "sourceSignature")?).ok_or_else(|| {
            SettleError::invalid_payload(
                "`sourceSignature` must be 128 hex digits (an ed25519 signature)",
            )
        })?;
        let expected = self.expected(request)?;
        self.source_payer(request.source.as_ref())?;
        self.ensure_network().await?;
        self.refuse_used(request, &hash).await?;
        let info = self
            .rpc
            .transaction(&hash)
            .await
            .map_err(|e| e.into_settle_error())?;
        match info.status.as_str() {
            "SUCCESS" => {}
            "FAILED" => return Err(Self::failed(&hash, &info)),
            _ => {
                return Err(refuse(format!(
                    "transaction {hash} is not on the network; push mode needs a confirmed transaction (retry once it is)"
                )));
            }
        }
        // The payer's signature binds this hash to this challenge.
        let envelope_xdr = info.envelope_xdr.as_deref().unwrap_or_default();
        let envelope = Envelope::decode_trusted(envelope_xdr, expected.network_id)
            .map_err(SettleError::internal)?;
        let transfer = find_transfer(envelope.transaction(), &expected)?;
        let message = format!("{}:{hash}", request.challenge.id);
        if !keys::verify(&transfer.from, message.as_bytes(), &signature) {
            return Err(refuse(format!(
                "`sourceSignature` is not the payer {}'s signature over \"{{challenge id}}:{{hash}}\"",
                transfer.payer()
            )));
        }
        self.accept(request, &expected, &info, &hash, Vec::new())
            .await
    }
}

/// Whether a transaction carries `payer`'s address authorization with
/// `nonce`.
fn uses_authorization(envelope: &Envelope, payer: [u8; 32], nonce: i64) -> bool {
    envelope.transaction().operations.iter().any(|op| {
        let OperationBody::InvokeHostFunction(invoke) = &op.body else {
            return false;
        };
        invoke.auth.iter().any(|entry| match &entry.credentials {
            SorobanCredentials::Address(c) => {
                c.nonce == nonce && keys::address_account(&c.address) == Some(payer)
            }
            _ => false,
        })
    })
}

/// A v1 envelope of `tx` with `signatures`, as base64.
fn encode(tx: &Transaction, signatures: Vec<DecoratedSignature>) -> Result<String, SettleError> {
    let signatures =
        VecM::try_from(signatures).map_err(|_| SettleError::internal("too many signatures"))?;
    TransactionEnvelope::Tx(TransactionV1Envelope {
        tx: tx.clone(),
        signatures,
    })
    .to_xdr_base64(Limits::none())
    .map_err(|_| SettleError::internal("cannot encode the sponsored transaction"))
}
