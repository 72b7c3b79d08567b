// End-to-end: the client through each adapter (wx, uni, Taro, with Node
// stand-ins for the framework objects) against a real Caddy running the
// repository's example.Caddyfile: the app guarded by wxauth, wxmock standing
// in for WeChat. The ports of the demo (8080, 9000, admin 2019) are replaced
// by free ones chosen at run time, so the test runs beside anything else.
// The wxauth block also gets an app_hook (login and phone events) pointing at
// a small app server in this test, which checks each event's Standard
// Webhooks signature itself and records what it got.
//
// Caddy is $CADDY_BIN when set, else built from ./cmd/caddy into a temp dir.

import assert from 'node:assert/strict'
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer as createHTTPServer, type IncomingHttpHeaders, type Server } from 'node:http'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, afterEach, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

import { isRefusal, NONCE_PATTERN, WxAuthError, type Client, type PhoneInfo } from '../src/core.js'
import { createWxClient } from '../src/wx.js'
import { createHostShim, createShim, hostPlatforms, kinds, type HostGlobal, type Shim } from './shims.js'

const repoRoot = fileURLToPath(new URL('../../', import.meta.url))
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

// What wxauth sends the app (login and phone events; never a token or session_key).
interface AppEvent {
  id: string
  event: string
  time: number
  app_id: string
  openid: string
  unionid?: string
  sid: string
  first_login?: boolean
  claims: Record<string, unknown>
  phone?: { phoneNumber: string; purePhoneNumber: string; countryCode: string | number }
}

// One event as the test app got it.
interface Received {
  /** The webhook-id header. */
  id: string
  /** The X-Wxauth-Event header. */
  kind: string
  /** '' when the Standard Webhooks signature checked out, else why not. */
  refused: string
  /** The status the app answered. */
  status: number
  raw: string
  body: AppEvent
}

// The app behind Caddy, as far as wxauth's events go. It answers 204, or
// what `answer` says; an event whose signature fails gets 401.
const hook = {
  url: '',
  secret: '',
  events: [] as Received[],
  /** A status, or a status with a JSON body (a refusal on purpose is 403 with {error, message}). */
  answer: undefined as ((ev: AppEvent) => number | { status: number; body: unknown } | undefined) | undefined,
  /** Runs as an event arrives, before it is answered. */
  onEvent: undefined as ((r: Received) => void) | undefined,
  server: undefined as Server | undefined,
}

// Checks a Standard Webhooks signature: HMAC-SHA256 with the key after
// whsec_ (base64) over "id.timestamp.body", sent as "v1,<base64>" (several
// space-separated ones are allowed), and a timestamp within 5 minutes.
function signatureProblem(secret: string, h: IncomingHttpHeaders, raw: string, nowSeconds: number): string {
  const id = h['webhook-id']
  const ts = h['webhook-timestamp']
  const sigs = h['webhook-signature']
  if (typeof id !== 'string' || typeof ts !== 'string' || typeof sigs !== 'string' || !id) return 'headers missing'
  if (!/^\d+$/.test(ts) || Math.abs(nowSeconds - Number(ts)) > 300) return 'timestamp too far off'
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64')
  const want = createHmac('sha256', key).update(`${id}.${ts}.${raw}`).digest()
  for (const sig of sigs.split(' ')) {
    const [version, b64] = sig.split(',', 2)
    const got = Buffer.from(b64 ?? '', 'base64')
    if (version === 'v1' && got.length === want.length && timingSafeEqual(got, want)) return ''
  }
  return 'no matching v1 signature'
}

async function startHook(): Promise<void> {
  hook.secret = 'whsec_' + randomBytes(32).toString('base64')
  const server = createHTTPServer(async (req, res) => {
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    const raw = Buffer.concat(chunks).toString()
    let refused = signatureProblem(hook.secret, req.headers, raw, Date.now() / 1000)
    let body = {} as AppEvent
    try {
      body = JSON.parse(raw) as AppEvent
    } catch {
      refused ||= 'not JSON'
    }
    const answer = refused ? 401 : (hook.answer?.(body) ?? 204)
    const status = typeof answer === 'number' ? answer : answer.status
    const r: Received = {
      id: String(req.headers['webhook-id']),
      kind: String(req.headers['x-wxauth-event']),
      refused,
      status,
      raw,
      body,
    }
    hook.events.push(r)
    hook.onEvent?.(r)
    if (typeof answer === 'number') res.writeHead(status).end()
    else res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(answer.body))
  })
  hook.server = server
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  hook.url = `http://127.0.0.1:${(server.address() as { port: number }).port}/wxauth`
}

// Adds the app_hook to the wxauth block, after its api_base line. The secret
// comes from the environment, as it would in production.
function withAppHook(caddyfile: string, url: string): string {
  const at = /^([\t ]*)(api_base[\t ]+\S+[^\n]*\n)/m
  assert.match(caddyfile, at, 'example.Caddyfile has no api_base line to add the app_hook after')
  return caddyfile.replace(
    at,
    (_, indent: string, line: string) =>
      `${indent}${line}${indent}app_hook ${url} {\n` +
      `${indent}\tsecret {env.WXAUTH_SECRET}\n` +
      `${indent}\tevents login phone\n` +
      `${indent}\ttimeout 3s\n` +
      `${indent}}\n`,
  )
}

// The other platforms: the demo serves them all (example.Caddyfile has a
// platform block for each in wxmock and in wxauth, whose api_base is its
// stand-in), with the app ids read from it.
const platformNames = ['qq', 'douyin', 'alipay', 'baidu', 'kuaishou'] as const
let platforms: Record<string, string> = {}

// Checks that the demo serves every other platform, with the same app id in
// wxmock and in wxauth, and returns each platform's app id.
function demoPlatforms(caddyfile: string): Record<string, string> {
  const ids: Record<string, string> = {}
  for (const name of platformNames) {
    const blocks = [...caddyfile.matchAll(new RegExp(`^[\\t ]*platform ${name} \\{\\n[\\t ]*app_id[\\t ]+(\\S+)`, 'gm'))]
    assert.equal(blocks.length, 2, `example.Caddyfile has no platform ${name} block in both wxmock and wxauth`)
    assert.equal(blocks[0]![1], blocks[1]![1], `example.Caddyfile's ${name} app ids differ between wxmock and wxauth`)
    ids[name] = blocks[1]![1]!
  }
  return ids
}

/** The claims of a token (its payload; the server checked the signature). */
function claimsOf(token: string): { sub: string; sid: string } {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { sub: string; sid: string }
}

/** The events of one kind the app got for openid, in order. */
const eventsOf = (kind: string, openid: string) => hook.events.filter((r) => r.kind === kind && r.body.openid === openid)

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
function withPorts(caddyfile: string, admin: number, mockPort: number, appPort: number, webPort: number): string {
  const swaps: [RegExp, string][] = [
    [/^(\s*admin\s+)\S+/m, `$1127.0.0.1:${admin}`],
    [/127\.0\.0\.1:9000\b/g, `127.0.0.1:${mockPort}`],
    [/127\.0\.0\.1:8080\b/g, `127.0.0.1:${appPort}`],
    [/127\.0\.0\.1:8081\b/g, `127.0.0.1:${webPort}`],
  ]
  let out = caddyfile
  for (const [from, to] of swaps) {
    assert.match(out, from, `example.Caddyfile no longer matches ${from}`)
    out = out.replace(from, to)
  }
  assert.doesNotMatch(out.replace(/#.*$/gm, ''), /:(2019|8080|8081|9000)\b/, 'a fixed demo port is left')
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
  const [admin, mockPort, appPort, webPort] = [await freePort(), await freePort(), await freePort(), await freePort()]
  app = `http://127.0.0.1:${appPort}`
  mock = `http://127.0.0.1:${mockPort}`
  await startHook()
  const config = join(tmp, 'Caddyfile')
  const demo = await readFile(join(repoRoot, 'example.Caddyfile'), 'utf8')
  platforms = demoPlatforms(demo)
  await writeFile(config, withAppHook(withPorts(demo, admin, mockPort, appPort, webPort), hook.url))

  // cwd is the repository, as for the demo: the Caddyfile's paths are relative to it.
  const proc = spawn(bin, ['run', '--config', config, '--adapter', 'caddyfile'], {
    cwd: repoRoot,
    env: {
      ...process.env,
      XDG_DATA_HOME: join(tmp, 'data'),
      XDG_CONFIG_HOME: join(tmp, 'config'),
      WXAUTH_SECRET: hook.secret,
    },
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
  const server = hook.server
  if (server) await new Promise((resolve) => server.close(resolve))
  if (tmp) await rm(tmp, { recursive: true, force: true })
})

// The app's check is what the signature assertions below rest on: it must refuse what wxauth did not sign.
test('the test app takes only events signed with its secret, recently, over the body sent', async () => {
  const body = JSON.stringify({ id: 'msg_probe', event: 'probe', openid: 'probe' })
  const now = Math.floor(Date.now() / 1000)
  const sign = (secret: string, ts: number, signed = body) => {
    const key = Buffer.from(secret.slice('whsec_'.length), 'base64')
    return 'v1,' + createHmac('sha256', key).update(`msg_probe.${ts}.${signed}`).digest('base64')
  }
  const post = async (ts: number, signature: string) => {
    const r = await fetch(hook.url, {
      method: 'POST',
      headers: { 'webhook-id': 'msg_probe', 'webhook-timestamp': String(ts), 'webhook-signature': signature },
      body,
    })
    return r.status
  }
  assert.equal(await post(now, sign(hook.secret, now)), 204)
  assert.equal(await post(now, 'v1,bogus ' + sign(hook.secret, now)), 204)
  assert.equal(await post(now, sign('whsec_' + randomBytes(32).toString('base64'), now)), 401)
  assert.equal(await post(now, sign(hook.secret, now, body + ' ')), 401)
  assert.equal(await post(now - 600, sign(hook.secret, now - 600)), 401)
  assert.equal(await post(now, sign(hook.secret, now).replace('v1,', 'v2,')), 401)
})

for (const kind of kinds) {
  describe(`${kind} adapter against example.Caddyfile`, () => {
    afterEach(() => {
      hook.answer = undefined
      hook.onEvent = undefined
    })

    // Users are per adapter, so that each adapter's openids are its own.
    function client(user: string): { c: Client; shim: Shim } {
      const shim = createShim(kind, `${kind}-${user}`, mock)
      return { c: shim.client({ baseURL: app }), shim }
    }

    // What the getPhoneNumber button hands the page of a user who logged in: e.detail.code.
    const phoneCode = async (user: string, phone: string) =>
      (await getJSON<{ code: string }>(`${mock}/wxmock/phonecode?user=${kind}-${user}&phone=${phone}`)).code
    const phoneCalls = (shim: Shim) => calls(shim).filter((l) => l.startsWith('POST /wx/phone'))

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
      // The default key is namespaced by the server's base URL.
      const key = 'wxauth_token:' + app
      const stored = shim.storage.get(key) as { token: string }
      // Change a character early in the signature (the last one may only carry padding bits).
      const i = stored.token.lastIndexOf('.') + 2
      const bad = stored.token.slice(0, i) + (stored.token[i] === 'x' ? 'y' : 'x') + stored.token.slice(i + 1)
      shim.storage.set(key, { ...stored, token: bad })

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

    test('the phone number reaches the client and, signed, the app, for the session of the token', async () => {
      const { c, shim } = client('peggy')
      // Whether the client had its login answer when the app heard of the login.
      const answeredWhenHeard = new Map<string, boolean>()
      hook.onEvent = (r) => {
        const login = shim.requests.find((q) => new URL(q.url).pathname === '/wx/login')
        answeredWhenHeard.set(r.id, login?.status !== undefined)
      }
      const { token, openid } = await c.login()
      const { sub, sid } = claimsOf(token)
      assert.equal(sub, openid)

      const [login, ...moreLogins] = eventsOf('login', openid)
      assert.ok(login, 'the app heard of no login')
      assert.equal(moreLogins.length, 0)
      assert.equal(login.refused, '')
      assert.equal(answeredWhenHeard.get(login.id), false, 'the client had its token before the app heard of the login')
      assert.equal(login.body.id, login.id)
      assert.equal(login.body.event, 'login')
      assert.equal(login.body.sid, sid)
      assert.equal(login.body.first_login, true)
      assert.equal(login.body.app_id, 'wxdemo0123456789')

      const before = await getJSON<Stats>(mock + '/wxmock/stats')
      const code = await phoneCode('peggy', '13912345678')
      const info = await c.getPhoneNumber({ detail: { code, errMsg: 'getPhoneNumber:ok' } })
      assert.equal(info.purePhoneNumber, '13912345678')
      const afterStats = await getJSON<Stats>(mock + '/wxmock/stats')
      assert.equal(afterStats.getuserphonenumber - before.getuserphonenumber, 1)

      const [phone, ...morePhones] = eventsOf('phone', openid)
      assert.ok(phone, 'the app heard of no phone number')
      assert.equal(morePhones.length, 0)
      assert.equal(phone.refused, '')
      assert.equal(phone.status, 204)
      assert.equal(phone.body.id, phone.id)
      assert.notEqual(phone.id, login.id)
      assert.equal(phone.body.event, 'phone')
      assert.equal(phone.body.openid, openid)
      assert.equal(phone.body.sid, sid)
      assert.equal(phone.body.phone?.phoneNumber, '13912345678')
      assert.equal(phone.body.phone?.purePhoneNumber, '13912345678')
      assert.equal(String(phone.body.phone?.countryCode), '86')
      for (const r of [login, phone]) {
        assert.ok(!r.raw.includes(token), 'an event carries the token')
        assert.doesNotMatch(r.raw, /session_key/)
      }

      // Another user's code: WeChat refuses it for this openid, the app hears nothing.
      const other = client('quinn')
      const quinn = await other.c.login()
      const theirs = await phoneCode('quinn', '13700000002')
      const err = await c.getPhoneNumber({ detail: { code: theirs } }).catch((e: unknown) => e)
      assert.ok(err instanceof WxAuthError, String(err))
      assert.equal(err.status, 401)
      assert.equal(err.error, 'invalid_code')
      assert.equal(shim.logins, 1) // a refused phone code is not a reason to log in again
      assert.equal(eventsOf('phone', openid).length, 1)
      // Its owner can still use it.
      assert.equal((await other.c.getPhoneNumber({ detail: { code: theirs } })).purePhoneNumber, '13700000002')
      const [theirEvent] = eventsOf('phone', quinn.openid)
      assert.equal(theirEvent?.refused, '')
      assert.equal(theirEvent?.body.sid, claimsOf(quinn.token).sid)
      assert.equal(theirEvent?.body.phone?.purePhoneNumber, '13700000002')
    })

    test('a phone event the app fails is hook_failed, not retried; the same code works once the app takes it', async () => {
      const { c, shim } = client('rita')
      const { token, openid } = await c.login()
      const code = await phoneCode('rita', '13811112222')
      const before = await getJSON<Stats>(mock + '/wxmock/stats')
      const e = { detail: { code, errMsg: 'getPhoneNumber:ok' } }

      hook.answer = (ev) => (ev.event === 'phone' && ev.openid === openid ? 500 : undefined)
      const err = await c.getPhoneNumber(e).catch((x: unknown) => x)
      assert.ok(err instanceof WxAuthError, String(err))
      assert.equal(err.status, 502)
      assert.equal(err.error, 'hook_failed')
      assert.ok(err.message)
      assert.doesNotMatch(JSON.stringify(err.body), /13811112222/, 'the client got the number the app did not take')
      // Handed to the caller as is: no retry, no new login.
      assert.deepEqual(phoneCalls(shim), ['POST /wx/phone 502'])
      assert.equal(shim.logins, 1)
      const [failed, ...others] = eventsOf('phone', openid)
      assert.equal(failed?.status, 500)
      assert.equal(failed?.refused, '')
      assert.equal(others.length, 0)

      // The caller tries again with the same code once the app is back.
      hook.answer = undefined
      const info = await c.getPhoneNumber(e)
      assert.equal(info.purePhoneNumber, '13811112222')
      assert.deepEqual(phoneCalls(shim), ['POST /wx/phone 502', 'POST /wx/phone 200'])
      const [, taken, ...more] = eventsOf('phone', openid)
      assert.equal(more.length, 0)
      assert.equal(taken?.refused, '')
      assert.equal(taken?.status, 204)
      assert.equal(taken?.id, failed.id, 'a retried event keeps its webhook-id, so the app can dedupe it')
      assert.equal(taken?.body.sid, claimsOf(token).sid)
      assert.equal(taken?.body.phone?.purePhoneNumber, '13811112222')
      // WeChat's billed call was made once, for both attempts.
      const afterStats = await getJSON<Stats>(mock + '/wxmock/stats')
      assert.equal(afterStats.getuserphonenumber - before.getuserphonenumber, 1)
    })

    test('a login the app fails is hook_failed, no token; the next call logs in with a new code', async () => {
      const { c, shim } = client('sybil')
      hook.answer = (ev) => (ev.event === 'login' ? 500 : undefined)
      const err = await c.request<WhoAmI>({ path: '/api/whoami' }).catch((e: unknown) => e)
      assert.ok(err instanceof WxAuthError, String(err))
      assert.equal(err.status, 502)
      assert.equal(err.error, 'hook_failed')
      assert.deepEqual(calls(shim), ['POST /wx/login 502'])
      assert.equal(shim.logins, 1)
      assert.equal(c.token(), undefined)

      hook.answer = undefined
      const who = await c.request<WhoAmI>({ path: '/api/whoami' })
      assert.deepEqual(calls(shim), ['POST /wx/login 502', 'POST /wx/login 200', 'GET /api/whoami 200'])
      assert.equal(shim.logins, 2)
      const [first, second] = loginBodies(shim)
      assert.notEqual(first!.code, second!.code)
      const logins = eventsOf('login', who.openid)
      assert.deepEqual(logins.map((r) => r.status), [500, 204])
      assert.equal(logins[1]!.body.sid, claimsOf(c.token()!).sid)
    })

    test('a login the app refuses on purpose is a typed refusal: no retry, no token, onAuthError told once', async () => {
      const { c, shim } = client('trent')
      const heard: WxAuthError[] = []
      c.onAuthError((e) => heard.push(e))
      hook.answer = (ev) =>
        ev.event === 'login' ? { status: 403, body: { error: 'account_closed', message: 'This account is closed.' } } : undefined
      const err = await c.request<WhoAmI>({ path: '/api/whoami' }).catch((e: unknown) => e)
      assert.ok(isRefusal(err), String(err))
      assert.equal(err.status, 403)
      assert.equal(err.error, 'account_closed')
      assert.equal(err.message, 'This account is closed.')
      assert.equal(err.refusedBy, 'app')
      assert.deepEqual(calls(shim), ['POST /wx/login 403'])
      assert.equal(shim.logins, 1)
      assert.equal(c.getToken(), null)
      assert.deepEqual(heard, [err])
    })

    test('ensureToken gives a token that the server takes from a request sent without the client', async () => {
      const { c } = client('uma')
      const token = await c.ensureToken()
      assert.equal(c.getToken(), token)
      const r = await fetch(app + '/api/whoami', { headers: { Authorization: 'Bearer ' + token } })
      assert.equal(r.status, 200)
      assert.equal(((await r.json()) as WhoAmI).openid, claimsOf(token).sub)
    })

    test('downloadFile sends the token; a refused token gets one re-login and one retry', async () => {
      const { c, shim } = client('dora')
      const first = await c.downloadFile({ path: '/index.html' })
      assert.equal(first.statusCode, 200)
      const page = await readFile(join(repoRoot, 'examples', 'site', 'index.html'))
      assert.deepEqual(shim.files.get(first.tempFilePath), page)
      const token = c.token()!
      assert.equal(shim.requests.at(-1)!.authorization, 'Bearer ' + token)

      // A token the server does not know: its 401 has no body to read (it is the file), so the kit goes by the status.
      shim.storage.set('wxauth_token:' + app, { ...(shim.storage.get('wxauth_token:' + app) as object), token: token + 'x' })
      const again = await c.downloadFile({ path: '/index.html' })
      assert.equal(again.statusCode, 200)
      assert.deepEqual(calls(shim).slice(-3), ['GET /index.html 401', 'POST /wx/login 200', 'GET /index.html 200'])
      assert.equal(shim.logins, 2)
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

// A code as WeChat DevTools' wx.login gives one with the tourist appid: 32
// random letters and digits that wxmock never issued.
function devToolsCode(): string {
  const chars = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'
  return Array.from(randomBytes(32), (b) => chars[b % chars.length]).join('')
}

// The example mini-program in WeChat DevTools (project.config.json, tourist
// appid) against the demo: the demo's wxmock has any_code, so DevTools' codes
// log in as one stable user, each code once.
test('the example in WeChat DevTools: random codes log in as the demo any_code user, once each', async () => {
  const user = /^\s*any_code\s+(\S+)/m.exec(await readFile(join(repoRoot, 'example.Caddyfile'), 'utf8'))?.[1]
  assert.ok(user, 'example.Caddyfile has no any_code')
  // The openid of that user, through a code wxmock issued.
  const issued = createShim('wx', user, mock)
  const { openid } = await issued.client({ baseURL: app }).login()

  const devtools = createShim('wx', 'unused', mock)
  const c = devtools.client({ baseURL: app })
  const first = devToolsCode()
  devtools.code = first
  const who = await c.request<WhoAmI>({ path: '/api/whoami' })
  assert.equal(who.openid, openid)
  devtools.code = devToolsCode()
  assert.equal((await c.login()).openid, openid)
  assert.deepEqual(calls(devtools), ['POST /wx/login 200', 'GET /api/whoami 200', 'POST /wx/login 200'])

  // A code works once: a second client with the first code is refused.
  const again = createShim('wx', 'unused', mock)
  again.code = first
  const err = await again.client({ baseURL: app }).login().catch((e: unknown) => e)
  assert.ok(err instanceof WxAuthError, String(err))
  assert.equal(err.status, 401)
  assert.equal(err.error, 'invalid_code')

  // Codes wxmock issued keep their user.
  const alice = createShim('wx', 'devtools-alice', mock)
  assert.notEqual((await alice.client({ baseURL: app }).login()).openid, openid)
})

// The example mini-program's own pages (examples/miniprogram) as WeChat
// DevTools runs them against the demo: Page() and App() hand over their
// definitions, a wx stand-in gives DevTools-like codes (random, never issued
// by wxmock, so the demo's any_code user logs in) and sends real HTTP to this
// test's Caddy (the example names the demo's fixed address; the stand-in
// rewrites it to the free port).
test('the example pages against the demo, with DevTools codes: launch, whoami, phone, profile, logout', async () => {
  const user = /^\s*any_code\s+(\S+)/m.exec(await readFile(join(repoRoot, 'example.Caddyfile'), 'utf8'))![1]!
  const { openid } = await createShim('wx', user, mock).client({ baseURL: app }).login()

  const shim = createShim('wx', 'unused', mock)
  Object.defineProperty(shim, 'code', { get: devToolsCode }) // a new DevTools code for every wx.login
  shim.rewrite = (url) => url.replace('http://127.0.0.1:8080', app)
  const g = globalThis as Record<string, unknown>
  const pages: Record<string, Record<string, any>> = {}
  let launch: Record<string, any> = {}
  let current = ''
  g.wx = { ...(shim.host as object), navigateTo: () => undefined }
  g.Page = (def: Record<string, any>) => (pages[current] = def)
  g.App = (def: Record<string, any>) => (launch = def)
  try {
    for (const name of ['index', 'profile']) {
      current = name
      await import(`../../examples/miniprogram/miniprogram/pages/${name}/${name}.js`)
    }
    await import('../../examples/miniprogram/miniprogram/app.js')
    const page = (name: string) => {
      const p: Record<string, any> = { ...pages[name], data: structuredClone(pages[name]!.data) }
      p.setData = (d: object) => Object.assign(p.data, d)
      return p
    }

    launch.onLaunch()
    const index = page('index')
    await index.onWhoami()
    assert.equal(index.data.openid, openid, index.data.output)
    assert.equal(shim.logins, 1, 'onLaunch and the first request shared one login')

    const profile = page('profile')
    const { code } = await getJSON<{ code: string }>(`${mock}/wxmock/phonecode?user=${user}&phone=13912345678`)
    await profile.onPhone({ detail: { code, errMsg: 'getPhoneNumber:ok' } })
    assert.match(profile.data.output, /^POST \/wx\/phone\n[\s\S]*13912345678/)

    // The avatar and nickname routes are the app's own: the requests pass wxauth with the token.
    await profile.onChooseAvatar({ detail: { avatarUrl: 'http://tmp/avatar.jpg' } })
    await profile.onSaveNickname({ detail: { value: { nickname: 'devtools' } } })
    for (const path of ['/api/avatar', '/api/profile']) {
      const sent = shim.requests.filter((r) => new URL(r.url).pathname === path)
      assert.equal(sent.length, 1, path)
      assert.match(sent[0]!.authorization ?? '', /^Bearer /)
      assert.notEqual(sent[0]!.status, 401, `${path} was refused by wxauth`)
    }

    await index.onLogout()
    assert.equal(index.data.output, 'logged out')
    assert.equal(calls(shim).at(-1), 'POST /wx/logout 204')
  } finally {
    delete g.wx
    delete g.Page
    delete g.App
  }
})

// Every other platform through the kit against wxmock's stand-ins, on one
// handler serving all six: the same app code (createWxClient with only a
// baseURL) finds the host by its global, logs in with that platform's own
// login, reaches the app with its token, gets the phone number the
// platform's way, decrypts user data where the platform has a session key,
// and logs out.
describe('every platform through the kit', () => {
  const g = globalThis as Record<string, unknown>
  afterEach(() => {
    for (const n of Object.keys(hostPlatforms)) delete g[n]
  })

  for (const [name, platform] of Object.entries(hostPlatforms) as [HostGlobal, string][]) {
    test(`${platform} (${name}): login, whoami, phone number, decrypt, logout`, async () => {
      const user = `${platform}-alice`
      const shim = createHostShim(name, user, mock)
      g[name] = shim.host
      const c = createWxClient({ baseURL: app })
      assert.equal(c.platform, platform)

      const who = await c.request<WhoAmI>({ path: '/api/whoami' })
      assert.match(who.openid, /\S{4,}/)
      const [body] = loginBodies(shim) as unknown as Record<string, string>[]
      assert.equal(body!.platform, platform)
      assert.match(body!.nonce!, NONCE_PATTERN)
      assert.deepEqual(shim.loginCalls.map((l) => l.api), [name === 'swan' ? 'getLoginCode' : name === 'my' ? 'getAuthCode' : 'login'])
      if (name === 'tt') assert.ok(body!.code && body!.anonymous_code, 'Douyin sends both codes')
      if (name === 'my') assert.deepEqual(shim.loginCalls[0], { api: 'getAuthCode', scopes: 'auth_base' })
      // The same person again: the same openid.
      await c.login()
      assert.equal((await c.request<WhoAmI>({ path: '/api/whoami' })).openid, who.openid)

      // The phone number: the button's encryptedData and iv, or Alipay's my.getPhoneNumber text.
      let phone
      if (name === 'my') phone = await c.getPhoneNumber()
      else {
        const sealed = await getJSON<{ encryptedData: string; iv: string }>(`${mock}/${platform}/wxmock/phone?user=${user}&phone=13800138000&appid=${platforms[platform as keyof typeof platforms]}`)
        phone = await c.getPhoneNumber({ detail: { ...sealed, errMsg: 'getPhoneNumber:ok' } })
      }
      assert.equal(phone.purePhoneNumber, '13800138000')
      assert.equal(phone.phoneNumber.endsWith('13800138000'), true)

      if (name === 'my') {
        const err = await c.decrypt({ encryptedData: 'AAAA', iv: 'AAAA' }).catch((e: unknown) => e)
        assert.ok(err instanceof WxAuthError)
        assert.equal(err.status, 400)
        assert.equal(err.error, 'unsupported')
      } else {
        const info = await getJSON<{ encryptedData: string; iv: string }>(`${mock}/${platform}/wxmock/userinfo?user=${user}&appid=${platforms[platform as keyof typeof platforms]}`)
        const plain = await c.decrypt(info)
        assert.ok(plain && typeof plain === 'object' && Object.keys(plain).length > 0)
      }

      await c.logout()
      assert.equal(calls(shim).at(-1), 'POST /wx/logout 204')
    })
  }

  test('a Douyin guest (tt.login with force: false gives only an anonymousCode) logs in as the device', async () => {
    const shim = createHostShim('tt', 'douyin-guest', mock)
    g.tt = shim.host
    const c = createWxClient({ baseURL: app, loginOptions: { force: false } })
    const who = await c.request<WhoAmI>({ path: '/api/whoami' })
    assert.match(who.openid, /\S{4,}/)
    const [body] = loginBodies(shim) as unknown as Record<string, string>[]
    assert.equal(body!.code, undefined)
    assert.ok(body!.anonymous_code)
    assert.deepEqual(shim.loginCalls, [{ api: 'login', force: false }])
  })
})
