// Unit tests of the client core through each adapter, against in-process
// fakes of wx, uni and Taro and of the server: the flows that a real server
// cannot be made to show on demand (expiry, a server that keeps refusing,
// lost answers).

import assert from 'node:assert/strict'
import { describe, test } from 'node:test'

import { isRefusal, NONCE_PATTERN, WxAuthError, type LoginEvent, type StoredToken } from '../src/core.js'
import { fake, kinds, type Handler, type Seen } from './fakes.js'

// A server that issues token "t<code>" on login and accepts only tokens in `valid`.
function server(opts: { ttl?: number } = {}) {
  const valid = new Set<string>()
  let refreshes = 0
  const handle: Handler = (req) => {
    const tok = req.auth?.replace(/^Bearer /, '')
    if (req.path === '/wx/login') {
      const code = (req.data as { code: string }).code
      if (code === 'bad') return { status: 401, data: { error: 'invalid_code', message: 'code rejected', errcode: 40029 } }
      valid.add('t' + code)
      return { status: 200, data: { token: 't' + code, token_type: 'Bearer', expires_in: opts.ttl ?? 7200, openid: 'o1' } }
    }
    if (!tok) return { status: 401, data: { error: 'missing_token', message: 'no token' } }
    if (!valid.has(tok)) {
      return { status: 401, data: { error: 'invalid_token', message: 'bad token' }, delay: req.path === '/slow' ? 100 : 5 }
    }
    if (req.path === '/wx/refresh') {
      refreshes++
      const nt = tok + 'r'
      valid.add(nt)
      return { status: 200, data: { token: nt, token_type: 'Bearer', expires_in: opts.ttl ?? 7200, openid: 'o1' } }
    }
    if (req.path === '/wx/logout') {
      valid.delete(tok)
      return { status: 204 }
    }
    if (req.path === '/missing') return { status: 404, data: 'not found' }
    if (req.path === '/forbidden') return { status: 401, data: { error: 'not_a_member', message: 'app says no' } }
    if (req.path === '/banned') {
      return { status: 403, data: { error: 'account_closed', message: 'This account is closed.', refused_by: 'app' } }
    }
    if (req.path === '/refused-401') {
      // An app refusal that happens to use a re-login code must still not be retried.
      return { status: 401, data: { error: 'invalid_token', message: 'no', refused_by: 'app' } }
    }
    return { status: 200, data: { ok: true, token: tok } }
  }
  return { valid, handle, refreshes: () => refreshes }
}

// The default storage key of a client on the fakes' baseURL.
const KEY = 'wxauth_token:https://app.example'
const valid = (token: string): StoredToken => ({ token, expiresAt: Date.now() + 3600_000, renewAt: Date.now() + 3500_000, openid: 'o1' })

const logins = (seen: Seen[]) => seen.filter((s) => s.path === '/wx/login').map((s) => s.data as { code: string; nonce: string })

for (const kind of kinds) describe(`client core through the ${kind} adapter`, () => {
  test('first request logs in once and sends the token; later ones reuse it', async () => {
    const srv = server()
    const { st, make } = fake(kind, srv.handle)
    const c = make({ baseURL: 'https://app.example/' })
    assert.deepEqual(await c.request({ path: '/api' }), { ok: true, token: 'tcode1' })
    assert.deepEqual(await c.request({ path: '/api' }), { ok: true, token: 'tcode1' })
    assert.equal(st.logins, 1)
    assert.deepEqual({ ...st.seen[0], data: undefined }, { method: 'POST', path: '/wx/login', auth: undefined, data: undefined })
    assert.equal(logins(st.seen)[0]!.code, 'code1')
    assert.equal(st.seen[1]!.auth, 'Bearer tcode1')
    assert.equal(c.token(), 'tcode1')
    const stored = st.storage.get(KEY) as StoredToken
    assert.equal(stored.openid, 'o1')
    assert.ok(stored.expiresAt > Date.now() + 7100_000)
  })

  test('a token stored by an earlier run is used without wx.login', async () => {
    const srv = server()
    const { st, make } = fake(kind, srv.handle)
    srv.valid.add('old')
    st.storage.set('k', { token: 'old', expiresAt: Date.now() + 3600_000, renewAt: Date.now() + 3500_000, openid: 'o1' })
    const c = make({ storageKey: 'k' })
    assert.deepEqual(await c.request({ path: '/api' }), { ok: true, token: 'old' })
    assert.equal(st.logins, 0)
  })

  test('a refused token leads to one login and one retry', async () => {
    const srv = server()
    const { st, make } = fake(kind, srv.handle)
    st.storage.set('wxauth_token', { token: 'revoked', expiresAt: Date.now() + 3600_000, renewAt: Date.now() + 3500_000, openid: 'o1' })
    const c = make({})
    assert.deepEqual(await c.request({ path: '/api' }), { ok: true, token: 'tcode1' })
    assert.equal(st.logins, 1)
    assert.deepEqual(
      st.seen.map((s) => s.path),
      ['/api', '/wx/login', '/api'],
    )
  })

  test('a server that keeps refusing gets exactly one retry, then the error', async () => {
    const { st, make } = fake(kind, (req) =>
      req.path === '/wx/login'
        ? { status: 200, data: { token: 'x', token_type: 'Bearer', expires_in: 7200, openid: 'o1' } }
        : { status: 401, data: { error: 'invalid_token', message: 'no' } },
    )
    const c = make({})
    const err = await c.request({ path: '/api' }).catch((e: unknown) => e)
    assert.ok(err instanceof WxAuthError)
    assert.equal(err.status, 401)
    assert.equal(err.error, 'invalid_token')
    assert.equal(st.logins, 2) // the first login, then the one re-login
    assert.equal(st.seen.filter((s) => s.path === '/api').length, 2)
  })

  test('concurrent requests share one login', async () => {
    const srv = server()
    const { st, make } = fake(kind, srv.handle)
    const c = make({})
    const all = await Promise.all([1, 2, 3, 4, 5].map(() => c.request<{ token: string }>({ path: '/api' })))
    assert.equal(st.logins, 1)
    assert.deepEqual(new Set(all.map((r) => r.token)), new Set(['tcode1']))
  })

  test('concurrent requests refused together share one re-login', async () => {
    const srv = server()
    const { st, make } = fake(kind, srv.handle)
    st.storage.set('wxauth_token', { token: 'revoked', expiresAt: Date.now() + 3600_000, renewAt: Date.now() + 3500_000, openid: 'o1' })
    const c = make({})
    const all = await Promise.all([1, 2, 3, 4, 5].map(() => c.request<{ token: string }>({ path: '/api' })))
    assert.equal(st.logins, 1)
    assert.deepEqual(new Set(all.map((r) => r.token)), new Set(['tcode1']))
  })

  test('a refusal that arrives after the re-login uses its token instead of logging in again', async () => {
    const srv = server()
    const { st, make } = fake(kind, srv.handle)
    st.storage.set('wxauth_token', { token: 'revoked', expiresAt: Date.now() + 3600_000, renewAt: Date.now() + 3500_000, openid: 'o1' })
    const c = make({})
    const [fast, slow] = await Promise.all([
      c.request<{ token: string }>({ path: '/fast' }),
      c.request<{ token: string }>({ path: '/slow' }),
    ])
    assert.equal(st.logins, 1)
    assert.equal(fast.token, 'tcode1')
    assert.equal(slow.token, 'tcode1')
  })

  test('a refused token is forgotten even when the re-login fails', async () => {
    const srv = server()
    const { st, make } = fake(kind, srv.handle)
    st.storage.set('wxauth_token', { token: 'revoked', expiresAt: Date.now() + 3600_000, renewAt: Date.now() + 3500_000, openid: 'o1' })
    st.loginFails = true
    const c = make({})
    await assert.rejects(c.request({ path: '/api' }), (e: unknown) => e instanceof WxAuthError && e.error === 'wx_login_failed')
    assert.equal(c.token(), undefined)
  })

  test('logout with a token the server already dropped succeeds', async () => {
    const srv = server()
    const { make } = fake(kind, srv.handle)
    const c = make({})
    await c.request({ path: '/api' })
    srv.valid.clear()
    await c.logout()
    assert.equal(c.token(), undefined)
  })

  test('a 401 the client cannot cure by logging in is not retried', async () => {
    const srv = server()
    const { st, make } = fake(kind, srv.handle)
    const c = make({})
    const err = await c.request({ path: '/forbidden' }).catch((e: unknown) => e)
    assert.ok(err instanceof WxAuthError)
    assert.equal(err.status, 401)
    assert.equal(err.error, 'not_a_member')
    assert.equal(st.logins, 1)
    assert.equal(st.seen.filter((s) => s.path === '/forbidden').length, 1)
  })

  test('concurrent login() calls share one wx.login', async () => {
    const srv = server()
    const { st, make } = fake(kind, srv.handle)
    const c = make({})
    const [a, b] = await Promise.all([c.login(), c.login()])
    assert.equal(st.logins, 1)
    assert.equal(a.token, b.token)
    await c.login() // an explicit login afterwards is a new one
    assert.equal(st.logins, 2)
  })

  test('near its expiry a token is refreshed, after it a new login is made', async () => {
    const srv = server({ ttl: 600 })
    const { st, make } = fake(kind, srv.handle)
    let clock = 1_000_000
    const c = make({ now: () => clock, renewBeforeSeconds: 60 })
    await c.request({ path: '/api' })
    assert.equal(st.logins, 1)

    clock += 530_000 // 70 s left: still used as is
    assert.deepEqual(await c.request({ path: '/api' }), { ok: true, token: 'tcode1' })
    assert.equal(srv.refreshes(), 0)

    clock += 20_000 // 50 s left: renewed through the refresh endpoint, without wx.login
    assert.deepEqual(await c.request({ path: '/api' }), { ok: true, token: 'tcode1r' })
    assert.equal(srv.refreshes(), 1)
    assert.equal(st.logins, 1)

    clock += 601_000 // expired: a new login
    assert.deepEqual(await c.request({ path: '/api' }), { ok: true, token: 'tcode2' })
    assert.equal(st.logins, 2)
    assert.equal(srv.refreshes(), 1)
  })

  test('a failed refresh falls back to wx.login', async () => {
    const srv = server({ ttl: 600 })
    const { st, make } = fake(kind, srv.handle)
    let clock = 1_000_000
    const c = make({ now: () => clock })
    await c.request({ path: '/api' })
    srv.valid.clear() // the server forgot the session
    clock += 550_000
    assert.deepEqual(await c.request({ path: '/api' }), { ok: true, token: 'tcode2' })
    assert.equal(st.logins, 2)
  })

  test('a short-lived token is not renewed on every request', async () => {
    const srv = server({ ttl: 30 })
    const { st, make } = fake(kind, srv.handle)
    let clock = 1_000_000
    const c = make({ now: () => clock, renewBeforeSeconds: 60 })
    await c.request({ path: '/api' })
    clock += 10_000
    await c.request({ path: '/api' })
    assert.equal(st.logins, 1)
    assert.equal(srv.refreshes(), 0)
  })

  test('a rejected code surfaces as WxAuthError without a retry', async () => {
    const srv = server()
    const { st, make } = fake(kind, (req) => srv.handle(req.path === '/wx/login' ? { ...req, data: { code: 'bad' } } : req))
    const c = make({})
    const err = await c.request({ path: '/api' }).catch((e: unknown) => e)
    assert.ok(err instanceof WxAuthError && err instanceof Error)
    assert.equal(err.name, 'WxAuthError')
    assert.equal(err.status, 401)
    assert.equal(err.error, 'invalid_code')
    assert.equal(err.message, 'code rejected')
    assert.equal(err.errcode, 40029)
    assert.equal(st.logins, 1)
    assert.equal(c.token(), undefined)
  })

  test('failures on the way are typed too', async () => {
    const down = fake(kind, () => 'network')
    let err = await down.make({}).request({ path: '/api' }).catch((e: unknown) => e)
    assert.ok(err instanceof WxAuthError)
    assert.equal(err.status, 0)
    assert.equal(err.error, 'network_error')
    assert.match(err.message, /connect refused/)

    const nologin = fake(kind, server().handle)
    nologin.st.loginFails = true
    err = await nologin.make({}).login().catch((e: unknown) => e)
    assert.ok(err instanceof WxAuthError)
    assert.equal(err.error, 'wx_login_failed')

    const srv = server()
    const plain = fake(kind, srv.handle)
    err = await plain.make({}).request({ path: '/missing' }).catch((e: unknown) => e)
    assert.ok(err instanceof WxAuthError)
    assert.equal(err.status, 404)
    assert.equal(err.error, 'http_error')
    assert.equal(err.body, 'not found')

    const broken = fake(kind, () => ({ status: 200, data: '<html>' }))
    err = await broken.make({}).login().catch((e: unknown) => e)
    assert.ok(err instanceof WxAuthError)
    assert.equal(err.error, 'invalid_response')
  })

  test('public requests carry no token and need no login', async () => {
    const { st, make } = fake(kind, () => ({ status: 200, data: { pub: 1 } }))
    const c = make({})
    assert.deepEqual(await c.request({ path: '/public/x', auth: false }), { pub: 1 })
    assert.equal(st.logins, 0)
    assert.equal(st.seen[0]!.auth, undefined)
  })

  test('absolute URLs are refused, so the token cannot leak to another host', async () => {
    const { st, make } = fake(kind, server().handle)
    const c = make({})
    await assert.rejects(c.request({ path: 'https://evil.example/x' }), TypeError)
    assert.equal(st.seen.length, 0)
  })

  test('logout ends the session on the server and forgets the token', async () => {
    const srv = server()
    const { st, make } = fake(kind, srv.handle)
    const c = make({})
    await c.request({ path: '/api' })
    await c.logout()
    assert.equal(c.token(), undefined)
    assert.equal(srv.valid.has('tcode1'), false)
    assert.deepEqual(st.seen.at(-1), { method: 'POST', path: '/wx/logout', auth: 'Bearer tcode1', data: undefined })
    await c.logout() // nothing stored: no request
    assert.equal(st.seen.at(-1)!.path, '/wx/logout')
    assert.equal(st.seen.length, 3)
    // The next request logs in again.
    assert.deepEqual(await c.request({ path: '/api' }), { ok: true, token: 'tcode2' })
  })

  test('decrypt sends only the encrypted data fields; phone and session use their paths', async () => {
    const srv = server()
    const { st, make } = fake(kind, srv.handle)
    const c = make({ decryptPath: '/d', phonePath: '/p', sessionPath: '/s' })
    const res = { encryptedData: 'E', iv: 'I', rawData: 'R', signature: 'S', userInfo: {}, errMsg: 'getUserInfo:ok' }
    await c.decrypt(res)
    const d = st.seen.find((s) => s.path === '/d')!
    assert.equal(d.method, 'POST')
    assert.deepEqual(d.data, { encryptedData: 'E', iv: 'I', rawData: 'R', signature: 'S' })
    await c.phone('pc')
    assert.deepEqual(st.seen.find((s) => s.path === '/p')!.data, { code: 'pc' })
    await c.session()
    assert.equal(st.seen.find((s) => s.path === '/s')!.method, 'GET')
  })
  test('each login sends its code with a fresh nonce of 16-64 URL-safe characters', async () => {
    const srv = server()
    const { st, make } = fake(kind, srv.handle)
    const c = make({})
    await c.login()
    await c.login()
    const [a, b] = logins(st.seen)
    assert.deepEqual(Object.keys(a!).sort(), ['code', 'nonce'])
    assert.match(a!.nonce, NONCE_PATTERN)
    assert.equal(a!.nonce.length, 32)
    assert.notEqual(a!.code, b!.code)
    assert.notEqual(a!.nonce, b!.nonce)
  })

  test('a login whose answer is lost is sent once more with the same code and nonce', async () => {
    const srv = server()
    let drop = 1
    const { st, make } = fake(kind, (req) => (req.path === '/wx/login' && drop-- > 0 ? 'network' : srv.handle(req)))
    const c = make({})
    assert.deepEqual(await c.request({ path: '/api' }), { ok: true, token: 'tcode1' })
    assert.equal(st.logins, 1)
    const [first, again, ...more] = logins(st.seen)
    assert.deepEqual(again, first)
    assert.deepEqual(more, [])
  })

  test('a login that gets no answer twice fails with network_error, without a third try', async () => {
    const { st, make } = fake(kind, (req) => (req.path === '/wx/login' ? 'network' : { status: 200 }))
    const err = await make({}).login().catch((e: unknown) => e)
    assert.ok(err instanceof WxAuthError)
    assert.equal(err.error, 'network_error')
    assert.equal(st.logins, 1)
    assert.equal(logins(st.seen).length, 2)
  })

  test('a refused login is not sent again with the same code', async () => {
    const { st, make } = fake(kind, () => ({ status: 401, data: { error: 'invalid_code', message: 'used' } }))
    await assert.rejects(make({}).login(), (e: unknown) => e instanceof WxAuthError && e.error === 'invalid_code')
    assert.equal(logins(st.seen).length, 1)
  })

  test('the nonce comes from the framework when it has a random source, else from crypto', async () => {
    const srv = server()
    const { st, make } = fake(kind, srv.handle)
    await make({}).login()
    // wx.getRandomValues and Taro.getRandomValues exist; uni has none of its own.
    assert.equal(st.randoms, kind === 'uni' ? 0 : 1)

    st.randomFails = true
    await make({}).login()
    const all = logins(st.seen)
    assert.match(all[1]!.nonce, NONCE_PATTERN)
    assert.notEqual(all[1]!.nonce, all[0]!.nonce)
  })

  test('options.random replaces the random source; a failing one stops the login before any request', async () => {
    const srv = server()
    const { st, make } = fake(kind, srv.handle)
    await make({ random: (n) => new Uint8Array(n).fill(0xff) }).login()
    assert.equal(logins(st.seen)[0]!.nonce, '_'.repeat(32))
    assert.equal(st.randoms, 0)

    for (const random of [
      () => {
        throw new Error('no entropy')
      },
      () => new Uint8Array(3),
    ]) {
      const err = await make({ random }).login().catch((e: unknown) => e)
      assert.ok(err instanceof WxAuthError)
      assert.equal(err.error, 'no_random_source')
    }
    assert.equal(logins(st.seen).length, 1)
  })

  test('getPhoneNumber resolves the button code; a declined button rejects without a request', async () => {
    const srv = server()
    const { st, make } = fake(kind, (req) =>
      req.path === '/wx/phone' ? { status: 200, data: { phoneNumber: '+86 1', purePhoneNumber: '1', countryCode: '86' } } : srv.handle(req),
    )
    const c = make({})
    const info = await c.getPhoneNumber({ detail: { code: 'pc1', errMsg: 'getPhoneNumber:ok' } })
    assert.equal(info.purePhoneNumber, '1')
    assert.deepEqual(st.seen.find((s) => s.path === '/wx/phone')!.data, { code: 'pc1' })

    const n = st.seen.length
    const err = await c.getPhoneNumber({ detail: { errMsg: 'getPhoneNumber:fail user deny' } }).catch((e: unknown) => e)
    assert.ok(err instanceof WxAuthError)
    assert.equal(err.error, 'phone_denied')
    assert.equal(err.status, 0)
    assert.equal(err.message, 'getPhoneNumber:fail user deny')
    assert.equal(st.seen.length, n)
  })

  test('decrypt takes a component event as well as an API result', async () => {
    const srv = server()
    const { st, make } = fake(kind, srv.handle)
    const c = make({})
    await c.decrypt({ detail: { encryptedData: 'E', iv: 'I', errMsg: 'ok' } as never })
    assert.deepEqual(st.seen.find((s) => s.path === '/wx/decrypt')!.data, { encryptedData: 'E', iv: 'I' })
  })

  describe('ensureToken and getToken', () => {
    test('ensureToken logs in once for concurrent callers and returns the token; getToken reads it without a request', async () => {
      const srv = server()
      const { st, make } = fake(kind, srv.handle)
      const c = make({})
      assert.equal(c.getToken(), null)
      assert.equal(st.seen.length, 0)
      const all = await Promise.all([c.ensureToken(), c.ensureToken(), c.request<{ token: string }>({ path: '/api' })])
      assert.deepEqual(all, ['tcode1', 'tcode1', { ok: true, token: 'tcode1' }])
      assert.equal(st.logins, 1)
      const n = st.seen.length
      assert.equal(await c.ensureToken(), 'tcode1')
      assert.equal(c.getToken(), 'tcode1')
      assert.equal(st.seen.length, n)
    })

    test('getToken is null for an expired token; ensureToken then logs in', async () => {
      const srv = server({ ttl: 600 })
      const { st, make } = fake(kind, srv.handle)
      let clock = 1_000_000
      const c = make({ now: () => clock })
      await c.ensureToken()
      clock += 601_000
      assert.equal(c.getToken(), null)
      assert.equal(c.token(), 'tcode1') // token() still returns what is stored
      assert.equal(await c.ensureToken(), 'tcode2')
      assert.equal(st.logins, 2)
    })

    test('ensureToken({ refused }) replaces a refused token once for all callers refused with it', async () => {
      const srv = server()
      const { st, make } = fake(kind, srv.handle)
      st.storage.set(KEY, valid('revoked'))
      const c = make({})
      assert.equal(c.getToken(), 'revoked')
      const all = await Promise.all([1, 2, 3].map(() => c.ensureToken({ refused: 'revoked' })))
      assert.deepEqual(all, ['tcode1', 'tcode1', 'tcode1'])
      assert.equal(st.logins, 1)
      // A caller that comes late with the old token gets the new one, without another login.
      assert.equal(await c.ensureToken({ refused: 'revoked' }), 'tcode1')
      assert.equal(st.logins, 1)
    })
  })

  describe('refusals', () => {
    test('an app refusal is a typed WxAuthError, never retried and never a reason to log in again', async () => {
      const srv = server()
      const { st, make } = fake(kind, srv.handle)
      const c = make({})
      await c.login()
      for (const path of ['/banned', '/refused-401']) {
        const err = await c.request({ path }).catch((e: unknown) => e)
        assert.ok(err instanceof WxAuthError)
        assert.ok(isRefusal(err))
        assert.equal(err.refusedBy, 'app')
        assert.equal(st.seen.filter((s) => s.path === path).length, 1)
      }
      const err = (await c.request({ path: '/banned' }).catch((e: unknown) => e)) as WxAuthError
      assert.equal(err.status, 403)
      assert.equal(err.error, 'account_closed')
      assert.equal(err.message, 'This account is closed.')
      assert.equal(st.logins, 1)
      assert.equal(c.getToken(), 'tcode1')
      assert.equal(isRefusal(new WxAuthError(401, 'invalid_token', 'x')), false)
      assert.equal(isRefusal(new Error('x')), false)
    })

    test('a refused login is not retried and stores nothing', async () => {
      const { st, make } = fake(kind, (req) =>
        req.path === '/wx/login' ? { status: 403, data: { error: 'banned', message: 'Banned.', refused_by: 'app' } } : { status: 200 },
      )
      const c = make({})
      const err = await c.request({ path: '/api' }).catch((e: unknown) => e)
      assert.ok(isRefusal(err))
      assert.equal(err.error, 'banned')
      assert.equal(st.logins, 1)
      assert.equal(logins(st.seen).length, 1)
      assert.equal(st.seen.filter((s) => s.path === '/api').length, 0)
      assert.equal(c.getToken(), null)
    })

    test('a refused refresh is not followed by a new login', async () => {
      let refuse = false
      const srv = server({ ttl: 600 })
      const { st, make } = fake(kind, (req) =>
        refuse && req.path === '/wx/refresh'
          ? { status: 403, data: { error: 'banned', message: 'Banned.', refused_by: 'app' } }
          : srv.handle(req),
      )
      let clock = 1_000_000
      const c = make({ now: () => clock })
      await c.ensureToken()
      refuse = true
      clock += 550_000
      const err = await c.ensureToken().catch((e: unknown) => e)
      assert.ok(isRefusal(err))
      assert.equal(st.logins, 1)
    })
  })

  describe('events', () => {
    test('onLogin reports logins and refreshes, onLogout a logout; unsubscribing stops them', async () => {
      const srv = server({ ttl: 600 })
      const { make } = fake(kind, srv.handle)
      let clock = 1_000_000
      const c = make({ now: () => clock })
      const seen: string[] = []
      const offLogin = c.onLogin((e: LoginEvent) => seen.push(`${e.via} ${e.token} ${e.openid}`))
      const offLogout = c.onLogout(() => seen.push('logout'))
      c.onLogin(() => {
        throw new Error('a broken listener does not break the client')
      })
      await c.request({ path: '/api' })
      await c.request({ path: '/api' })
      clock += 550_000
      await c.request({ path: '/api' })
      await c.logout()
      await c.logout() // nothing stored: no event
      assert.deepEqual(seen, ['login tcode1 o1', 'refresh tcode1r o1', 'logout'])
      offLogin()
      offLogout()
      offLogin() // twice is harmless
      await c.login()
      await c.logout()
      assert.equal(seen.length, 3)
    })

    test('onAuthError gets login failures once, refusals and an invalid_token left after the retry, not other errors', async () => {
      const srv = server()
      const { st, make } = fake(kind, (req) =>
        req.path === '/stuck' ? { status: 401, data: { error: 'invalid_token', message: 'no' } } : srv.handle(req),
      )
      const c = make({})
      const got: string[] = []
      const off = c.onAuthError((e) => got.push(`${e.status} ${e.error}${isRefusal(e) ? ' refused' : ''}`))

      st.loginFails = true
      const results = await Promise.allSettled([c.request({ path: '/api' }), c.ensureToken(), c.login()])
      assert.deepEqual(results.map((r) => r.status), ['rejected', 'rejected', 'rejected'])
      assert.deepEqual(got, ['0 wx_login_failed']) // three callers, one login, one event
      st.loginFails = false

      await c.request({ path: '/banned' }).catch(() => undefined)
      await c.request({ path: '/stuck' }).catch(() => undefined)
      await c.request({ path: '/missing' }).catch(() => undefined) // 404: not an auth error
      await c.request({ path: '/forbidden' }).catch(() => undefined) // the app's own 401 code
      await c.getPhoneNumber({ detail: {} }).catch(() => undefined)
      assert.deepEqual(got, ['0 wx_login_failed', '403 account_closed refused', '401 invalid_token'])
      off()
      await c.request({ path: '/banned' }).catch(() => undefined)
      assert.equal(got.length, 3)
    })
  })

  describe('storage key', () => {
    test('clients of two servers keep their own tokens', async () => {
      const srv = server()
      const { st, make } = fake(kind, srv.handle)
      const a = make({ baseURL: 'https://app.example' })
      const b = make({ baseURL: 'https://two.example/' })
      await a.login()
      await b.login()
      assert.equal(a.getToken(), 'tcode1')
      assert.equal(b.getToken(), 'tcode2')
      assert.deepEqual([...st.storage.keys()].sort(), [KEY, 'wxauth_token:https://two.example'])
    })

    test('an explicit storageKey wins and reads no other key', async () => {
      const srv = server()
      const { st, make } = fake(kind, srv.handle)
      st.storage.set('wxauth_token', valid('old'))
      const c = make({ storageKey: 'mine' })
      assert.equal(c.getToken(), null)
      await c.login()
      assert.equal((st.storage.get('mine') as StoredToken).token, 'tcode1')
      assert.equal((st.storage.get('wxauth_token') as StoredToken).token, 'old')
    })

    test('a token stored under the old plain key is moved to the namespaced key once', async () => {
      const srv = server()
      const { st, make } = fake(kind, srv.handle)
      srv.valid.add('old')
      st.storage.set('wxauth_token', valid('old'))
      const c = make({})
      assert.deepEqual(await c.request({ path: '/api' }), { ok: true, token: 'old' })
      assert.equal(st.logins, 0)
      assert.equal(st.storage.has('wxauth_token'), false)
      assert.equal((st.storage.get(KEY) as StoredToken).token, 'old')
      // Moved, not shared: a second server's client does not get it.
      assert.equal(make({ baseURL: 'https://two.example' }).getToken(), null)
    })
  })
})
