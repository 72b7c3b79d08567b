// End-to-end: the client, with a Node stand-in for wx, against a real Caddy
// running the repository's example.Caddyfile (the app on :8080 guarded by
// wxauth, wxmock standing in for WeChat on :9000).
//
// Caddy is $CADDY_BIN when set, else built from ./cmd/caddy into a temp dir.

import assert from 'node:assert/strict'
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

import { createClient, WxAuthError, type Client, type PhoneInfo } from '../src/wxauth'
import { createWxShim, type WxShim } from './wxshim'

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url))
const app = 'http://127.0.0.1:8080'
const mock = 'http://127.0.0.1:9000'

interface WhoAmI {
  openid: string
  unionid: string
}

let caddy: ChildProcess | undefined
let tmp = ''
let output = ''

async function answers(url: string): Promise<boolean> {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(1000) })
    await r.body?.cancel()
    return r.ok
  } catch {
    return false
  }
}

async function getJSON<T>(url: string): Promise<T> {
  const r = await fetch(url)
  assert.equal(r.status, 200, `GET ${url}: ${r.status}`)
  return (await r.json()) as T
}

function client(user: string): { c: Client; shim: WxShim } {
  const shim = createWxShim(user, mock)
  return { c: createClient({ baseURL: app, wx: shim.wx }), shim }
}

const calls = (shim: WxShim) => shim.requests.map((r) => `${r.method} ${new URL(r.url).pathname} ${r.status}`)

before(async () => {
  if (await answers(app + '/healthz')) {
    throw new Error('something already answers on 127.0.0.1:8080; stop it first')
  }
  tmp = await mkdtemp(join(tmpdir(), 'wxauth-e2e-'))
  let bin = process.env.CADDY_BIN
  if (!bin) {
    bin = join(tmp, 'caddy')
    await promisify(execFile)('go', ['build', '-o', bin, './cmd/caddy'], {
      cwd: repoRoot,
      env: { GOTOOLCHAIN: 'local', ...process.env },
      maxBuffer: 16 << 20,
    })
  }
  const proc = spawn(bin, ['run', '--config', 'example.Caddyfile', '--adapter', 'caddyfile'], {
    cwd: repoRoot,
    env: { ...process.env, XDG_DATA_HOME: join(tmp, 'data'), XDG_CONFIG_HOME: join(tmp, 'config') },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  caddy = proc
  const keep = (b: Buffer) => (output = (output + b.toString()).slice(-8000))
  proc.stdout!.on('data', keep)
  proc.stderr!.on('data', keep)
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
  const deadline = Date.now() + 60_000
  while (!(await answers(app + '/healthz'))) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(`caddy exited (${proc.exitCode ?? proc.signalCode}):\n${output}`)
    }
    if (Date.now() > deadline) throw new Error(`caddy did not answer /healthz within 60s:\n${output}`)
    await Promise.race([exited, new Promise((r) => setTimeout(r, 200))])
  }
})

after(async () => {
  const proc = caddy
  if (proc && proc.exitCode === null && proc.signalCode === null) {
    const exited = new Promise((resolve) => proc.once('exit', resolve))
    proc.kill('SIGTERM')
    const t = setTimeout(() => proc.kill('SIGKILL'), 10_000)
    await exited
    clearTimeout(t)
  }
  if (tmp) await rm(tmp, { recursive: true, force: true })
})

describe('client against example.Caddyfile', () => {
  test('first call logs in once; the next one reuses the stored token', async () => {
    const { c, shim } = client('alice')
    const who = await c.request<WhoAmI>({ path: '/api/whoami' })
    assert.equal(shim.logins, 1)
    assert.match(who.openid, /\S{8,}/)
    assert.deepEqual(calls(shim), ['POST /wx/login 200', 'GET /api/whoami 200'])
    const token = c.token()
    assert.ok(token)
    assert.equal(shim.requests[1]!.authorization, 'Bearer ' + token)

    assert.deepEqual(await c.request<WhoAmI>({ path: '/api/whoami' }), who)
    assert.equal(shim.logins, 1)
    assert.equal(shim.requests.length, 3)
    assert.equal(c.token(), token)

    // openid is stable per user, and another user's differs.
    const again = client('alice')
    assert.equal((await again.c.request<WhoAmI>({ path: '/api/whoami' })).openid, who.openid)
    const bob = client('bob')
    assert.notEqual((await bob.c.request<WhoAmI>({ path: '/api/whoami' })).openid, who.openid)
  })

  test('a corrupted stored token is refused, then one re-login and one retry succeed', async () => {
    const { c, shim } = client('carol')
    const who = await c.request<WhoAmI>({ path: '/api/whoami' })
    const stored = shim.storage.get('wxauth_token') as { token: string }
    // Change a character early in the signature (the last one may only carry padding bits).
    const i = stored.token.lastIndexOf('.') + 2
    const bad = stored.token.slice(0, i) + (stored.token[i] === 'x' ? 'y' : 'x') + stored.token.slice(i + 1)
    shim.storage.set('wxauth_token', { ...stored, token: bad })

    assert.deepEqual(await c.request<WhoAmI>({ path: '/api/whoami' }), who)
    assert.equal(shim.logins, 2)
    assert.deepEqual(calls(shim).slice(2), ['GET /api/whoami 401', 'POST /wx/login 200', 'GET /api/whoami 200'])
  })

  test('five concurrent calls without a token share one login', async () => {
    const before = await getJSON<{ jscode2session: number }>(mock + '/wxmock/stats')
    const { c, shim } = client('dave')
    const all = await Promise.all([1, 2, 3, 4, 5].map(() => c.request<WhoAmI>({ path: '/api/whoami' })))
    assert.equal(shim.logins, 1)
    assert.equal(new Set(all.map((w) => w.openid)).size, 1)
    assert.equal(shim.requests.filter((r) => r.url.endsWith('/wx/login')).length, 1)
    const afterStats = await getJSON<{ jscode2session: number }>(mock + '/wxmock/stats')
    assert.equal(afterStats.jscode2session - before.jscode2session, 1)
  })

  test('a code WeChat rejects surfaces as WxAuthError invalid_code, without retrying', async () => {
    const { c, shim } = client('erin')
    shim.code = 'invalid'
    const err = await c.request({ path: '/api/whoami' }).catch((e: unknown) => e)
    assert.ok(err instanceof WxAuthError, String(err))
    assert.equal(err.status, 401)
    assert.equal(err.error, 'invalid_code')
    assert.equal(err.errcode, 40029)
    assert.ok(err.message)
    assert.equal(shim.logins, 1)
    assert.deepEqual(calls(shim), ['POST /wx/login 401'])
    assert.equal(c.token(), undefined)
  })

  test('contract errors and network failures are typed', async () => {
    const { c } = client('frank')
    let err = await c.request({ path: '/api/whoami', auth: false }).catch((e: unknown) => e)
    assert.ok(err instanceof WxAuthError)
    assert.equal(err.status, 401)
    assert.equal(err.error, 'missing_token')

    assert.deepEqual(await c.request({ path: '/healthz', auth: false }), { ok: true })

    const shim = createWxShim('frank', mock)
    const down = createClient({ baseURL: 'http://127.0.0.1:9', wx: shim.wx })
    err = await down.request({ path: '/api/whoami' }).catch((e: unknown) => e)
    assert.ok(err instanceof WxAuthError)
    assert.equal(err.status, 0)
    assert.equal(err.error, 'network_error')
  })

  test('decrypt returns the user data WeChat encrypted for this session', async () => {
    const { c } = client('grace')
    const who = await c.request<WhoAmI>({ path: '/api/whoami' })
    // Like wx.getUserInfo, after the login: encrypted with the current session_key.
    const info = await getJSON<{ encryptedData: string; iv: string; rawData: string; signature: string }>(
      mock + '/wxmock/userinfo?user=grace',
    )
    const plain = await c.decrypt<{ openId: string; watermark: { appid: string } }>(info)
    assert.equal(plain.openId, who.openid)
    assert.equal(plain.watermark.appid, 'wxdemo0123456789')

    // A tampered signature is refused with the contract's code.
    const err = await c.decrypt({ ...info, signature: '0'.repeat(40) }).catch((e: unknown) => e)
    assert.ok(err instanceof WxAuthError)
    assert.equal(err.status, 400)
    assert.equal(err.error, 'invalid_signature')
  })

  test('phone resolves a getPhoneNumber code into phone_info', async () => {
    const { c } = client('heidi')
    const { code } = await getJSON<{ code: string }>(mock + '/wxmock/phonecode?user=heidi')
    const info: PhoneInfo = await c.phone(code)
    assert.match(info.phoneNumber, /\d{5,}/)
    assert.match(info.purePhoneNumber, /^\d+$/)
    assert.ok(String(info.countryCode).length > 0)
  })

  test('session reports the session', async () => {
    const { c } = client('ivan')
    const who = await c.request<WhoAmI>({ path: '/api/whoami' })
    const s = await c.session()
    assert.equal(s.openid, who.openid)
    assert.equal(s.session_key_valid, true)
    assert.ok(s.expires_at > Date.now() / 1000)
  })

  test('logout ends the session; the next call logs in again', async () => {
    const { c, shim } = client('judy')
    const who = await c.request<WhoAmI>({ path: '/api/whoami' })
    const old = c.token()!
    await c.logout()
    assert.equal(c.token(), undefined)
    assert.equal(calls(shim).at(-1), 'POST /wx/logout 204')

    // The server refuses the old token at once.
    const r = await fetch(app + '/api/whoami', { headers: { Authorization: 'Bearer ' + old } })
    assert.equal(r.status, 401)
    assert.equal(((await r.json()) as { error: string }).error, 'invalid_token')

    assert.deepEqual(await c.request<WhoAmI>({ path: '/api/whoami' }), who)
    assert.equal(shim.logins, 2)
    assert.notEqual(c.token(), old)
  })
})
