// End to end: this app behind a real Caddy that runs ../Caddyfile (wxauth with
// app_hook and app_api, wxmock standing in for WeChat). Logs in, binds a phone number,
// decrypts user info, changes a role and bans through app_api, sends a
// subscribe message with wxauth's access_token, logs out, and checks that
// the app's store holds exactly what wxmock said.
//
// Caddy is $CADDY_BIN when set, else built from the repository's ./cmd/caddy.
// Every port is picked at run time.
//
//   npm run test:e2e

import assert from 'node:assert/strict'
import { execFile, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

import { readStore } from '../store.mjs'

const appDir = fileURLToPath(new URL('..', import.meta.url))
const repoRoot = fileURLToPath(new URL('../../../../', import.meta.url))
const secret = 'whsec_' + randomBytes(32).toString('base64')
const run = promisify(execFile)

let tmp = ''
let storeFile = ''
let site = ''
let mock = ''
const procs = []

async function freePort() {
  const srv = createServer()
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve))
  const { port } = srv.address()
  await new Promise((resolve) => srv.close(resolve))
  return port
}

// start spawns a process and keeps the tail of its output for error messages.
function start(cmd, args, opts) {
  const p = spawn(cmd, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] })
  p.output = ''
  const keep = (b) => (p.output = (p.output + b.toString()).slice(-8000))
  p.stdout.on('data', keep)
  p.stderr.on('data', keep)
  p.exited = new Promise((resolve) => p.once('exit', resolve))
  procs.push(p)
  return p
}

const gone = (p) => p.exitCode !== null || p.signalCode !== null

// eventually polls fn until it returns a truthy value, for at most ms.
async function eventually(what, fn, ms = 10_000, proc) {
  const deadline = Date.now() + ms
  for (;;) {
    const v = await fn().catch(() => undefined)
    if (v) return v
    if (proc && gone(proc)) throw new Error(`${what}: process exited (${proc.exitCode ?? proc.signalCode}):\n${proc.output}`)
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms${proc ? ':\n' + proc.output : ''}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'wxauth-app-e2e-'))
  storeFile = join(tmp, 'users.json')

  const app = start(process.execPath, ['server.mjs'], {
    cwd: appDir,
    env: { ...process.env, PORT: '0', STORE: storeFile, WXAUTH_SECRET: secret },
  })
  const appPort = await eventually('the app prints its port', async () => app.output.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/)?.[1], 10_000, app)

  let bin = process.env.CADDY_BIN
  if (!bin) {
    bin = join(tmp, 'caddy')
    await run('go', ['build', '-o', bin, './cmd/caddy'], {
      cwd: repoRoot,
      env: { GOTOOLCHAIN: 'local', ...process.env },
      maxBuffer: 16 << 20,
    })
  }
  const ports = { ADMIN_PORT: await freePort(), MOCK_PORT: await freePort(), SITE_PORT: await freePort(), APP_PORT: appPort }
  site = `http://127.0.0.1:${ports.SITE_PORT}`
  mock = `http://127.0.0.1:${ports.MOCK_PORT}`
  const caddy = start(bin, ['run', '--config', join(appDir, '..', 'Caddyfile'), '--adapter', 'caddyfile'], {
    cwd: tmp,
    env: {
      ...process.env,
      ...Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, String(v)])),
      WXAUTH_SECRET: secret,
      XDG_DATA_HOME: join(tmp, 'data'),
      XDG_CONFIG_HOME: join(tmp, 'config'),
    },
  })
  await eventually('caddy answers /healthz', async () => (await fetch(site + '/healthz')).ok, 60_000, caddy)
})

after(async () => {
  for (const p of procs) {
    if (gone(p)) continue
    p.kill('SIGTERM')
    const t = setTimeout(() => p.kill('SIGKILL'), 10_000)
    await p.exited
    clearTimeout(t)
  }
  if (tmp) await rm(tmp, { recursive: true, force: true })
})

async function call(method, url, { body, token } = {}) {
  const headers = {}
  if (body !== undefined) headers['content-type'] = 'application/json'
  if (token) headers.authorization = 'Bearer ' + token
  const res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
  const text = await res.text()
  return { status: res.status, body: text ? JSON.parse(text) : null }
}

async function mockCode(path) {
  const r = await call('GET', mock + path)
  assert.equal(r.status, 200, `${path}: ${JSON.stringify(r.body)}`)
  return r.body
}

async function login(user) {
  const { code } = await mockCode('/wxmock/login?user=' + user)
  return call('POST', site + '/wx/login', { body: { code } })
}

const sidOf = (token) => JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).sid

function admin(...args) {
  return run(process.execPath, ['admin.mjs', ...args], {
    cwd: appDir,
    env: { ...process.env, WXAUTH_SECRET: secret, WXAUTH_API: site + '/wx/app', WECHAT_API: mock, STORE: storeFile },
  })
}

// timesIn replaces every event time in the store by 'T' after checking it
// lies between from and to (unix seconds).
function timesIn(v, from, to) {
  if (Array.isArray(v) || typeof v !== 'object' || v === null) return v
  const out = {}
  for (const [k, x] of Object.entries(v)) {
    if (['time', 'login', 'logout', 'last_login'].includes(k) && typeof x === 'number') {
      assert.ok(x >= from && x <= to, `${k} ${x} not within ${from}..${to}`)
      out[k] = 'T'
    } else {
      out[k] = k === 'data' ? x : timesIn(x, from, to)
    }
  }
  return out
}

test('login, phone, decrypt, role, ban, notify and logout reach the app; its store holds what wxmock said', async () => {
  const from = Math.floor(Date.now() / 1000)

  // Log in: the hook registers the user and its claims reach the upstream.
  const a = await login('alice')
  assert.equal(a.status, 200, JSON.stringify(a.body))
  const alice = a.body
  const sidA = sidOf(alice.token)
  assert.ok(sidA, 'the token names its session')
  assert.deepEqual(await call('GET', site + '/api/whoami', { token: alice.token }), {
    status: 200,
    body: { openid: alice.openid, uid: '1', role: 'member' },
  })

  // Bind a phone number; the hook runs before the client gets the answer.
  const { code: phoneCode } = await mockCode('/wxmock/phonecode?phone=13912345678&cc=num')
  const ph = await call('POST', site + '/wx/phone', { body: { code: phoneCode }, token: alice.token })
  assert.equal(ph.status, 200, JSON.stringify(ph.body))
  assert.equal(ph.body.purePhoneNumber, '13912345678')

  // Decrypt the user info that wx.getUserInfo would give.
  const info = await mockCode('/wxmock/userinfo?user=alice')
  const dec = await call('POST', site + '/wx/decrypt', { body: info, token: alice.token })
  assert.equal(dec.status, 200, JSON.stringify(dec.body))
  assert.equal(dec.body.nickName, 'alice')
  // wxmock's own word for alice's ids, inside the encrypted data.
  assert.equal(dec.body.openId, alice.openid)
  assert.equal(dec.body.unionId, alice.unionid)
  const { watermark, ...profile } = dec.body
  assert.ok(watermark, 'the decrypted reply carries the watermark')

  // A new role through app_api reaches the same token's requests.
  await admin('role', alice.openid, 'admin')
  await eventually('the role claim follows', async () => {
    const r = await call('GET', site + '/api/whoami', { token: alice.token })
    return r.status === 200 && r.body.role === 'admin'
  })

  // Ban: app_api end_sessions refuses the token; the hook refuses the next login.
  await admin('ban', alice.openid)
  await eventually('the banned token is refused', async () => {
    const r = await call('GET', site + '/api/whoami', { token: alice.token })
    return r.status === 401 && r.body.error === 'invalid_token'
  })
  const again = await login('alice')
  assert.equal(again.status, 502, JSON.stringify(again.body))
  assert.equal(again.body.error, 'hook_failed')
  assert.equal(again.body.token, undefined)

  // Another user logs in and out; the logout event is best effort, after the fact.
  const b = await login('bob')
  assert.equal(b.status, 200, JSON.stringify(b.body))
  const bob = b.body
  const sidB = sidOf(bob.token)

  // A subscribe message with wxauth's access_token; after WeChat expired
  // every token, the app reports its token stale and sends again.
  await admin('notify', bob.openid, 'tmpl-welcome', 'welcome')
  await admin('notify', bob.openid, 'tmpl-welcome', 'welcome')
  assert.equal((await mockCode('/wxmock/stats')).subscribe_send, 2)
  assert.equal((await call('POST', mock + '/wxmock/expire_tokens')).status, 204)
  await admin('notify', bob.openid, 'tmpl-welcome', 'welcome again')
  assert.equal((await mockCode('/wxmock/stats')).subscribe_send, 4, 'refused once, then sent')
  assert.equal((await call('POST', site + '/wx/logout', { token: bob.token })).status, 204)
  await eventually('the logout event is stored', async () => (await readStore(storeFile)).users[bob.openid]?.sessions[sidB]?.logout)

  const to = Math.floor(Date.now() / 1000)
  const users = timesIn((await readStore(storeFile)).users, from, to)
  const unionid = (u) => (u.unionid ? { unionid: u.unionid } : {})
  assert.deepEqual(users, {
    [alice.openid]: {
      uid: '1',
      openid: alice.openid,
      ...unionid(alice),
      role: 'admin',
      banned: true,
      logins: 1,
      last_login: 'T',
      sessions: { [sidA]: { login: 'T' } },
      phone: { phoneNumber: ph.body.phoneNumber, purePhoneNumber: '13912345678', countryCode: '86', sid: sidA, time: 'T' },
      profile: { data: profile, sid: sidA, time: 'T' },
    },
    [bob.openid]: {
      uid: '2',
      openid: bob.openid,
      ...unionid(bob),
      role: 'member',
      banned: false,
      logins: 1,
      last_login: 'T',
      sessions: { [sidB]: { login: 'T', logout: 'T' } },
    },
  })
})
