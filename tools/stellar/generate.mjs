#!/usr/bin/env node
// Generates the Stellar rail's test fixtures with the official
// @stellar/stellar-sdk (pinned in package-lock.json), from fixed seeds, so
// the output is byte-for-byte reproducible:
//
//   npm ci --prefix tools/stellar
//   node tools/stellar/generate.mjs            # rewrites mpp-runtime/tests/data/stellar/*.json
//   node tools/stellar/generate.mjs --check    # fails if the committed files differ
//
// Two files come out:
//
// - transactions.json: signed SAC `transfer` transactions and sponsored
//   (auth-entry-only) transactions, good and bad, as a wallet sends them in
//   a `{"type": "transaction"}` credential; and transactions already "on
//   chain" for push (`{"type": "signedHash"}`) credentials, with the
//   payer's signature over "challenge-123:{hash}" made by the SDK's Keypair.
// - rpc-responses.json: Stellar RPC JSON-RPC `result` objects in the exact
//   wire shape of stellar-rpc (the Go structs of
//   github.com/stellar/go-stellar-sdk/protocols/rpc, formerly
//   stellar-rpc/protocol), with XDR built by the SDK. Each one is served to
//   the SDK's own `rpc.Server` from a loopback HTTP server below and parsed
//   by it, so the shapes are what the official client accepts.
//
// Nothing here touches a network other than 127.0.0.1.

import { createHash } from 'node:crypto'
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs'
import { createServer } from 'node:http'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

import {
  Account,
  Address,
  Asset,
  authorizeEntry,
  Keypair,
  Networks,
  Operation,
  rpc,
  SorobanDataBuilder,
  TransactionBuilder,
  nativeToScVal,
  xdr,
} from '@stellar/stellar-sdk'

const here = dirname(fileURLToPath(import.meta.url))
const outDir = join(here, '..', '..', 'mpp-runtime', 'tests', 'data', 'stellar')
const sdkVersion = JSON.parse(
  readFileSync(join(here, 'node_modules', '@stellar', 'stellar-sdk', 'package.json'), 'utf8'),
).version

// ---------------------------------------------------------------------------
// Fixed inputs
// ---------------------------------------------------------------------------

const PASSPHRASE = Networks.TESTNET
/** The tests' clock: challenges are issued at NOW and expire 300 s later. */
const NOW = 1_800_000_000
const EXPIRES = NOW + 300
/** The latest ledger the test RPC reports at NOW. */
const LATEST_LEDGER = 1_000_000
/** Ledgers that fit in the challenge lifetime: ceil(300 / 5). */
const LIFETIME_LEDGERS = 60
/** 0.50 USD of USDC, 7 decimals. */
const AMOUNT = 5_000_000n
const USDC_ISSUER = 'GBBD47IF6LWK7P7MDEVSCWR7DPUWV3NY3DTQEVFL4NAT4AQH3ZLLFLA5'
const USDC = new Asset('USDC', USDC_ISSUER)
const USDC_SAC = USDC.contractId(PASSPHRASE)
const XLM_SAC = Asset.native().contractId(PASSPHRASE)
if (USDC_SAC !== 'CBIELTK6YBZJU5UP2WWQEUCYKLPU6AUNZ2BQ4WWFEIE3USCIHMXQDAMA') {
  throw new Error(`unexpected testnet USDC SAC ${USDC_SAC}`)
}
const ALL_ZEROS = 'GAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAWHF'
const CHALLENGE_ID = 'challenge-123'

function seeded(label) {
  const seed = createHash('sha256').update(`mpp-runtime stellar fixture: ${label}`).digest()
  return Keypair.fromRawEd25519Seed(seed)
}
const payer = seeded('payer')
const recipient = seeded('recipient')
const sponsor = seeded('sponsor')
const stranger = seeded('stranger')
const PAYER_SEQUENCE = '123456789000'

// ---------------------------------------------------------------------------
// Building blocks
// ---------------------------------------------------------------------------

const i128 = (n) => nativeToScVal(n, { type: 'i128' })
const addr = (a) => new Address(a).toScVal()

function transferArgs({ from = payer.publicKey(), to = recipient.publicKey(), amount = AMOUNT } = {}) {
  return [addr(from), addr(to), i128(amount)]
}

function invocation({ contract = USDC_SAC, fn = 'transfer', args = transferArgs(), sub = [] } = {}) {
  return new xdr.SorobanAuthorizedInvocation({
    function: xdr.SorobanAuthorizedFunction.sorobanAuthorizedFunctionTypeContractFn(
      new xdr.InvokeContractArgs({
        contractAddress: new Address(contract).toScAddress(),
        functionName: fn,
        args,
      }),
    ),
    subInvocations: sub,
  })
}

/** The entry simulation records when the invoker is the transaction source. */
function sourceAccountEntry(root) {
  return new xdr.SorobanAuthorizationEntry({
    credentials: xdr.SorobanCredentials.sorobanCredentialsSourceAccount(),
    rootInvocation: root,
  })
}

/** An address-credential entry signed by `signer` (authorizeEntry). */
async function addressEntry(root, { address = payer.publicKey(), signer = payer, nonce = 7001n, expiration }) {
  const unsigned = new xdr.SorobanAuthorizationEntry({
    credentials: xdr.SorobanCredentials.sorobanCredentialsAddress(
      new xdr.SorobanAddressCredentials({
        address: new Address(address).toScAddress(),
        nonce: xdr.Int64.fromString(nonce.toString()),
        signatureExpirationLedger: 0,
        signature: xdr.ScVal.scvVoid(),
      }),
    ),
    rootInvocation: root,
  })
  return authorizeEntry(unsigned, signer, expiration, PASSPHRASE)
}

function trustlineKey(account) {
  return xdr.LedgerKey.trustline(
    new xdr.LedgerKeyTrustLine({
      accountId: Keypair.fromPublicKey(account).xdrAccountId(),
      asset: USDC.toTrustLineXDRObject(),
    }),
  )
}

function instanceKey(contract) {
  return xdr.LedgerKey.contractData(
    new xdr.LedgerKeyContractData({
      contract: new Address(contract).toScAddress(),
      key: xdr.ScVal.scvLedgerKeyContractInstance(),
      durability: xdr.ContractDataDurability.persistent(),
    }),
  )
}

/** What simulating a SAC transfer between two G accounts returns. */
function sorobanData(resourceFee = 61_737) {
  return new SorobanDataBuilder()
    .setReadOnly([instanceKey(USDC_SAC)])
    .setReadWrite([trustlineKey(payer.publicKey()), trustlineKey(recipient.publicKey())])
    .setResources(1_234_567, 1_084, 236)
    .setResourceFee(resourceFee)
    .build()
}

function invokeOp({ contract = USDC_SAC, fn = 'transfer', args = transferArgs(), auth }) {
  return Operation.invokeContractFunction({ contract, function: fn, args, auth })
}

function buildTx({ source = payer.publicKey(), sequence = PAYER_SEQUENCE, ops, maxTime = EXPIRES, passphrase = PASSPHRASE }) {
  const builder = new TransactionBuilder(new Account(source, sequence), {
    fee: '100',
    networkPassphrase: passphrase,
    timebounds: { minTime: 0, maxTime },
  })
  for (const op of ops) builder.addOperation(op)
  return builder.setSorobanData(sorobanData()).build()
}

/** A complete, signed transfer transaction (unsponsored pull mode). */
function signedTransfer({ signer = payer, passphrase = PASSPHRASE, sequence, maxTime, args, contract, fn, sub, extraOps = [], source } = {}) {
  const root = invocation({ contract, fn, args, sub })
  const op = invokeOp({ contract, fn, args, auth: [sourceAccountEntry(root)] })
  const tx = buildTx({ source, sequence, ops: [op, ...extraOps], maxTime, passphrase })
  if (signer) tx.sign(signer)
  return tx
}

/**
 * A complete transfer transaction whose authorization is an address
 * credential (signed with authorizeEntry by `authSigner`, the payer's by
 * default) rather than the source-account one simulation records: what a
 * wallet that signs entries explicitly sends. The envelope is signed by the
 * payer, its source.
 */
async function addressSignedTransfer({ expiration = LATEST_LEDGER + 50, authSigner = payer, sequence = '123456789020' } = {}) {
  const root = invocation()
  const auth = [await addressEntry(root, { signer: authSigner, nonce: 7101n, expiration })]
  const tx = buildTx({ sequence, ops: [invokeOp({ auth })] })
  tx.sign(payer)
  return tx
}

/** A sponsored transaction: all-zeros source, signed auth entries only. */
async function sponsoredTransfer({ args, contract, fn, sub, expiration = LATEST_LEDGER + 50, address, signer, entries } = {}) {
  const root = invocation({ contract, fn, args, sub })
  const auth = entries ?? [await addressEntry(root, { address, signer, expiration })]
  const op = invokeOp({ contract, fn, args, auth })
  return buildTx({ source: ALL_ZEROS, sequence: '0', ops: [op] })
}

function record(tx, note) {
  return {
    note,
    xdr: tx.toEnvelope().toXDR('base64'),
    hash: tx.hash().toString('hex'),
  }
}

// ---------------------------------------------------------------------------
// Pull mode: a complete signed transaction
// ---------------------------------------------------------------------------

const good = signedTransfer()
const tampered = signedTransfer()
{
  const env = tampered.toEnvelope()
  const sig = env.v1().signatures()[0].signature()
  sig[10] ^= 0x01
  tampered.signatures[0] = env.v1().signatures()[0]
}
const feeBumped = TransactionBuilder.buildFeeBumpTransaction(stranger, '400', signedTransfer({ sequence: '123456789010' }), PASSPHRASE)
feeBumped.sign(stranger)

const pull = {
  good: record(good, 'transfer(payer, recipient, 5000000) on the testnet USDC SAC, source-account auth, signed by the payer, timeBounds (0, expires)'),
  fee_bump: record(feeBumped, 'the good transfer (another sequence) wrapped in a fee bump paid and signed by the stranger'),
  wrong_amount: record(signedTransfer({ args: transferArgs({ amount: AMOUNT - 1n }) }), 'amount 4999999'),
  wrong_recipient: record(signedTransfer({ args: transferArgs({ to: stranger.publicKey() }) }), 'pays the stranger'),
  wrong_contract: record(signedTransfer({ contract: XLM_SAC }), 'transfer on the native XLM SAC, not USDC'),
  extra_operation: record(
    signedTransfer({ extraOps: [Operation.payment({ destination: stranger.publicKey(), asset: Asset.native(), amount: '1' })] }),
    'the transfer plus a classic payment to the stranger',
  ),
  sub_invocation: record(
    signedTransfer({ sub: [invocation({ contract: XLM_SAC, args: transferArgs({ to: stranger.publicKey(), amount: 1n }) })] }),
    'the auth entry also authorizes a sub-invocation (an XLM transfer to the stranger)',
  ),
  not_transfer: record(
    signedTransfer({ fn: 'approve', args: [addr(payer.publicKey()), addr(recipient.publicKey()), i128(AMOUNT), nativeToScVal(LATEST_LEDGER + 100, { type: 'u32' })] }),
    'approve(payer, recipient, amount, ledger) instead of transfer',
  ),
  from_not_source: record(
    signedTransfer({ args: transferArgs({ from: stranger.publicKey() }) }),
    "transfer from the stranger's account with source-account auth, source and signer the payer",
  ),
  bad_signature: record(signedTransfer({ signer: stranger }), 'signed by the stranger, not by the source (the payer)'),
  tampered_signature: record(tampered, "the payer's signature with one bit flipped"),
  unsigned: record(signedTransfer({ signer: null }), 'no signature at all'),
  wrong_network: record(signedTransfer({ passphrase: Networks.PUBLIC }), 'signed for pubnet (its hash differs on testnet)'),
  too_late: record(signedTransfer({ maxTime: EXPIRES + 3600 }), 'timeBounds.maxTime an hour after the challenge expires'),
  no_max_time: record(signedTransfer({ maxTime: 0 }), 'timeBounds.maxTime 0: valid forever'),
  address_auth: record(
    await addressSignedTransfer(),
    `the good transfer authorized by an address credential signed by the payer (nonce 7101), expiration ledger ${LATEST_LEDGER + 50}`,
  ),
  address_auth_expired: record(
    await addressSignedTransfer({ expiration: LATEST_LEDGER - 5, sequence: '123456789021' }),
    `address credential with expiration ledger ${LATEST_LEDGER - 5}, before the latest ledger`,
  ),
  address_auth_too_long: record(
    await addressSignedTransfer({ expiration: LATEST_LEDGER + 1000, sequence: '123456789022' }),
    `address credential with expiration ledger ${LATEST_LEDGER + 1000}, beyond the challenge lifetime (${LATEST_LEDGER + LIFETIME_LEDGERS})`,
  ),
  address_auth_bad_signature: record(
    await addressSignedTransfer({ authSigner: stranger, sequence: '123456789023' }),
    "the payer's address credential signed with the stranger's key (the envelope is the payer's)",
  ),
}

// ---------------------------------------------------------------------------
// Pull mode, sponsored: all-zeros source, address auth entry signed by the payer
// ---------------------------------------------------------------------------

const root = invocation()
const sponsored = {
  good: record(await sponsoredTransfer(), `address auth entry signed by the payer, expiration ledger ${LATEST_LEDGER + 50}`),
  wrong_amount: record(await sponsoredTransfer({ args: transferArgs({ amount: AMOUNT + 1n }) }), 'amount 5000001'),
  wrong_recipient: record(await sponsoredTransfer({ args: transferArgs({ to: stranger.publicKey() }) }), 'pays the stranger'),
  sub_invocation: record(
    await sponsoredTransfer({ sub: [invocation({ contract: XLM_SAC, args: transferArgs({ to: stranger.publicKey(), amount: 1n }) })] }),
    'the signed entry also authorizes an XLM transfer to the stranger',
  ),
  auth_expired: record(await sponsoredTransfer({ expiration: LATEST_LEDGER - 5 }), `expiration ledger ${LATEST_LEDGER - 5}, before the latest ledger`),
  auth_too_long: record(
    await sponsoredTransfer({ expiration: LATEST_LEDGER + 1000 }),
    `expiration ledger ${LATEST_LEDGER + 1000}, beyond the challenge lifetime (${LATEST_LEDGER + LIFETIME_LEDGERS})`,
  ),
  bad_auth_signature: record(await sponsoredTransfer({ signer: stranger }), "the payer's entry signed with the stranger's key"),
  source_account_auth: record(
    await sponsoredTransfer({ entries: [sourceAccountEntry(root)] }),
    'a source-account credential (would be authorized by the sponsor\'s own signature)',
  ),
  sponsor_pays: record(
    await sponsoredTransfer({ args: transferArgs({ from: sponsor.publicKey() }), address: sponsor.publicKey(), signer: sponsor }),
    "transfer from the sponsor's own account, entry signed by the sponsor",
  ),
  two_entries: record(
    await sponsoredTransfer({ entries: [await addressEntry(root, { expiration: LATEST_LEDGER + 50 }), await addressEntry(root, { nonce: 7002n, expiration: LATEST_LEDGER + 50 })] }),
    'two signed entries for the same transfer',
  ),
}

// ---------------------------------------------------------------------------
// Push mode: transactions already on chain, and the payer's binding signature
// ---------------------------------------------------------------------------

function sourceSignature(signer, hash, id = CHALLENGE_ID) {
  return Buffer.from(signer.sign(Buffer.from(`${id}:${hash.toLowerCase()}`))).toString('hex')
}

const onChainGood = signedTransfer({ sequence: '123456789001' })
const onChainWrongAmount = signedTransfer({ sequence: '123456789002', args: transferArgs({ amount: AMOUNT - 1n }) })
const onChainFeeBump = TransactionBuilder.buildFeeBumpTransaction(stranger, '400', signedTransfer({ sequence: '123456789003' }), PASSPHRASE)
onChainFeeBump.sign(stranger)
const push = {}
for (const [name, tx, note] of [
  ['good', onChainGood, 'a confirmed transfer(payer, recipient, 5000000)'],
  ['wrong_amount', onChainWrongAmount, 'a confirmed transfer of 4999999'],
  ['fee_bump', onChainFeeBump, 'a confirmed fee-bumped transfer (the hash is the fee bump\'s)'],
]) {
  const hash = tx.hash().toString('hex')
  push[name] = {
    note,
    xdr: tx.toEnvelope().toXDR('base64'),
    hash,
    sourceSignature: sourceSignature(payer, hash),
    strangerSignature: sourceSignature(stranger, hash),
  }
}

const transactions = {
  source: `tools/stellar/generate.mjs, @stellar/stellar-sdk ${sdkVersion}; fixed seeds sha256("mpp-runtime stellar fixture: <name>")`,
  network: 'stellar:testnet',
  passphrase: PASSPHRASE,
  now: NOW,
  expires: EXPIRES,
  latestLedger: LATEST_LEDGER,
  token: USDC_SAC,
  otherToken: XLM_SAC,
  amount: AMOUNT.toString(),
  challengeId: CHALLENGE_ID,
  allZeros: ALL_ZEROS,
  keys: Object.fromEntries(
    Object.entries({ payer, recipient, sponsor, stranger }).map(([k, v]) => [k, { public: v.publicKey(), secret: v.secret() }]),
  ),
  pull,
  sponsored,
  push,
}

// ---------------------------------------------------------------------------
// RPC responses (JSON-RPC `result` objects)
// ---------------------------------------------------------------------------

const hex32 = (label) => createHash('sha256').update(label).digest('hex')
const closeTime = String(NOW)
const scSym = (s) => xdr.ScVal.scvSymbol(s)

function contractEvent(contract, topics, data, type = xdr.ContractEventType.contract()) {
  return new xdr.ContractEvent({
    ext: new xdr.ExtensionPoint(0),
    contractId: contract ? new Address(contract).toScAddress().contractId() : null,
    type,
    body: new xdr.ContractEventBody(0, new xdr.ContractEventV0({ topics, data })),
  })
}

/** The SEP-41/CAP-67 transfer event a SAC emits: [transfer, from, to, asset], amount. */
function transferEvent(from, to, amount, contract = USDC_SAC) {
  return contractEvent(contract, [scSym('transfer'), addr(from), addr(to), xdr.ScVal.scvString(`USDC:${USDC_ISSUER}`)], i128(amount))
}

function diagnostic(event, ok = true) {
  return new xdr.DiagnosticEvent({ inSuccessfulContractCall: ok, event })
}

const fnCall = contractEvent(
  null,
  [scSym('fn_call'), xdr.ScVal.scvBytes(new Address(USDC_SAC).toScAddress().contractId()), scSym('transfer')],
  xdr.ScVal.scvVec(transferArgs()),
  xdr.ContractEventType.diagnostic(),
)
const fnReturn = contractEvent(USDC_SAC, [scSym('fn_return'), scSym('transfer')], xdr.ScVal.scvVoid(), xdr.ContractEventType.diagnostic())
const b64 = (x) => x.toXDR('base64')

function simulation(events, extra = {}) {
  return {
    transactionData: b64(sorobanData()),
    events: events.map((e) => b64(e)),
    minResourceFee: '61737',
    results: [{ auth: [], xdr: b64(xdr.ScVal.scvVoid()) }],
    latestLedger: LATEST_LEDGER,
    ...extra,
  }
}

const txResult = (code, opResult) =>
  new xdr.TransactionResult({
    feeCharged: xdr.Int64.fromString('61837'),
    result: new xdr.TransactionResultResult(code, opResult === undefined ? undefined : [opResult]),
    ext: new xdr.TransactionResultExt(0),
  })
const invokeResult = (inner) => xdr.OperationResult.opInner(xdr.OperationResultTr.invokeHostFunction(inner))
const successResult = txResult(
  xdr.TransactionResultCode.txSuccess(),
  invokeResult(xdr.InvokeHostFunctionResult.invokeHostFunctionSuccess(Buffer.from(hex32('return value'), 'hex'))),
)
const failedResult = txResult(
  xdr.TransactionResultCode.txFailed(),
  invokeResult(xdr.InvokeHostFunctionResult.invokeHostFunctionTrapped()),
)
const badAuthResult = new xdr.TransactionResult({
  feeCharged: xdr.Int64.fromString('100'),
  result: xdr.TransactionResultResult.txBadAuth(),
  ext: new xdr.TransactionResultExt(0),
})

function meta(transfer) {
  return new xdr.TransactionMeta(
    4,
    new xdr.TransactionMetaV4({
      ext: new xdr.ExtensionPoint(0),
      txChangesBefore: [],
      operations: [new xdr.OperationMetaV2({ ext: new xdr.ExtensionPoint(0), changes: [], events: transfer ? [transfer] : [] })],
      txChangesAfter: [],
      sorobanMeta: new xdr.SorobanTransactionMetaV2({ ext: new xdr.SorobanTransactionMetaExt(0), returnValue: xdr.ScVal.scvVoid() }),
      events: [],
      diagnosticEvents: [],
    }),
  )
}

const feeEvent = new xdr.TransactionEvent({
  stage: xdr.TransactionEventStage.transactionEventStageBeforeAllTxes(),
  event: contractEvent(XLM_SAC, [scSym('fee'), addr(payer.publicKey())], i128(61837n)),
})

function retention() {
  return {
    latestLedger: LATEST_LEDGER,
    latestLedgerCloseTime: closeTime,
    oldestLedger: LATEST_LEDGER - 120_959,
    oldestLedgerCloseTime: String(NOW - 120_959 * 5),
  }
}

function getTransaction(status, tx) {
  if (status === 'NOT_FOUND') {
    return { ...retention(), status, txHash: hex32('unknown transaction'), applicationOrder: 0, feeBump: false, events: {}, ledger: 0, createdAt: '0' }
  }
  const transfer = transferEvent(payer.publicKey(), recipient.publicKey(), AMOUNT)
  return {
    ...retention(),
    status,
    txHash: tx.hash().toString('hex'),
    applicationOrder: 1,
    feeBump: tx instanceof Object && 'innerTransaction' in tx,
    envelopeXdr: tx.toEnvelope().toXDR('base64'),
    resultXdr: b64(status === 'SUCCESS' ? successResult : failedResult),
    resultMetaXdr: b64(meta(status === 'SUCCESS' ? transfer : null)),
    events: {
      transactionEventsXdr: [b64(feeEvent)],
      contractEventsXdr: [status === 'SUCCESS' ? [b64(transfer)] : []],
    },
    ledger: LATEST_LEDGER - 1,
    createdAt: String(NOW - 5),
  }
}

const ledgerHeader = new xdr.LedgerHeader({
  ledgerVersion: 23,
  previousLedgerHash: Buffer.from(hex32('previous ledger'), 'hex'),
  scpValue: new xdr.StellarValue({
    txSetHash: Buffer.from(hex32('tx set'), 'hex'),
    closeTime: xdr.Uint64.fromString(closeTime),
    upgrades: [],
    ext: xdr.StellarValueExt.stellarValueBasic(),
  }),
  txSetResultHash: Buffer.from(hex32('tx set result'), 'hex'),
  bucketListHash: Buffer.from(hex32('bucket list'), 'hex'),
  ledgerSeq: LATEST_LEDGER,
  totalCoins: xdr.Int64.fromString('1000000000000000000'),
  feePool: xdr.Int64.fromString('12345678900'),
  inflationSeq: 0,
  idPool: xdr.Uint64.fromString('9876543'),
  baseFee: 100,
  baseReserve: 5_000_000,
  maxTxSetSize: 100,
  skipList: [0, 1, 2, 3].map((i) => Buffer.from(hex32(`skip ${i}`), 'hex')),
  ext: new xdr.LedgerHeaderExt(0),
})
const ledgerHeaderHistory = new xdr.LedgerHeaderHistoryEntry({
  hash: Buffer.from(hex32('latest ledger'), 'hex'),
  header: ledgerHeader,
  ext: new xdr.LedgerHeaderHistoryEntryExt(0),
})
const ledgerCloseMeta = new xdr.LedgerCloseMeta(
  2,
  new xdr.LedgerCloseMetaV2({
    ext: new xdr.LedgerCloseMetaExt(0),
    ledgerHeader: ledgerHeaderHistory,
    txSet: new xdr.GeneralizedTransactionSet(
      1,
      new xdr.TransactionSetV1({ previousLedgerHash: Buffer.from(hex32('previous ledger'), 'hex'), phases: [] }),
    ),
    txProcessing: [],
    upgradesProcessing: [],
    scpInfo: [],
    totalByteSizeOfLiveSorobanState: xdr.Uint64.fromString('123456789'),
    evictedKeys: [],
  }),
)

const sponsorKey = xdr.LedgerKey.account(new xdr.LedgerKeyAccount({ accountId: sponsor.xdrAccountId() }))
const sponsorAccount = xdr.LedgerEntryData.account(
  new xdr.AccountEntry({
    accountId: sponsor.xdrAccountId(),
    balance: xdr.Int64.fromString('100000000000'),
    seqNum: xdr.Int64.fromString('4294967296123'),
    numSubEntries: 0,
    inflationDest: null,
    flags: 0,
    homeDomain: '',
    thresholds: Buffer.from([1, 0, 0, 0]),
    signers: [],
    ext: new xdr.AccountEntryExt(0),
  }),
)

const nonceKey = xdr.LedgerKey.contractData(
  new xdr.LedgerKeyContractData({
    contract: new Address(payer.publicKey()).toScAddress(),
    key: xdr.ScVal.scvLedgerKeyNonce(new xdr.ScNonceKey({ nonce: xdr.Int64.fromString('7001') })),
    durability: xdr.ContractDataDurability.temporary(),
  }),
)
const nonceEntry = xdr.LedgerEntryData.contractData(
  new xdr.ContractDataEntry({
    ext: new xdr.ExtensionPoint(0),
    contract: new Address(payer.publicKey()).toScAddress(),
    key: xdr.ScVal.scvLedgerKeyNonce(new xdr.ScNonceKey({ nonce: xdr.Int64.fromString('7001') })),
    durability: xdr.ContractDataDurability.temporary(),
    val: xdr.ScVal.scvVoid(),
  }),
)
const transferTopics = (() => {
  const body = transferEvent(payer.publicKey(), recipient.publicKey(), AMOUNT).body().v0()
  return { topic: body.topics().map((t) => b64(t)), value: b64(body.data()) }
})()

const rpcResponses = {
  source: `tools/stellar/generate.mjs, @stellar/stellar-sdk ${sdkVersion}; shapes: go-stellar-sdk protocols/rpc (stellar-rpc), checked with the SDK's rpc.Server`,
  getNetwork: {
    friendbotUrl: 'https://friendbot.stellar.org/',
    passphrase: PASSPHRASE,
    protocolVersion: 23,
    build: 'stellar-rpc 23.0.4 (fixture)',
    limits: {
      maxContractSize: 131072,
      maxContractDataKeySize: 250,
      maxContractDataEntrySize: 131072,
      maxTxInstructions: 600000000,
      maxTxReadLedgerEntries: 100,
      maxTxReadBytes: 200000,
      maxTxWriteLedgerEntries: 50,
      maxTxWriteBytes: 132096,
    },
  },
  getLatestLedger: {
    id: hex32('latest ledger'),
    protocolVersion: 23,
    sequence: LATEST_LEDGER,
    closeTime,
    headerXdr: b64(ledgerHeader),
    metadataXdr: b64(ledgerCloseMeta),
  },
  simulateSuccess: simulation([diagnostic(fnCall), diagnostic(transferEvent(payer.publicKey(), recipient.publicKey(), AMOUNT)), diagnostic(fnReturn)]),
  simulateExtraTransfer: simulation([
    diagnostic(fnCall),
    diagnostic(transferEvent(payer.publicKey(), recipient.publicKey(), AMOUNT)),
    diagnostic(transferEvent(payer.publicKey(), stranger.publicKey(), 1n)),
    diagnostic(fnReturn),
  ]),
  simulateWrongTransfer: simulation([diagnostic(fnCall), diagnostic(transferEvent(payer.publicKey(), recipient.publicKey(), AMOUNT - 1n)), diagnostic(fnReturn)]),
  simulateError: {
    error: 'HostError: Error(Contract, #10)\n\nEvent log (newest first):\n   0: [Diagnostic Event] contract:CBIELTK6YBZJU5UP2WWQEUCYKLPU6AUNZ2BQ4WWFEIE3USCIHMXQDAMA, topics:[error, Error(Contract, #10)], data:["balance is not sufficient to spend", 5000000]',
    events: [b64(diagnostic(contractEvent(USDC_SAC, [scSym('error'), xdr.ScVal.scvError(xdr.ScError.sceContract(10))], xdr.ScVal.scvString('balance is not sufficient to spend'), xdr.ContractEventType.diagnostic()), false))],
    latestLedger: LATEST_LEDGER,
  },
  simulateRestore: simulation([diagnostic(fnCall), diagnostic(transferEvent(payer.publicKey(), recipient.publicKey(), AMOUNT)), diagnostic(fnReturn)], {
    restorePreamble: { transactionData: b64(sorobanData(12345)), minResourceFee: '12345' },
  }),
  sendPending: { status: 'PENDING', hash: good.hash().toString('hex'), latestLedger: LATEST_LEDGER, latestLedgerCloseTime: closeTime },
  sendDuplicate: { status: 'DUPLICATE', hash: good.hash().toString('hex'), latestLedger: LATEST_LEDGER, latestLedgerCloseTime: closeTime },
  sendTryAgainLater: { status: 'TRY_AGAIN_LATER', hash: good.hash().toString('hex'), latestLedger: LATEST_LEDGER, latestLedgerCloseTime: closeTime },
  sendError: { errorResultXdr: b64(badAuthResult), status: 'ERROR', hash: good.hash().toString('hex'), latestLedger: LATEST_LEDGER, latestLedgerCloseTime: closeTime },
  getTransactionSuccess: getTransaction('SUCCESS', good),
  getTransactionFailed: getTransaction('FAILED', good),
  getTransactionNotFound: getTransaction('NOT_FOUND'),
  getLedgerEntriesSponsor: {
    entries: [{ key: b64(sponsorKey), xdr: b64(sponsorAccount), lastModifiedLedgerSeq: LATEST_LEDGER - 10 }],
    latestLedger: LATEST_LEDGER,
  },
  getLedgerEntriesMissing: { entries: [], latestLedger: LATEST_LEDGER },
  getLedgerEntriesNonce: {
    entries: [{ key: b64(nonceKey), xdr: b64(nonceEntry), lastModifiedLedgerSeq: LATEST_LEDGER - 1, liveUntilLedgerSeq: LATEST_LEDGER + 50 }],
    latestLedger: LATEST_LEDGER,
  },
  getEventsTransfer: {
    events: [
      {
        type: 'contract',
        ledger: LATEST_LEDGER - 1,
        ledgerClosedAt: new Date((NOW - 5) * 1000).toISOString().replace('.000Z', 'Z'),
        contractId: USDC_SAC,
        id: `${((BigInt(LATEST_LEDGER - 1) << 32n) + (1n << 12n) + 1n).toString().padStart(19, '0')}-0000000000`,
        operationIndex: 0,
        transactionIndex: 1,
        txHash: good.hash().toString('hex'),
        ...transferTopics,
      },
    ],
    cursor: `${((BigInt(LATEST_LEDGER) << 32n)).toString().padStart(19, '0')}-4294967295`,
    ...retention(),
  },
}

// ---------------------------------------------------------------------------
// The official client must accept every response: serve each over loopback
// HTTP to rpc.Server and parse it.
// ---------------------------------------------------------------------------

async function checkWithSdk() {
  let next = null
  const server = createServer((req, res) => {
    let body = ''
    req.on('data', (c) => (body += c))
    req.on('end', () => {
      const request = JSON.parse(body)
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ jsonrpc: '2.0', id: request.id, result: next(request) }))
    })
  })
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  const url = `http://127.0.0.1:${server.address().port}`
  const client = new rpc.Server(url, { allowHttp: true })
  const expectMethod = (method, result) => (request) => {
    if (request.method !== method) throw new Error(`expected ${method}, got ${request.method}`)
    return structuredClone(result)
  }
  try {
    next = expectMethod('getNetwork', rpcResponses.getNetwork)
    const network = await client.getNetwork()
    if (network.passphrase !== PASSPHRASE) throw new Error('getNetwork')

    next = expectMethod('getLatestLedger', rpcResponses.getLatestLedger)
    const latest = await client.getLatestLedger()
    if (latest.sequence !== LATEST_LEDGER || latest.headerXdr.ledgerSeq() !== LATEST_LEDGER) throw new Error('getLatestLedger')

    for (const name of ['simulateSuccess', 'simulateExtraTransfer', 'simulateWrongTransfer', 'simulateRestore']) {
      next = expectMethod('simulateTransaction', rpcResponses[name])
      const sim = await client.simulateTransaction(good)
      if (!rpc.Api.isSimulationSuccess(sim) || sim.events.length < 3) throw new Error(name)
    }
    next = expectMethod('simulateTransaction', rpcResponses.simulateError)
    if (!rpc.Api.isSimulationError(await client.simulateTransaction(good))) throw new Error('simulateError')

    for (const name of ['sendPending', 'sendDuplicate', 'sendTryAgainLater', 'sendError']) {
      next = expectMethod('sendTransaction', rpcResponses[name])
      const sent = await client.sendTransaction(good)
      if (sent.hash !== good.hash().toString('hex')) throw new Error(name)
      if (name === 'sendError' && sent.errorResult.result().switch().name !== 'txBadAuth') throw new Error(name)
    }

    next = expectMethod('getTransaction', rpcResponses.getTransactionSuccess)
    const ok = await client.getTransaction(good.hash().toString('hex'))
    if (ok.status !== 'SUCCESS' || ok.events.contractEventsXdr[0].length !== 1) throw new Error('getTransactionSuccess')
    next = expectMethod('getTransaction', rpcResponses.getTransactionFailed)
    if ((await client.getTransaction(good.hash().toString('hex'))).status !== 'FAILED') throw new Error('getTransactionFailed')
    next = expectMethod('getTransaction', rpcResponses.getTransactionNotFound)
    if ((await client.getTransaction(hex32('unknown transaction'))).status !== 'NOT_FOUND') throw new Error('getTransactionNotFound')
    for (const p of Object.values(push)) {
      const onChain = TransactionBuilder.fromXDR(p.xdr, PASSPHRASE)
      next = expectMethod('getTransaction', getTransaction('SUCCESS', onChain))
      const found = await client.getTransaction(p.hash)
      if (found.txHash !== p.hash) throw new Error('push')
    }

    next = expectMethod('getLedgerEntries', rpcResponses.getLedgerEntriesSponsor)
    const account = await client.getAccount(sponsor.publicKey())
    if (account.sequenceNumber() !== '4294967296123') throw new Error('getLedgerEntriesSponsor')
    next = expectMethod('getLedgerEntries', rpcResponses.getLedgerEntriesNonce)
    const nonce = await client.getLedgerEntries(nonceKey)
    if (nonce.entries[0].val.contractData().key().switch().name !== 'scvLedgerKeyNonce') throw new Error('getLedgerEntriesNonce')
    next = expectMethod('getEvents', rpcResponses.getEventsTransfer)
    const events = await client.getEvents({
      startLedger: LATEST_LEDGER - 100,
      filters: [{ type: 'contract', contractIds: [USDC_SAC], topics: [transferTopics.topic.slice(0, 3), [...transferTopics.topic.slice(0, 3), '*']] }],
      limit: 200,
    })
    if (events.events[0].txHash !== good.hash().toString('hex') || events.events[0].topic.length !== 4) throw new Error('getEventsTransfer')
    next = expectMethod('getLedgerEntries', rpcResponses.getLedgerEntriesMissing)
    const missing = await client.getAccount(stranger.publicKey()).then(() => 'found', () => 'missing')
    if (missing !== 'missing') throw new Error('getLedgerEntriesMissing')
  } finally {
    server.close()
  }
}

// Sanity: the SDK itself verifies what it signed, and rejects the bad ones.
function checkSignatures() {
  const verify = (rec, key) => {
    const tx = TransactionBuilder.fromXDR(rec.xdr, PASSPHRASE)
    const sigs = tx.signatures
    return sigs.some((s) => key.verify(tx.hash(), s.signature()))
  }
  for (const name of ['good', 'address_auth', 'address_auth_expired', 'address_auth_too_long', 'address_auth_bad_signature']) {
    if (!verify(pull[name], payer)) throw new Error(`${name} is not signed by the payer`)
  }
  for (const name of ['bad_signature', 'tampered_signature', 'unsigned', 'wrong_network']) {
    if (verify(pull[name], payer)) throw new Error(`${name} verifies`)
  }
  for (const p of Object.values(push)) {
    if (!payer.verify(Buffer.from(`${CHALLENGE_ID}:${p.hash}`), Buffer.from(p.sourceSignature, 'hex'))) throw new Error('push signature')
  }
}

checkSignatures()
await checkWithSdk()

const files = {
  'transactions.json': JSON.stringify(transactions, null, 2) + '\n',
  'rpc-responses.json': JSON.stringify(rpcResponses, null, 2) + '\n',
}
if (process.argv.includes('--check')) {
  let stale = false
  for (const [name, text] of Object.entries(files)) {
    let current = ''
    try {
      current = readFileSync(join(outDir, name), 'utf8')
    } catch {}
    if (current !== text) {
      console.error(`${name} is stale: run node tools/stellar/generate.mjs`)
      stale = true
    }
  }
  process.exit(stale ? 1 : 0)
}
mkdirSync(outDir, { recursive: true })
for (const [name, text] of Object.entries(files)) writeFileSync(join(outDir, name), text)
console.log(`wrote ${Object.keys(files).join(', ')} to ${outDir} (@stellar/stellar-sdk ${sdkVersion})`)
