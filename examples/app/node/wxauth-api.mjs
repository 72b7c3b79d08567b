// Calls into wxauth's app_api, signed the same Standard Webhooks way as its
// events (same secret): the app changes a user's claims or ends the user's
// sessions on every Caddy instance, or takes wxauth's WeChat access_token
// instead of fetching its own.

import { randomUUID } from 'node:crypto'
import { Webhook } from 'standardwebhooks'

/**
 * POSTs body to apiURL (e.g. http://127.0.0.1:8080/wx/app), signed with
 * secret; returns the JSON answer (200), or null (204).
 */
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
  return text ? JSON.parse(text) : null
}

/** Sets claims on every session of openid; a null value removes that claim. */
export function setClaims(apiURL, secret, openid, claims) {
  return callWxauth(apiURL, secret, { action: 'set_claims', openid, claims })
}

/** Ends every session of openid: its tokens are refused from then on. */
export function endSessions(apiURL, secret, openid) {
  return callWxauth(apiURL, secret, { action: 'end_sessions', openid })
}

/**
 * Returns wxauth's WeChat access_token: the app shares the one token (and
 * quota) of the cluster instead of fetching its own, which could invalidate
 * wxauth's. With stale, the token WeChat just refused (40001, 42001), wxauth
 * replaces it once for the whole cluster.
 */
export async function accessToken(apiURL, secret, stale) {
  const ans = await callWxauth(apiURL, secret, stale ? { action: 'access_token', stale } : { action: 'access_token' })
  if (!ans?.access_token) throw new Error('wxauth access_token: no token in the answer')
  return ans.access_token
}

/**
 * Sends a subscribe message (template templateId, its data as WeChat wants
 * it) to openid through WeChat's API at wechatAPI (https://api.weixin.qq.com,
 * or wxmock), with wxauth's access_token. When WeChat refuses the token, it
 * asks wxauth for the next one and sends once more.
 */
export async function sendSubscribeMessage(apiURL, secret, wechatAPI, openid, templateId, data) {
  const payload = JSON.stringify({ touser: openid, template_id: templateId, data })
  let stale
  for (let attempt = 0; ; attempt++) {
    const token = await accessToken(apiURL, secret, stale)
    const res = await fetch(`${wechatAPI}/cgi-bin/message/subscribe/send?access_token=${encodeURIComponent(token)}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: payload,
      signal: AbortSignal.timeout(10_000),
    })
    const { errcode } = await res.json()
    if (!errcode) return
    if ((errcode === 40001 || errcode === 42001) && attempt === 0) {
      stale = token // refused: wxauth replaces it, once for the cluster
      continue
    }
    throw new Error(`WeChat subscribe/send: errcode ${errcode}`)
  }
}
