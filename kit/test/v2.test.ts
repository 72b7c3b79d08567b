// Client kit v2: request and response interceptors, fullResponse, aborting
// (the task's abort() and an AbortSignal), uploadFile and downloadFile with
// the token and the same re-login and retry rules, and a login without a
// nonce where the host has no secure random source. Through the native wx
// adapter on the host fakes, and through uni and Taro where they differ.

import assert from 'node:assert/strict'
import { describe, test } from 'node:test'

import { isRefusal, WxAuthError, type AnyObject, type OutgoingRequest, type StoredToken } from '../src/core.js'
import { createWxClient, type WxLike } from '../src/wx.js'
import { fakeHost, server, type Handler } from './hosts.js'

const base = 'https://app.example'
const KEY = 'wxauth_token:' + base
const revoked = (): StoredToken => ({ token: 'revoked', expiresAt: Date.now() + 3600_000, renewAt: Date.now() + 3500_000, openid: 'o' })

function make(handle: Handler, opts: AnyObject = {}) {
  const f = fakeHost('wx', handle)
  const c = createWxClient({ baseURL: base, wx: f.host as WxLike, ...opts })
  return { ...f, c }
}

const errorOf = (p: Promise<unknown>) => p.then(() => assert.fail('resolved'), (e: unknown) => e as WxAuthError)

describe('interceptors', () => {
  test('request interceptors see every attempt with its token and may change it; removed ones stop', async () => {
    const srv = server()
    const { st, c } = make(srv.handle)
    st.storage.set(KEY, revoked())
    const seen: string[] = []
    const off = c.interceptors.request.use((req: OutgoingRequest) => {
      seen.push(`${req.kind} ${req.url.replace(base, '')} ${req.header['Authorization'] ?? '-'}`)
      req.header['X-App-Version'] = '7'
    })
    await c.request({ path: '/api' })
    assert.deepEqual(seen, ['request /api Bearer revoked', 'request /wx/login -', 'request /api Bearer twxcode1'])
    assert.ok(st.seen.every((s) => s.header['X-App-Version'] === '7'))
    off()
    await c.request({ path: '/api' })
    assert.equal(seen.length, 3)
    assert.equal(st.seen.at(-1)!.header['X-App-Version'], undefined)
  })

  test('an async request interceptor may return a new request; one that throws stops it before sending', async () => {
    const srv = server()
    const { st, c } = make(srv.handle)
    c.interceptors.request.use(async (req) => ({ ...req, header: { ...req.header, 'X-Trace': 'abc' } }))
    await c.request({ path: '/api' })
    assert.equal(st.seen.at(-1)!.header['X-Trace'], 'abc')
    const n = st.seen.length
    c.interceptors.request.use((req) => {
      if (req.url.endsWith('/blocked')) throw new Error('offline mode')
    })
    await assert.rejects(c.request({ path: '/blocked' }), /offline mode/)
    assert.equal(st.seen.length, n)
  })

  test('response interceptors see the final answer after the retry and may replace it or throw', async () => {
    const srv = server()
    const { st, c } = make(srv.handle)
    st.storage.set(KEY, revoked())
    const statuses: number[] = []
    c.interceptors.response.use((res, req) => {
      statuses.push(res.statusCode)
      assert.equal(req.header['Authorization'], 'Bearer twxcode1')
      // Unwraps an app's envelope.
      return { ...res, data: { unwrapped: (res.data as AnyObject).path } }
    })
    assert.deepEqual(await c.request({ path: '/api' }), { unwrapped: '/api' })
    assert.deepEqual(statuses, [200])

    const d = make(srv.handle)
    d.c.interceptors.response.use((res) => {
      if ((res.data as AnyObject).path === '/bad-business') throw new WxAuthError(res.statusCode, 'business', 'code 1001')
    })
    const err = await errorOf(d.c.request({ path: '/bad-business' }))
    assert.equal(err.error, 'business')
  })

  test('a response interceptor can turn an error status into a success', async () => {
    const { c } = make((req) => (req.path === '/wx/login' ? server().handle(req) : { status: 404, data: 'nope' }))
    c.interceptors.response.use((res) => (res.statusCode === 404 ? { statusCode: 200, data: null } : undefined))
    assert.equal(await c.request({ path: '/maybe' }), null)
  })
})

describe('fullResponse', () => {
  test('resolves with statusCode, header and data; errors stay errors', async () => {
    const srv = server()
    const { c } = make(srv.handle)
    const r = await c.request<AnyObject>({ path: '/api', fullResponse: true })
    assert.equal(r.statusCode, 200)
    assert.equal(r.header['X-Served'], '/api')
    assert.equal(r.data.ok, true)
    const e = await errorOf(c.request({ path: '/banned', fullResponse: true }))
    assert.ok(isRefusal(e))
  })
})

describe('abort', () => {
  test("the task's abort() rejects with aborted and aborts the platform's task; no retry, no onAuthError", async () => {
    const srv = server()
    const { st, c } = make((req) => (req.path === '/long' ? { status: 200, data: {}, delay: 500 } : srv.handle(req)))
    await c.login()
    const errors: WxAuthError[] = []
    c.onAuthError((e) => errors.push(e))
    const t = c.request({ path: '/long' })
    await new Promise((r) => setTimeout(r, 20))
    t.abort()
    const err = await errorOf(t)
    assert.equal(err.error, 'aborted')
    assert.equal(err.status, 0)
    assert.equal(st.aborted, 1)
    assert.equal(st.seen.filter((s) => s.path === '/long').length, 1)
    assert.deepEqual(errors, [])
    t.abort() // twice is harmless
  })

  test('an AbortSignal aborts too; an aborted signal sends nothing', async () => {
    const srv = server()
    const { st, c } = make((req) => (req.path === '/long' ? { status: 200, data: {}, delay: 500 } : srv.handle(req)))
    await c.login()
    const ac = new AbortController()
    const p = c.request({ path: '/long', signal: ac.signal })
    setTimeout(() => ac.abort(), 20)
    assert.equal((await errorOf(p)).error, 'aborted')
    assert.equal(st.aborted, 1)

    const n = st.seen.length
    assert.equal((await errorOf(c.request({ path: '/api', signal: AbortSignal.abort() }))).error, 'aborted')
    assert.equal(st.seen.length, n)
  })

  test('aborting while the login is under way leaves the login to the other callers and sends nothing', async () => {
    const srv = server()
    const { st, c } = make(srv.handle)
    const a = c.request({ path: '/a' })
    const b = c.request<AnyObject>({ path: '/b' })
    a.abort()
    assert.equal((await errorOf(a)).error, 'aborted')
    assert.equal((await b).token, 'twxcode1')
    assert.deepEqual(
      st.seen.map((s) => s.path),
      ['/wx/login', '/b'],
    )
  })

  test('uploads and downloads abort as well', async () => {
    const srv = server()
    const { st, c } = make((req) => (req.kind !== 'request' ? { status: 200, data: {}, delay: 500 } : srv.handle(req)))
    await c.login()
    const u = c.uploadFile({ path: '/up', filePath: 'wxfile://a' })
    const d = c.downloadFile({ path: '/down' })
    setTimeout(() => (u.abort(), d.abort()), 20)
    assert.equal((await errorOf(u)).error, 'aborted')
    assert.equal((await errorOf(d)).error, 'aborted')
    assert.equal(st.aborted, 2)
  })
})

describe('uploadFile and downloadFile', () => {
  test('upload sends the token, the file and form fields, and parses the JSON answer', async () => {
    const srv = server()
    const { st, c } = make(srv.handle)
    const r = await c.uploadFile<AnyObject>({ path: '/api/avatar', filePath: 'wxfile://tmp/a.jpg', name: 'avatar', formData: { kind: 'avatar' } })
    assert.equal(r.ok, true)
    const up = st.seen.find((s) => s.kind === 'upload')!
    assert.equal(up.auth, 'Bearer twxcode1')
    assert.deepEqual(up.file, { filePath: 'wxfile://tmp/a.jpg', name: 'avatar', formData: { kind: 'avatar' } })
    const full = await c.uploadFile<AnyObject>({ path: '/api/avatar', filePath: 'wxfile://b', fullResponse: true })
    assert.equal(full.statusCode, 200)
    assert.equal(full.data.file.name, 'file') // the default field name
  })

  test('a refused token on upload: one re-login and one retry; concurrent refusals share one login', async () => {
    const srv = server()
    const { st, c } = make(srv.handle)
    st.storage.set(KEY, revoked())
    const all = await Promise.all([1, 2, 3].map((i) => c.uploadFile<AnyObject>({ path: '/up', filePath: 'f' + i })))
    assert.deepEqual(
      all.map((r) => r.token),
      ['twxcode1', 'twxcode1', 'twxcode1'],
    )
    assert.equal(st.logins.length, 1)
    assert.equal(st.seen.filter((s) => s.kind === 'upload').length, 6)
  })

  test('an upload refused for good rejects with the server error; an app refusal is not retried', async () => {
    const { st, c } = make((req) =>
      req.path === '/wx/login'
        ? server().handle(req)
        : req.path === '/banned'
          ? { status: 403, data: { error: 'account_closed', message: 'Closed.', refused_by: 'app' } }
          : { status: 401, data: { error: 'invalid_token', message: 'no' } },
    )
    const e = await errorOf(c.uploadFile({ path: '/up', filePath: 'f' }))
    assert.equal(e.status, 401)
    assert.equal(e.error, 'invalid_token')
    assert.equal(st.seen.filter((s) => s.kind === 'upload').length, 2)
    const r = await errorOf(c.uploadFile({ path: '/banned', filePath: 'f' }))
    assert.ok(isRefusal(r))
    assert.equal(st.seen.filter((s) => s.path === '/banned').length, 1)
  })

  test('download sends the token and resolves with the file; a 401 invalid_token (from WWW-Authenticate) is retried once', async () => {
    const srv = server()
    const { st, c } = make(srv.handle)
    st.storage.set(KEY, revoked())
    const r = await c.downloadFile({ path: '/report.pdf', filePath: 'wxfile://usr/report.pdf' })
    assert.equal(r.statusCode, 200)
    assert.match(r.tempFilePath, /^http:\/\/tmp\/file/)
    assert.equal(r.filePath, 'wxfile://usr/report.pdf')
    const downs = st.seen.filter((s) => s.kind === 'download')
    assert.deepEqual(
      downs.map((s) => s.auth),
      ['Bearer revoked', 'Bearer twxcode1'],
    )
  })

  test('a download refused for good names the error from WWW-Authenticate; a 404 is http_error', async () => {
    const { c } = make((req) =>
      req.path === '/wx/login'
        ? server().handle(req)
        : req.path === '/gone'
          ? { status: 404 }
          : { status: 401, header: { 'www-authenticate': 'Bearer realm="wxauth", error="invalid_token"' } },
    )
    const errors: string[] = []
    c.onAuthError((e) => errors.push(e.error))
    const e = await errorOf(c.downloadFile({ path: '/x' }))
    assert.equal(e.error, 'invalid_token')
    assert.deepEqual(errors, ['invalid_token'])
    assert.equal((await errorOf(c.downloadFile({ path: '/gone' }))).error, 'http_error')
  })

  test('public uploads (auth: false) carry no token and need no login', async () => {
    const srv = server()
    const { st, c } = make(srv.handle)
    await c.uploadFile({ path: '/public/up', filePath: 'f', auth: false })
    assert.equal(st.logins.length, 0)
    assert.equal(st.seen[0]!.auth, undefined)
  })

  test('a host without uploadFile rejects with unsupported', async () => {
    const srv = server()
    const f = fakeHost('wx', srv.handle)
    delete f.host.uploadFile
    const c = createWxClient({ baseURL: base, wx: f.host as WxLike })
    assert.equal((await errorOf(c.uploadFile({ path: '/up', filePath: 'f' }))).error, 'unsupported')
  })
})

describe('nonce', () => {
  test('without any secure random source the login goes without a nonce, and a lost answer is not resent', async () => {
    const d = Object.getOwnPropertyDescriptor(globalThis, 'crypto')!
    Object.defineProperty(globalThis, 'crypto', { value: undefined, configurable: true, writable: true })
    try {
      const srv = server()
      const { c } = make(srv.handle)
      await c.login()
      assert.deepEqual(Object.keys(srv.logins[0]!), ['code'])

      let tries = 0
      const lost = make((req) => (req.path === '/wx/login' ? (tries++, 'network') : srv.handle(req)))
      assert.equal((await errorOf(lost.c.login())).error, 'network_error')
      assert.equal(tries, 1)
    } finally {
      Object.defineProperty(globalThis, 'crypto', d)
    }
  })
})
