// Calls into wxauth's app_api, signed the same Standard Webhooks way as its
// events (same secret): the app changes a user's claims or ends the user's
// sessions on every Caddy instance.

import { randomUUID } from 'node:crypto'
import { Webhook } from 'standardwebhooks'

/** POSTs body to apiURL (e.g. http://127.0.0.1:8080/wx/app), signed with secret. */
export async function callWxauth(apiURL, secret, body) {
  const payload = JSON.stringify(body)
  // A fresh id per call: wxauth refuses an id it has seen (a replay).
  const id = 'msg_' + randomUUID()
  const now = new Date()
  const res = await fetch(apiURL, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'webhook-id': id,
      'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
      'webhook-signature': new Webhook(secret).sign(id, now, payload),
    },
    body: payload,
    signal: AbortSignal.timeout(10_000),
  })
  const text = await res.text()
  if (!res.ok) throw new Error(`wxauth ${body.action}: ${res.status} ${text}`)
}

/** Sets claims on every session of openid; a null value removes that claim. */
export function setClaims(apiURL, secret, openid, claims) {
  return callWxauth(apiURL, secret, { action: 'set_claims', openid, claims })
}

/** Ends every session of openid: its tokens are refused from then on. */
export function endSessions(apiURL, secret, openid) {
  return callWxauth(apiURL, secret, { action: 'end_sessions', openid })
}
