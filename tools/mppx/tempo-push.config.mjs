// mppx CLI configuration that pays Tempo challenges in push mode: the client
// broadcasts the payment itself and sends the transaction hash
// (`{"type": "hash"}`) instead of the signed transaction. The stock CLI has
// no flag for the mode, so this file sets it:
//
//   MPPX_PRIVATE_KEY=0x… MPPX_RPC_URL=http://127.0.0.1:8545 \
//     npx mppx --config tools/mppx/tempo-push.config.mjs http://127.0.0.1:8000/weather
//
// The chain is picked by id from viem's Tempo chains (1337 is a local anvil
// started with `--network tempo --chain-id 1337`).
import { tempo } from 'mppx/client'
import { createClient, http } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import * as chains from 'viem/tempo/chains'

const key = process.env.MPPX_PRIVATE_KEY?.trim()
const rpcUrl = process.env.MPPX_RPC_URL?.trim()
if (!key || !rpcUrl) throw new Error('set MPPX_PRIVATE_KEY and MPPX_RPC_URL')

const byId = (id) => Object.values(chains).find((chain) => chain?.id === id)

export default {
  methods: [
    tempo.charge({
      account: privateKeyToAccount(key),
      mode: 'push',
      getClient: ({ chainId }) => createClient({ chain: byId(chainId), transport: http(rpcUrl) }),
    }),
  ],
}
