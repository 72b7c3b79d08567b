// Runs the example app: wxauth's app_hook posts its events to /wxauth.
//
//   WXAUTH_SECRET=whsec_... node server.mjs
//
// Environment: WXAUTH_SECRET (required, the secret of app_hook), PORT
// (default 3000; 0 picks a free one), STORE (default users.json).

import { createServer } from 'node:http'

import { createApp } from './app.mjs'

const secret = process.env.WXAUTH_SECRET ?? ''
if (!secret.startsWith('whsec_')) {
  console.error('set WXAUTH_SECRET to the whsec_... secret of the app_hook block')
  process.exit(2)
}
const storeFile = process.env.STORE || 'users.json'
const server = createServer(createApp({ secret, storeFile, log: (line) => console.log(line) }))
server.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}/wxauth, store ${storeFile}`)
})
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => server.close(() => process.exit(0)))
}
