// End-to-end: the client through each adapter (wx, uni, Taro, with Node
// stand-ins for the framework objects) against a real Caddy running the
// repository's example.Caddyfile: the app guarded by wxauth, wxmock standing
// in for WeChat. The ports of the demo (8080, 9000, admin 2019) are replaced
// by free ones chosen at run time, so the test runs beside anything else.
//
// Caddy is $CADDY_BIN when set, else built from ./cmd/caddy into a temp dir.

import assert from 'node:assert/strict'
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

import { NONCE_PATTERN, WxAuthError, type Client, type PhoneInfo } from '../src/core.js'
import { createShim, kinds, type Shim } from './shims.js'

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url))
let app = ''
let mock = ''

interface WhoAmI {
  openid: string
  unionid: string
}

interface Stats {
  jscode2session: number
  getuserphonenumber: number
}

let caddy: ChildProcess | undefined
let tmp = ''
let output = ''

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number }
      s.close(() => resolve(port))
    })
  })
}

// example.Caddyfile with its fixed ports replaced; fails loudly when the demo
// no longer has the addresses this test expects, rather than testing something else.
function withPorts(caddyfile: string, admin: number, mockPort: number, appPort: number): string {
  const swaps: [RegExp, string][] = [
    [/^(\s*admin\s+)\S+/m, `$1127.0.0.1:${admin}`],
    [/127\.0\.0\.1:9000\b/g, `127.0.0.1:${mockPort}`],
    [/127\.0\.0\.1:8080\b/g, `127.0.0.1:${appPort}`],
  ]
  let out = caddyfile
  for (const [from, to] of swaps) {
    assert.match(out, from, `example.Caddyfile no longer matches ${from}`)
    out = out.replace(from, to)
  }
  assert.doesNotMatch(out.replace(/#.*$/gm, ''), /:(2019|8080|9000)\b/, 'a fixed demo port is left')
  return out
}

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

const calls = (shim: Shim) => shim.requests.map((r) => `${r.method} ${new URL(r.url).pathname} ${r.status}`)
const loginBodies = (shim: Shim) =>
  shim.requests.filter((r) => new URL(r.url).pathname === '/wx/login').map((r) => JSON.parse(r.body!) as { code: string; nonce: string })

before(async () => {
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
  const [admin, mockPort, appPort] = [await freePort(), await freePort(), await freePort()]
  app = `http://127.0.0.1:${appPort}`
  mock = `http://127.0.0.1:${mockPort}`
  const config = join(tmp, 'Caddyfile')
  await writeFile(config, withPorts(await readFile(join(repoRoot, 'example.Caddyfile'), 'utf8'), admin, mockPort, appPort))

  // cwd is the repository, as for the demo: the Caddyfile's paths are relative to it.
  const proc = spawn(bin, ['run', '--config', config, '--adapter', 'caddyfile'], {
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
  while (!(await answers(app + '/healthz')) || !(await answers(mock + '/wxmock/stats'))) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(`caddy exited (${proc.exitCode ?? proc.signalCode}):\n${output}`)
    }
    if (Date.now() > deadline) throw new Error(`caddy did not answer within 60s:\n${output}`)
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

for (const kind of kinds) {
  describe(`${kind} adapter against example.Caddyfile`, () => {
    // Users are per adapter, so that each adapter's openids are its own.
    function client(user: string): { c: Client; shim: Shim } {
      const shim = createShim(kind, `${kind}-${user}`, mock)
      return { c: shim.client({ baseURL: app }), shim }
    }

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

    test('each code goes out with its own nonce, from the framework random source where there is one', async () => {
      const { c, shim } = client('nina')
      await c.login()
      await c.login()
      const [a, b] = loginBodies(shim)
      assert.match(a!.nonce, NONCE_PATTERN)
      assert.match(b!.nonce, NONCE_PATTERN)
      assert.notEqual(a!.code, b!.code)
      assert.notEqual(a!.nonce, b!.nonce)
      // wx and Taro have getRandomValues; uni-app outside WeChat uses crypto.
      assert.equal(shim.randoms, kind === 'uni' ? 0 : 2)
    })

    test('a login whose answer was lost is sent again with the same code and nonce, and WeChat is asked once', async () => {
      const before = await getJSON<Stats>(mock + '/wxmock/stats')
      const { c, shim } = client('oscar')
      shim.loseLoginAnswers = 1
      const who = await c.request<WhoAmI>({ path: '/api/whoami' })
      assert.match(who.openid, /\S{8,}/)
      assert.equal(shim.logins, 1)
      assert.deepEqual(calls(shim), ['POST /wx/login 200', 'POST /wx/login 200', 'GET /api/whoami 200'])
      const [first, again] = loginBodies(shim)
      assert.deepEqual(again, first)
      const afterStats = await getJSON<Stats>(mock + '/wxmock/stats')
      assert.equal(afterStats.jscode2session - before.jscode2session, 1)
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
      const before = await getJSON<Stats>(mock + '/wxmock/stats')
      const { c, shim } = client('dave')
      const all = await Promise.all([1, 2, 3, 4, 5].map(() => c.request<WhoAmI>({ path: '/api/whoami' })))
      assert.equal(shim.logins, 1)
      assert.equal(new Set(all.map((w) => w.openid)).size, 1)
      assert.equal(loginBodies(shim).length, 1)
      const afterStats = await getJSON<Stats>(mock + '/wxmock/stats')
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

      const down = createShim(kind, `${kind}-frank`, mock).client({ baseURL: 'http://127.0.0.1:9' })
      err = await down.request({ path: '/api/whoami' }).catch((e: unknown) => e)
      assert.ok(err instanceof WxAuthError)
      assert.equal(err.status, 0)
      assert.equal(err.error, 'network_error')
    })

    test('decrypt returns the user data WeChat encrypted for this session, from an API result or an event', async () => {
      const { c } = client('grace')
      const who = await c.request<WhoAmI>({ path: '/api/whoami' })
      // Like wx.getUserInfo, after the login: encrypted with the current session_key.
      const info = await getJSON<{ encryptedData: string; iv: string; rawData: string; signature: string }>(
        `${mock}/wxmock/userinfo?user=${kind}-grace`,
      )
      const plain = await c.decrypt<{ openId: string; nickName: string; watermark: { appid: string } }>(info)
      assert.equal(plain.openId, who.openid)
      assert.equal(plain.nickName, `${kind}-grace`)
      assert.equal(plain.watermark.appid, 'wxdemo0123456789')

      // The same data as a component event hands it over (e.detail).
      const fromEvent = await c.decrypt<{ openId: string }>({ detail: info })
      assert.equal(fromEvent.openId, who.openid)

      // A tampered signature is refused with the contract's code.
      const err = await c.decrypt({ ...info, signature: '0'.repeat(40) }).catch((e: unknown) => e)
      assert.ok(err instanceof WxAuthError)
      assert.equal(err.status, 400)
      assert.equal(err.error, 'invalid_signature')
    })

    test('getPhoneNumber binds the number of the button code; a declined button sends nothing', async () => {
      const { c, shim } = client('heidi')
      const before = await getJSON<Stats>(mock + '/wxmock/stats')
      // What the getPhoneNumber button hands the page: e.detail.code.
      const { code } = await getJSON<{ code: string }>(mock + '/wxmock/phonecode?phone=13912345678')
      const info: PhoneInfo = await c.getPhoneNumber({ detail: { code, errMsg: 'getPhoneNumber:ok' } })
      assert.equal(info.purePhoneNumber, '13912345678')
      assert.equal(info.phoneNumber, '13912345678')
      assert.equal(String(info.countryCode), '86')
      assert.equal(info.watermark?.appid, 'wxdemo0123456789')
      const afterStats = await getJSON<Stats>(mock + '/wxmock/stats')
      assert.equal(afterStats.getuserphonenumber - before.getuserphonenumber, 1)

      // phone(code) does the same for a code the page got some other way.
      const second = await getJSON<{ code: string }>(mock + '/wxmock/phonecode?phone=13700000001')
      assert.equal((await c.phone(second.code)).purePhoneNumber, '13700000001')

      const sent = shim.requests.length
      const err = await c
        .getPhoneNumber({ detail: { errMsg: 'getPhoneNumber:fail user deny' } })
        .catch((e: unknown) => e)
      assert.ok(err instanceof WxAuthError)
      assert.equal(err.error, 'phone_denied')
      assert.equal(shim.requests.length, sent)
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
}
