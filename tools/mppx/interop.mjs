// Reads one JSON request on stdin and answers on stdout, using the stock
// mppx client's own parsers and serializers:
//   {"op": "challenges", "headers": ["Payment id=…", …], "payload": {…}}
//     -> {"challenges": [...], "credential": "Payment …"}  (mppx serializes
//        a credential for the first challenge, as an mppx client would)
//   {"op": "receipt", "header": "eyJ…"} -> {"receipt": {...}}
import { Challenge, Credential, Receipt } from 'mppx'

let input = ''
for await (const chunk of process.stdin) input += chunk
const request = JSON.parse(input)

let out
if (request.op === 'challenges') {
  // Several WWW-Authenticate lines, as fetch's Headers would join them.
  const challenges = Challenge.deserializeList(request.headers.join(', '))
  const first = Challenge.deserialize(request.headers[0])
  const credential = Credential.serialize(Credential.from({ challenge: first, payload: request.payload }))
  out = { challenges, credential }
} else if (request.op === 'receipt') {
  out = { receipt: Receipt.deserialize(request.header) }
} else {
  throw new Error(`unknown op ${request.op}`)
}
process.stdout.write(JSON.stringify(out) + '\n')
