// The recipes in recipes/ (which the READMEs include verbatim), run against
// fakes: a wx.request wrapper, the real luch-request package (bundled by
// esbuild, as uni-app's compiler bundles it, on a fake uni.request), and a
// Taro.addInterceptor chain that behaves like Taro's own (each proceed()
// passes the request to the next interceptor, the last one sends it). For
// each: the token is added to requests to the server and only to them, a 401
// invalid_token is answered by one silent re-login and one retry, concurrent
// refusals share one login, and an app refusal is not retried.

import assert from 'node:assert/strict'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { before, describe, test } from 'node:test'
import { pathToFileURL } from 'node:url'

import { build } from 'esbuild'

import { createRequest } from '../recipes/wx-request.js'
import { useWxAuth, type LuchRequest } from '../recipes/luch-request.js'
import { wxauthInterceptor, type TaroChain } from '../recipes/taro-interceptor.js'
import type { AnyObject, Client, StoredToken } from '../src/core.js'
import { createTaroClient, type TaroLike } from '../src/taro.js'
import { createWxClient, type WxLike } from '../src/wx.js'
import { fakeHost, server, type Handler, type Seen } from './hosts.js'

const base = 'https://app.example'
const KEY = 'wxauth_token:' + base
const revoked = (): StoredToken => ({ token: 'revoked', expiresAt: Date.now() + 3600_000, renewAt: Date.now() + 3500_000, openid: 'o' })

// The app's HTTP layer and the kit's client share one server; the client logs in through its own wx.
function setup(handle: Handler) {
  const kit = fakeHost('wx', handle)
  const client = createWxClient({ baseURL: base, wx: kit.host as WxLike })
  const app = fakeHost('wx', handle) // the transport of the app's own layer
  return { client, kit, app }
}

// The server of the recipe tests: /stuck always refuses, /refused is an app refusal with a 401 code.
function recipeServer() {
  const srv = server()
  const handle: Handler = (req) => {
    if (req.path === '/stuck' && req.auth) return { status: 401, data: { error: 'invalid_token', message: 'no' } }
    if (req.path === '/refused') return { status: 401, data: { error: 'invalid_token', message: 'no', refused_by: 'app' } }
    return srv.handle(req)
  }
  return { ...srv, handle }
}

const paths = (seen: Seen[], path: string) => seen.filter((s) => s.path === path).map((s) => s.auth ?? '-')

// A transport-neutral view of the three recipes: send(path, url?) resolves with {status, data}.
interface Recipe {
  name: string
  make(client: Client, transport: AnyObject): (url: string) => Promise<{ status: number; data: AnyObject }>
}

let Luch: new (config: AnyObject) => LuchRequest & AnyObject

before(async () => {
  // luch-request ships ES sources with bundler-style imports; bundle them as uni-app's compiler does.
  const entry = createRequire(import.meta.url).resolve('luch-request')
  const out = await build({ entryPoints: [entry], bundle: true, format: 'esm', platform: 'neutral', write: false, logLevel: 'silent' })
  const file = join(await mkdtemp(join(tmpdir(), 'luch-')), 'luch-request.mjs')
  await writeFile(file, out.outputFiles[0]!.text)
  Luch = (await import(pathToFileURL(file).href)).default
})

// Taro's interceptor chain, as @tarojs/api builds it: proceed(params) calls
// interceptors[index] with a chain at index + 1; the last one sends.
class Chain implements TaroChain {
  constructor(
    public requestParams: AnyObject & { url: string },
    private interceptors: ((c: Chain) => Promise<any>)[],
    private index = 0,
  ) {}
  proceed(requestParams: AnyObject & { url: string }): Promise<any> {
    this.requestParams = requestParams
    if (this.index >= this.interceptors.length) throw new Error('chain 参数错误')
    return this.interceptors[this.index]!(new Chain(this.requestParams, this.interceptors, this.index + 1))
  }
}

// Taro.request with addInterceptor, on a wx-style transport.
function fakeTaro(transport: AnyObject) {
  const interceptors: ((c: Chain) => Promise<any>)[] = []
  const send = (c: Chain) =>
    new Promise((resolve, reject) => transport.request({ ...c.requestParams, success: resolve, fail: reject }))
  return {
    addInterceptor: (i: (c: Chain) => Promise<any>) => void interceptors.push(i),
    request: (params: AnyObject & { url: string }) => new Chain(params, [...interceptors, send]).proceed(params),
  }
}

const recipes: Recipe[] = [
  {
    name: 'wx.request wrapper (recipes/wx-request.ts)',
    make: (client, transport) => {
      const api = createRequest(client, transport as never)
      const other = (url: string) =>
        new Promise<AnyObject>((resolve) => transport.request({ url, success: resolve, fail: resolve }))
      return async (url) => {
        if (!url.startsWith(base)) {
          const r = await other(url)
          return { status: r.statusCode, data: r.data }
        }
        const r = await api<AnyObject>({ path: url.slice(base.length) })
        return { status: r.statusCode, data: r.data }
      }
    },
  },
  {
    name: 'luch-request (recipes/luch-request.ts)',
    make: (client, transport) => {
      // luch-request calls uni.request and reads its complete callback.
      ;(globalThis as AnyObject).uni = {
        request: (o: AnyObject) =>
          transport.request({ ...o, success: (r: AnyObject) => o.complete(r), fail: (e: AnyObject) => o.complete(e) }),
      }
      const http = new Luch({ baseURL: base })
      useWxAuth(http, client)
      return (url) =>
        http.request({ url: url.startsWith(base) ? url.slice(base.length) : url, method: 'GET' }).then(
          (r: AnyObject) => ({ status: r.statusCode, data: r.data }),
          // luch-request rejects a non-2xx answer with the response.
          (r: AnyObject) => ({ status: r.statusCode, data: r.data }),
        )
    },
  },
  {
    name: 'Taro.addInterceptor (recipes/taro-interceptor.ts)',
    make: (client, transport) => {
      const Taro = fakeTaro(transport)
      Taro.addInterceptor(wxauthInterceptor(client))
      return (url) => Taro.request({ url, method: 'GET' }).then((r: AnyObject) => ({ status: r.statusCode, data: r.data }))
    },
  },
]

for (const r of recipes) {
  describe(r.name, () => {
    test('adds the token to requests to the server, logging in first; other hosts get none', async () => {
      const srv = recipeServer()
      const { client, app } = setup(srv.handle)
      const send = r.make(client, app.host)
      const res = await send(base + '/api')
      assert.equal(res.status, 200)
      assert.equal(res.data.token, 'twxcode1')
      assert.equal(srv.logins.length, 1)
      await send('https://cdn.example/public/x')
      assert.equal(app.st.seen.at(-1)!.auth, undefined)
      assert.equal(srv.logins.length, 1)
    })

    test('a 401 invalid_token: one silent re-login and one retry', async () => {
      const srv = recipeServer()
      const { client, kit, app } = setup(srv.handle)
      kit.st.storage.set(KEY, revoked())
      const res = await r.make(client, app.host)(base + '/api')
      assert.equal(res.status, 200)
      assert.equal(res.data.token, 'twxcode1')
      assert.deepEqual(paths(app.st.seen, '/api'), ['Bearer revoked', 'Bearer twxcode1'])
      assert.equal(srv.logins.length, 1)
    })

    test('concurrent 401s share one login', async () => {
      const srv = recipeServer()
      const { client, kit, app } = setup(srv.handle)
      kit.st.storage.set(KEY, revoked())
      const send = r.make(client, app.host)
      const all = await Promise.all([base + '/api', base + '/slow', base + '/api', base + '/api'].map((u) => send(u)))
      assert.deepEqual(
        all.map((x) => [x.status, x.data.token]),
        [
          [200, 'twxcode1'],
          [200, 'twxcode1'],
          [200, 'twxcode1'],
          [200, 'twxcode1'],
        ],
      )
      assert.equal(srv.logins.length, 1)
      assert.equal(app.st.seen.filter((s) => s.auth === 'Bearer revoked').length, 4)
      assert.equal(app.st.seen.filter((s) => s.auth === 'Bearer twxcode1').length, 4)
    })

    test('a server that keeps refusing gets exactly one retry; an app refusal none', async () => {
      const srv = recipeServer()
      const { client, app } = setup(srv.handle)
      const send = r.make(client, app.host)
      const stuck = await send(base + '/stuck')
      assert.equal(stuck.status, 401)
      assert.equal(paths(app.st.seen, '/stuck').length, 2)
      assert.equal(srv.logins.length, 2) // the first login, then the one re-login
      const refused = await send(base + '/refused')
      assert.equal(refused.status, 401)
      assert.equal(refused.data.refused_by, 'app')
      assert.equal(paths(app.st.seen, '/refused').length, 1)
      assert.equal(srv.logins.length, 2)
    })
  })
}

describe('Taro.addInterceptor with the kit on the same Taro', () => {
  test("the kit's own requests (login, refresh, its request()) pass the interceptor untouched: no deadlock, no second retry", async () => {
    const srv = recipeServer()
    const host = fakeHost('wx', srv.handle)
    const Taro = fakeTaro(host.host)
    const promised = (api: string) => (o: AnyObject = {}) => new Promise((resolve, reject) => host.host[api]({ ...o, success: resolve, fail: reject }))
    const client = createTaroClient({
      baseURL: base,
      taro: {
        ...(Taro as AnyObject),
        login: promised('login'),
        getStorageSync: host.host.getStorageSync,
        setStorageSync: host.host.setStorageSync,
        removeStorageSync: host.host.removeStorageSync,
      } as TaroLike,
    })
    Taro.addInterceptor(wxauthInterceptor(client))
    host.st.storage.set(KEY, revoked())
    const [mine, theirs] = await Promise.all([
      client.request<AnyObject>({ path: '/api' }),
      Taro.request({ url: base + '/api', method: 'GET' }) as Promise<AnyObject>,
    ])
    assert.equal(mine.token, 'twxcode1')
    assert.equal(theirs.data.token, 'twxcode1')
    assert.equal(srv.logins.length, 1)
    assert.deepEqual(paths(host.st.seen, '/api'), ['Bearer revoked', 'Bearer revoked', 'Bearer twxcode1', 'Bearer twxcode1'])
    const stuck = (await client.request({ path: '/stuck' }).catch((e: unknown) => e)) as AnyObject
    assert.equal(stuck.status, 401)
    assert.equal(paths(host.st.seen, '/stuck').length, 2, 'the kit retried once; the interceptor did not add another')
  })
})
