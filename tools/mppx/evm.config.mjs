// mppx CLI configuration that pays `evm` (EIP-3009) challenges for any
// token. The stock CLI signs only for the tokens it knows (USDC and USDT on
// Base and Celo); for another token it needs the token's EIP-712 domain,
// which the challenge does not carry:
//
//   MPPX_PRIVATE_KEY=0x… MPPX_EVM_TOKEN_NAME="Test USD" MPPX_EVM_TOKEN_VERSION=2 \
//     npx mppx --config tools/mppx/evm.config.mjs http://127.0.0.1:8000/rate
import { evm } from 'mppx/client'
import { privateKeyToAccount } from 'viem/accounts'

const key = process.env.MPPX_PRIVATE_KEY?.trim()
const name = process.env.MPPX_EVM_TOKEN_NAME
const version = process.env.MPPX_EVM_TOKEN_VERSION
if (!key || !name || !version) {
  throw new Error('set MPPX_PRIVATE_KEY, MPPX_EVM_TOKEN_NAME and MPPX_EVM_TOKEN_VERSION')
}

export default {
  methods: [evm.charge({ account: privateKeyToAccount(key), authorization: { name, version } })],
}
