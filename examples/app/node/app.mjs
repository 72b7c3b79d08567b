// The app's side of wxauth's events: verify the Standard Webhooks signature,
// apply each event once (dedupe by webhook-id) and answer claims.

import { Webhook, WebhookVerificationError } from 'standardwebhooks'

import { update } from './store.mjs'

// wxauth's events are small; anything larger is not one.
const maxBody = 64 << 10
// How long a webhook-id is remembered. wxauth sends a retried event with the
// same id within minutes; signatures older than 5 minutes are refused anyway.
const seenForSeconds = 24 * 3600

const isObject = (v) => typeof v === 'object' && v !== null && !Array.isArray(v)

/** Why ev is not an event this app can apply, or '' when it is. */
export function invalidEvent(ev) {
  if (!isObject(ev) || typeof ev.event !== 'string') return 'not an event object'
  if (!['login', 'phone', 'decrypt', 'logout'].includes(ev.event)) return ''
  if (typeof ev.openid !== 'string' || ev.openid === '') return 'openid missing'
  if (typeof ev.sid !== 'string' || ev.sid === '') return 'sid missing'
  if (typeof ev.time !== 'number') return 'time missing'
  if (ev.event === 'phone' && !isObject(ev.phone)) return 'phone missing'
  if (ev.event === 'decrypt' && !isObject(ev.data)) return 'data missing'
  return ''
}

// The user of ev.openid; created when an event comes before any login the
// store knows of (a store restored from an old backup, say).
function userOf(db, ev) {
  let u = db.users[ev.openid]
  if (!u) {
    u = { uid: String(db.next_uid++), openid: ev.openid, role: 'member', banned: false, logins: 0, sessions: {} }
    db.users[ev.openid] = u
  }
  if (ev.unionid) u.unionid = ev.unionid
  return u
}

/**
 * Applies a verified event to db and returns the answer for wxauth:
 * { status, body }, body null for no body.
 */
export function applyEvent(db, ev) {
  switch (ev.event) {
    case 'login': {
      // Refusing a login: wxauth answers the client 502 hook_failed.
      if (db.users[ev.openid]?.banned) return { status: 403, body: { error: 'banned' } }
      const u = userOf(db, ev)
      u.logins++
      u.last_login = ev.time
      u.sessions[ev.sid] = { login: ev.time }
      // These claims reach the upstream as headers and placeholders.
      return { status: 200, body: { uid: u.uid, role: u.role } }
    }
    case 'phone': {
      // WeChat answered this number for a phone code this session presented.
      const p = ev.phone
      userOf(db, ev).phone = {
        phoneNumber: String(p.phoneNumber ?? ''),
        purePhoneNumber: String(p.purePhoneNumber ?? ''),
        countryCode: String(p.countryCode ?? ''), // WeChat sends "86" or 86
        sid: ev.sid,
        time: ev.time,
      }
      return { status: 204, body: null }
    }
    case 'decrypt':
      userOf(db, ev).profile = { data: ev.data, sid: ev.sid, time: ev.time }
      return { status: 204, body: null }
    case 'logout': {
      const u = userOf(db, ev)
      u.sessions[ev.sid] = { ...u.sessions[ev.sid], logout: ev.time }
      return { status: 204, body: null } // wxauth ignores this answer
    }
    default:
      return { status: 204, body: null } // an event this app does not use
  }
}

function reply(res, status, body) {
  if (body === null) {
    res.writeHead(status).end()
    return
  }
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body))
}

async function readBody(req) {
  const chunks = []
  let size = 0
  // Read to the end even when too large, so the answer reaches the sender.
  for await (const c of req) {
    size += c.length
    if (size <= maxBody) chunks.push(c)
  }
  return size > maxBody ? null : Buffer.concat(chunks)
}

/**
 * The request handler for node:http. secret is app_hook's whsec_... secret,
 * storeFile the JSON store, log a function for one line per event.
 */
export function createApp({ secret, storeFile, log = () => {} }) {
  const wh = new Webhook(secret)

  async function handle(req, res) {
    if (new URL(req.url, 'http://app').pathname !== '/wxauth') return reply(res, 404, { error: 'not found' })
    if (req.method !== 'POST') {
      res.setHeader('allow', 'POST')
      return reply(res, 405, { error: 'method not allowed' })
    }
    const body = await readBody(req)
    if (body === null) return reply(res, 413, { error: 'body too large' })
    const id = req.headers['webhook-id']
    if (!id || !req.headers['webhook-timestamp'] || !req.headers['webhook-signature']) {
      return reply(res, 400, { error: 'missing webhook-id, webhook-timestamp or webhook-signature' })
    }
    try {
      // Checks the HMAC and that the timestamp is within 5 minutes of now.
      wh.verify(body, req.headers, { jsonParse: false })
    } catch (e) {
      if (!(e instanceof WebhookVerificationError)) throw e
      return reply(res, 401, { error: 'invalid signature' })
    }
    let ev
    try {
      ev = JSON.parse(body.toString('utf8'))
    } catch {
      return reply(res, 400, { error: 'body is not JSON' })
    }
    const bad = invalidEvent(ev)
    if (bad) return reply(res, 400, { error: bad })

    const answer = await update(storeFile, (db) => {
      const now = Math.floor(Date.now() / 1000)
      for (const [k, v] of Object.entries(db.seen)) {
        if (now - v.time > seenForSeconds) delete db.seen[k]
      }
      // A retry: answer as before, change nothing.
      if (db.seen[id]) return { ...db.seen[id], replay: true }
      const a = applyEvent(db, ev)
      db.seen[id] = { time: now, status: a.status, body: a.body }
      return a
    })
    log(`${ev.event} ${id} -> ${answer.status}${answer.replay ? ' (seen before)' : ''}`)
    reply(res, answer.status, answer.body)
  }

  return (req, res) => {
    handle(req, res).catch((e) => {
      log(`error: ${e.message}`)
      if (!res.headersSent) reply(res, 500, { error: 'internal error' })
      else res.destroy()
    })
  }
}
