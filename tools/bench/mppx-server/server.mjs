// The stock mppx server (mppx 0.11.0, pinned by package-lock.json) minting
// 402s for scripts/bench.sh: `Mppx.create` with the tempo charge method and
// `Mppx.toNodeListener` on a plain node:http server, beside a bare route.
// Nothing is settled: only unpaid requests are sent to it.
//
// PORT (default 8094), MPP_SECRET_KEY (at least 32 bytes).
import http from 'node:http'
import { Mppx, tempo } from 'mppx/server'

const PATH_USD = '0x20c0000000000000000000000000000000000000'
const port = Number(process.env.PORT ?? 8094)
const secretKey = process.env.MPP_SECRET_KEY
if (!secretKey) {
  console.error('set MPP_SECRET_KEY (at least 32 bytes)')
  process.exit(2)
}

const mppx = Mppx.create({
  methods: [
    tempo.charge({
      currency: PATH_USD,
      recipient: '0x742d35Cc6634C0532925a3b844Bc9e7595f1B0F2',
      testnet: true,
    }),
  ],
  realm: 'localhost',
  secretKey,
})
// 0.50 in the token's units, like the other servers' /paid route.
const paid = Mppx.toNodeListener(mppx.charge({ amount: '0.50' }))

http
  .createServer(async (req, res) => {
    if (req.url === '/paid') {
      const result = await paid(req, res)
      if (result.status === 402) return
      res.end('ok')
      return
    }
    if (req.url === '/bare') {
      res.setHeader('content-type', 'text/plain; charset=utf-8')
      res.end('ok')
      return
    }
    res.statusCode = 404
    res.end()
  })
  .listen(port, '127.0.0.1', () => console.error(`mppx bench server on http://127.0.0.1:${port}`))
