// Unit tests: events signed with a known secret go over real HTTP to the app;
// the admin command talks to a stand-in for wxauth's app_api.

import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { createHmac } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

import { Webhook } from 'standardwebhooks'

import { createApp } from '../app.mjs'
import { readStore, update } from '../store.mjs'

const key = Buffer.from('0123456789abcdef0123456789abcdef')
const secret = 'whsec_' + key.toString('base64')
const appDir = fileURLToPath(new URL('..', import.meta.url))

let n = 0
function event(kind, extra = {}) {
  n++
  return {
    id: `evt_${n}`,
    event: kind,
    time: 1767225600 + n,
    app_id: 'wxtest0123456789',
    openid: 'o-alice',
    unionid: 'u-alice',
    sid: 's-1',
    claims: {},
    ...extra,
  }
}

// listen starts server on a free loopback port and closes it after the test.
async function listen(t, server) {
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(() => new Promise((resolve) => server.close(resolve)))
  return `http://127.0.0.1:${server.address().port}`
}

// start runs the app with a fresh store.
async function start(t) {
  const dir = await mkdtemp(join(tmpdir(), 'wxauth-app-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'users.json')
  const url = await listen(t, createServer(createApp({ secret, storeFile: file })))
  return { url: url + '/wxauth', file }
}

const now = () => Math.floor(Date.now() / 1000)

// send posts ev signed as wxauth signs it; opts change what is sent.
async function send(url, ev, opts = {}) {
  const body = opts.body ?? JSON.stringify(ev)
  const id = opts.id ?? ev.id
  const ts = opts.ts ?? now()
  const headers = {
    'content-type': 'application/json',
    'webhook-id': id,
    'webhook-timestamp': String(ts),
    'webhook-signature': opts.signature ?? new Webhook(opts.secret ?? secret).sign(id, new Date(ts * 1000), body),
    'x-wxauth-event': ev?.event ?? '',
  }
  for (const h of opts.omit ?? []) delete headers[h]
  const res = await fetch(url, { method: opts.method ?? 'POST', headers, body: opts.sentBody ?? body })
  const text = await res.text()
  return { status: res.status, body: text ? JSON.parse(text) : null }
}

test('a signed login registers the user and is answered with claims', async (t) => {
  const { url, file } = await start(t)
  const login = event('login', { first_login: true })
  assert.deepEqual(await send(url, login), { status: 200, body: { uid: '1', role: 'member' } })
  const bob = event('login', { openid: 'o-bob', unionid: undefined, sid: 's-2' })
  assert.deepEqual(await send(url, bob), { status: 200, body: { uid: '2', role: 'member' } })

  const db = await readStore(file)
  assert.deepEqual(db.users['o-alice'], {
    uid: '1',
    openid: 'o-alice',
    unionid: 'u-alice',
    role: 'member',
    banned: false,
    logins: 1,
    last_login: login.time,
    sessions: { 's-1': { login: login.time } },
  })
  assert.equal(db.users['o-bob'].unionid, undefined)
})

test('phone, decrypt and logout are stored; their answers set no claims', async (t) => {
  const { url, file } = await start(t)
  const login = event('login')
  await send(url, login)
  const phone = event('phone', { phone: { phoneNumber: '+86 139', purePhoneNumber: '139', countryCode: 86 } })
  assert.deepEqual(await send(url, phone), { status: 204, body: null })
  const data = { openId: 'o-alice', nickName: 'alice', city: 'Guangzhou' }
  const decrypt = event('decrypt', { data })
  assert.deepEqual(await send(url, decrypt), { status: 204, body: null })
  const logout = event('logout')
  assert.deepEqual(await send(url, logout), { status: 204, body: null })

  const u = (await readStore(file)).users['o-alice']
  assert.deepEqual(u.phone, { phoneNumber: '+86 139', purePhoneNumber: '139', countryCode: '86', sid: 's-1', time: phone.time })
  assert.deepEqual(u.profile, { data, sid: 's-1', time: decrypt.time })
  assert.deepEqual(u.sessions, { 's-1': { login: login.time, logout: logout.time } })
  assert.equal(u.logins, 1)
  assert.deepEqual(await send(url, event('login', { openid: 'o-bob' })), { status: 200, body: { uid: '2', role: 'member' } })
})

test('a replayed webhook-id is applied once and answered as the first time', async (t) => {
  const { url, file } = await start(t)
  const login = event('login')
  const first = await send(url, login)
  assert.equal(first.status, 200)
  // The same delivery again, and a retry signed later with the same id.
  assert.deepEqual(await send(url, login), first)
  assert.deepEqual(await send(url, login, { ts: now() + 10 }), first)
  assert.equal((await readStore(file)).users['o-alice'].logins, 1)

  const phone = event('phone', { phone: { phoneNumber: '1', purePhoneNumber: '1', countryCode: '86' } })
  await send(url, phone)
  const other = { ...phone, phone: { phoneNumber: '2', purePhoneNumber: '2', countryCode: '86' } }
  assert.deepEqual(await send(url, other), { status: 204, body: null })
  assert.equal((await readStore(file)).users['o-alice'].phone.phoneNumber, '1')
})

test('the signature is v1, base64 HMAC-SHA256 of id.timestamp.body with the base64 part of whsec_', async (t) => {
  const { url } = await start(t)
  const login = event('login')
  const body = JSON.stringify(login)
  const ts = now()
  const mac = createHmac('sha256', key).update(`${login.id}.${ts}.${body}`).digest('base64')
  // Several signatures may be sent (key rotation); one that matches is enough.
  const res = await send(url, login, { ts, signature: `v1,c29tZXRoaW5nIGVsc2U= v1,${mac}` })
  assert.equal(res.status, 200)
})

test('bad signatures, stale or future timestamps and missing headers are refused; nothing is stored', async (t) => {
  const { url, file } = await start(t)
  const login = event('login')
  const other = 'whsec_' + Buffer.from('another secret, another app....').toString('base64')
  const cases = [
    ['signed with another secret', { secret: other }, 401],
    ['body changed after signing', { sentBody: JSON.stringify({ ...login, openid: 'o-mallory' }) }, 401],
    ['timestamp 6 minutes old', { ts: now() - 360 }, 401],
    ['timestamp 6 minutes ahead', { ts: now() + 360 }, 401],
    ['timestamp not a number', { ts: 'yesterday' }, 401],
    ['signature of another version', { signature: 'v2,' + 'A'.repeat(44) }, 401],
    ['no webhook-id', { omit: ['webhook-id'] }, 400],
    ['no webhook-timestamp', { omit: ['webhook-timestamp'] }, 400],
    ['no webhook-signature', { omit: ['webhook-signature'] }, 400],
  ]
  for (const [name, opts, status] of cases) {
    const res = await send(url, login, opts)
    assert.equal(res.status, status, name)
    assert.equal(typeof res.body.error, 'string', name)
  }
  assert.deepEqual((await readStore(file)).users, {})
  // The refusals did not use up the id: the genuine event still applies.
  assert.equal((await send(url, login)).status, 200)
})

test('malformed events are refused with 400; events this app does not know are ignored', async (t) => {
  const { url, file } = await start(t)
  assert.equal((await send(url, null, { id: 'evt_x1', body: 'not json' })).status, 400)
  assert.equal((await send(url, null, { id: 'evt_x2', body: '[1,2]' })).status, 400)
  assert.equal((await send(url, event('login', { openid: '' }))).status, 400)
  assert.equal((await send(url, event('phone', { phone: 'x' }))).status, 400)
  assert.equal((await send(url, event('decrypt', { data: null }))).status, 400)
  assert.equal((await send(url, event('login', { sid: 7 }))).status, 400)
  assert.deepEqual(await send(url, event('future_event')), { status: 204, body: null })
  assert.deepEqual((await readStore(file)).users, {})
})

test('wrong path, wrong method and a large body', async (t) => {
  const { url } = await start(t)
  assert.equal((await fetch(url.replace('/wxauth', '/other'), { method: 'POST' })).status, 404)
  const get = await fetch(url)
  assert.equal(get.status, 405)
  assert.equal(get.headers.get('allow'), 'POST')
  const big = event('decrypt', { data: { blob: 'x'.repeat(70_000) } })
  assert.equal((await send(url, big)).status, 413)
})

test('a banned user is refused at login', async (t) => {
  const { url, file } = await start(t)
  await send(url, event('login'))
  await update(file, (db) => {
    db.users['o-alice'].banned = true
  })
  assert.deepEqual(await send(url, event('login', { sid: 's-2' })), { status: 403, body: { error: 'banned' } })
  const u = (await readStore(file)).users['o-alice']
  assert.equal(u.logins, 1)
  assert.deepEqual(Object.keys(u.sessions), ['s-1'])
})

// wxauthStandIn verifies app_api calls the way wxauth does and records them.
async function wxauthStandIn(t, status = 204) {
  const calls = []
  const seen = new Set()
  const wh = new Webhook(secret)
  const url = await listen(
    t,
    createServer(async (req, res) => {
      const chunks = []
      for await (const c of req) chunks.push(c)
      try {
        const body = wh.verify(Buffer.concat(chunks), req.headers)
        assert.ok(!seen.has(req.headers['webhook-id']), 'a fresh webhook-id per call')
        seen.add(req.headers['webhook-id'])
        calls.push({ path: req.url, body })
        if (body.action === 'access_token' && status === 204) {
          // tok-1 until the app reports it stale, then tok-2.
          const token = body.stale ? 'tok-2' : 'tok-1'
          res.writeHead(200, { 'content-type': 'application/json' })
          res.end(JSON.stringify({ access_token: token, expires_at: Math.floor(Date.now() / 1000) + 7200 }))
          return
        }
        res.writeHead(status).end(status === 204 ? undefined : '{"error":"invalid_signature"}')
      } catch (e) {
        calls.push({ error: e.message })
        res.writeHead(401).end()
      }
    }),
  )
  return { api: url + '/wx/app', calls }
}

const run = promisify(execFile)
function admin(env, ...args) {
  return run(process.execPath, ['admin.mjs', ...args], { cwd: appDir, env: { ...process.env, ...env } })
}

test('admin: role and ban change the store and call app_api, signed', async (t) => {
  const { url, file } = await start(t)
  const { api, calls } = await wxauthStandIn(t)
  const env = { WXAUTH_SECRET: secret, WXAUTH_API: api, STORE: file }
  await send(url, event('login'))

  await admin(env, 'role', 'o-alice', 'editor')
  assert.deepEqual(calls, [{ path: '/wx/app', body: { action: 'set_claims', openid: 'o-alice', claims: { role: 'editor' } } }])
  assert.deepEqual((await send(url, event('login'))).body, { uid: '1', role: 'editor' })

  await admin(env, 'ban', 'o-alice')
  assert.deepEqual(calls[1], { path: '/wx/app', body: { action: 'end_sessions', openid: 'o-alice' } })
  assert.equal((await send(url, event('login'))).status, 403)

  await admin(env, 'unban', 'o-alice')
  assert.equal(calls.length, 2, 'unban only changes the store')
  assert.equal((await send(url, event('login'))).status, 200)
})

test('admin: an unknown user or a refused call fails loudly', async (t) => {
  const { url, file } = await start(t)
  const { api, calls } = await wxauthStandIn(t, 401)
  const env = { WXAUTH_SECRET: secret, WXAUTH_API: api, STORE: file }
  await assert.rejects(admin(env, 'ban', 'o-nobody'), (e) => e.code === 1 && /no user o-nobody/.test(e.stderr))
  assert.equal(calls.length, 0)
  await send(url, event('login'))
  await assert.rejects(admin(env, 'ban', 'o-alice'), (e) => e.code === 1 && /end_sessions: 401/.test(e.stderr))
  await assert.rejects(admin(env, 'role', 'o-alice'), (e) => e.code === 2 && /usage/.test(e.stderr))
})

// A subscribe message goes out with wxauth's token; when WeChat refuses it,
// the app reports it stale once and sends with the next one.
test("admin: notify sends a subscribe message with wxauth's access_token", async (t) => {
  const { api, calls } = await wxauthStandIn(t)
  const sent = []
  const wechat = await listen(
    t,
    createServer(async (req, res) => {
      const chunks = []
      for await (const c of req) chunks.push(c)
      const msg = JSON.parse(Buffer.concat(chunks).toString())
      const u = new URL(req.url, 'http://x')
      const token = u.searchParams.get('access_token')
      sent.push(token)
      let errcode = 0
      if (u.pathname !== '/cgi-bin/message/subscribe/send' || msg.touser !== 'o-alice' || msg.template_id !== 'tmpl') errcode = 47001
      else if (token !== 'tok-2') errcode = 40001
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ errcode }))
    }),
  )
  const env = { WXAUTH_SECRET: secret, WXAUTH_API: api, WECHAT_API: wechat }
  await admin(env, 'notify', 'o-alice', 'tmpl', 'shipped')
  assert.deepEqual(
    calls.map((c) => c.body),
    [{ action: 'access_token' }, { action: 'access_token', stale: 'tok-1' }],
  )
  assert.deepEqual(sent, ['tok-1', 'tok-2'])
  // Any other errcode is an error.
  await assert.rejects(admin(env, 'notify', 'o-bob', 'tmpl', 'x'), (e) => e.code === 1 && /47001/.test(e.stderr))
})
