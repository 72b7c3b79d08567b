// The kit on every mini-program platform, with fakes of each host's API
// shape: the host is detected (native globals in the order qq, tt, jd, swan,
// my, ks, wx; uni-app's UNI_PLATFORM or uniPlatform; Taro.getEnv(), else the
// globals), its own login API is called, and the login request says the
// platform. The phone number goes the platform's way. The app's code is the
// same everywhere.

import assert from 'node:assert/strict'
import { afterEach, describe, test } from 'node:test'

import { WxAuthError, type AnyObject, type Client } from '../src/core.js'
import { createTaroClient, taroPlatformName, type TaroLike } from '../src/taro.js'
import { createUniClient, uniPlatformName, type UniLike } from '../src/uni.js'
import { createWxClient, detectNative } from '../src/wx.js'
import { fakeHost, hostNames, platformOf, server, type HostName } from './hosts.js'

const g = globalThis as AnyObject
const base = 'https://app.example'

afterEach(() => {
  for (const n of hostNames) delete g[n]
  delete process.env.UNI_PLATFORM
})

// What the login request carried, without the nonce (checked apart).
const loginBody = (d: AnyObject) => {
  const { nonce, ...rest } = typeof d === 'string' ? JSON.parse(d) : d
  assert.match(nonce, /^[A-Za-z0-9_-]{32}$/)
  return rest
}

describe('native hosts', () => {
  test('are detected in the order qq, tt, jd, swan, my, ks, then wx', () => {
    assert.equal(detectNative(), undefined)
    for (const n of hostNames) g[n] = fakeHost(n, () => ({ status: 500 })).host
    for (const n of ['qq', 'tt', 'jd', 'swan', 'my', 'ks', 'wx'] as HostName[]) {
      assert.equal(detectNative()?.name, platformOf[n])
      assert.equal(detectNative()?.host, g[n])
      delete g[n]
    }
    assert.equal(detectNative(), undefined)
    // A global without a request API is not a host.
    g.ks = { login() {} }
    assert.equal(detectNative(), undefined)
  })

  for (const name of hostNames) {
    test(`${name}: the same app code logs in with ${platformOf[name]}'s own login and sends its token`, async () => {
      const srv = server()
      const { st, host } = fakeHost(name, srv.handle)
      g[name] = host
      // Other hosts expose a wx alias; it must not win.
      if (name !== 'wx') g.wx = fakeHost('wx', () => ({ status: 500 })).host

      const client: Client = createWxClient({ baseURL: base }) // the app's one line
      assert.equal(client.platform, platformOf[name])
      const r = await client.request<AnyObject>({ path: '/api' })
      assert.equal(r.ok, true)

      const want: AnyObject = { code: `${name === 'my' ? 'my' : name}code1` }
      if (name === 'tt') want.anonymous_code = 'anon1'
      if (name !== 'wx') want.platform = platformOf[name]
      assert.deepEqual(loginBody(srv.logins[0]!), want)
      assert.deepEqual(st.logins, [name === 'swan' ? 'getLoginCode' : name === 'my' ? 'getAuthCode' : 'login'])
      if (name === 'my') assert.deepEqual(st.loginOptions, [{ scopes: 'auth_base' }])
      assert.equal(st.seen.at(-1)!.auth, r.token && 'Bearer ' + r.token)
      assert.equal(client.getToken(), r.token)
      assert.ok(st.storage.has('wxauth_token:' + base), 'the token is in the host storage')
    })
  }

  test('Douyin: a guest not logged in to Douyin logs in by anonymous_code alone; loginOptions reach tt.login', async () => {
    const srv = server()
    const { st, host } = fakeHost('tt', srv.handle)
    st.guest = true
    g.tt = host
    const c = createWxClient({ baseURL: base, loginOptions: { force: false } })
    await c.login()
    assert.deepEqual(loginBody(srv.logins[0]!), { anonymous_code: 'anon1', platform: 'douyin' })
    assert.deepEqual(st.loginOptions, [{ force: false }])
  })

  test('an explicit host and platform win over detection', async () => {
    const srv = server()
    g.qq = fakeHost('qq', () => ({ status: 500 })).host
    const ks = fakeHost('ks', srv.handle)
    const c = createWxClient({ baseURL: base, wx: ks.host as never, platform: 'kuaishou' })
    assert.equal(c.platform, 'kuaishou')
    await c.login()
    assert.equal(loginBody(srv.logins[0]!).platform, 'kuaishou')
  })

  describe('phone number', () => {
    test('WeChat posts the button code', async () => {
      const srv = server()
      const { st, host } = fakeHost('wx', srv.handle)
      g.wx = host
      const p = await createWxClient({ baseURL: base }).getPhoneNumber({ detail: { code: 'pc' } })
      assert.equal(p.purePhoneNumber, '139')
      assert.deepEqual(st.seen.find((s) => s.path === '/wx/phone')!.data, { code: 'pc' })
    })

    for (const name of ['qq', 'tt', 'swan', 'ks'] as const) {
      test(`${platformOf[name]} posts the button's encryptedData and iv; a declined button sends nothing`, async () => {
        const srv = server()
        const { st, host } = fakeHost(name, srv.handle)
        g[name] = host
        const c = createWxClient({ baseURL: base })
        const p = await c.getPhoneNumber({ detail: { encryptedData: 'ED', iv: 'IV', errMsg: 'getPhoneNumber:ok' } })
        assert.equal(p.purePhoneNumber, '139')
        assert.deepEqual(st.seen.find((s) => s.path === '/wx/phone')!.data, { encryptedData: 'ED', iv: 'IV' })
        const n = st.seen.length
        const err = await c.getPhoneNumber({ detail: { errMsg: 'getPhoneNumber:fail auth deny' } }).catch((e: unknown) => e)
        assert.ok(err instanceof WxAuthError)
        assert.equal(err.error, 'phone_denied')
        assert.equal(err.message, 'getPhoneNumber:fail auth deny')
        assert.equal(st.seen.length, n)
      })
    }

    test("Alipay posts my.getPhoneNumber's response text unchanged; a refusal sends nothing", async () => {
      const srv = server()
      const { st, host } = fakeHost('my', srv.handle)
      g.my = host
      const c = createWxClient({ baseURL: base })
      st.phoneResponse = '{"response":"c2VhbGVk","sign":"U0lHTg==","sign_type":"RSA2","encrypt_type":"AES","charset":"UTF-8"}'
      const p = await c.getPhoneNumber() // from the getAuthorize button's handler: no event needed
      const sent = st.seen.find((s) => s.path === '/wx/phone')!
      assert.equal(sent.data, st.phoneResponse)
      assert.equal(sent.header['Content-Type'], 'application/json')
      // Alipay's answer has snake_case names; the kit adds WeChat's.
      assert.equal(p.purePhoneNumber, '13800000000')
      assert.equal(p.phoneNumber, '13800000000')
      assert.equal(p.countryCode, '86')

      st.phoneResponse = undefined
      const n = st.seen.length
      const err = await c.getPhoneNumber().catch((e: unknown) => e)
      assert.ok(err instanceof WxAuthError)
      assert.equal(err.error, 'phone_denied')
      assert.equal(err.message, '用户取消授权')
      assert.equal(st.seen.length, n)
    })
  })

  describe("Alipay's own shapes", () => {
    test('a non-2xx answer (fail with error 19) is an answer: a refused token leads to one re-login and retry', async () => {
      const srv = server()
      const { st, host } = fakeHost('my', srv.handle)
      st.storage.set('wxauth_token:' + base, { token: 'revoked', expiresAt: Date.now() + 3600_000, renewAt: Date.now() + 3500_000, openid: 'o' })
      g.my = host
      const c = createWxClient({ baseURL: base })
      assert.equal((await c.request<AnyObject>({ path: '/api' })).token, 'tmycode1')
      assert.deepEqual(
        st.seen.map((s) => s.path),
        ['/api', '/wx/login', '/api'],
      )
      const err = await c.request({ path: '/banned' }).catch((e: unknown) => e)
      assert.ok(err instanceof WxAuthError)
      assert.equal(err.status, 403)
      assert.equal(err.refusedBy, 'app')
    })

    test('objects go as JSON with a content-type; GET data stays query parameters', async () => {
      const srv = server()
      const { st, host } = fakeHost('my', srv.handle)
      g.my = host
      const c = createWxClient({ baseURL: base })
      await c.request({ path: '/api', method: 'POST', data: { a: 1 } })
      await c.request({ path: '/api', data: { q: 'x' } })
      const [post, get] = st.seen.filter((s) => s.path === '/api')
      assert.equal(post!.data, '{"a":1}')
      assert.equal(post!.header['content-type'], 'application/json')
      assert.deepEqual(get!.data, { q: 'x' })
    })

    test('uploads name the file with fileName and fileType; downloads give apFilePath as tempFilePath', async () => {
      const srv = server()
      const { st, host } = fakeHost('my', srv.handle)
      g.my = host
      const c = createWxClient({ baseURL: base })
      const up = await c.uploadFile<AnyObject>({ path: '/avatar', filePath: 'https://resource/a.jpg', name: 'avatar' })
      assert.deepEqual(up.file, { filePath: 'https://resource/a.jpg', name: 'avatar', fileType: 'image' })
      const down = await c.downloadFile({ path: '/report' })
      assert.match(down.tempFilePath, /^https:\/\/resource\/apml/)
      assert.equal(st.seen.filter((s) => s.kind !== 'request').every((s) => s.auth?.startsWith('Bearer ')), true)
    })
  })
})

// A uni object on a host's fake: uni's API is wx's, with uni.login's provider.
function fakeUni(name: HostName, handle: Parameters<typeof fakeHost>[1], uniPlatform?: string) {
  const f = fakeHost(name === 'my' ? 'wx' : name, handle)
  const providers: string[] = []
  const uni: UniLike = {
    ...(f.host as UniLike),
    login: (o) => {
      providers.push(String(o.provider))
      if (name === 'my') {
        // uni on Alipay calls my.getAuthCode and names its authCode code.
        f.st.logins.push('getAuthCode')
        f.st.loginOptions.push({ scopes: o.scopes })
        return setTimeout(() => o.success?.({ code: 'alipaycode' }), 5)
      }
      return (f.host as UniLike).login(o)
    },
    getSystemInfoSync: () => ({ uniPlatform }),
  }
  return { ...f, uni, providers }
}

describe('uni-app', () => {
  test('the platform comes from process.env.UNI_PLATFORM, else uni.getSystemInfoSync().uniPlatform', () => {
    const u = (p?: string) => ({ getSystemInfoSync: () => ({ uniPlatform: p }) }) as UniLike
    assert.equal(uniPlatformName(u('mp-toutiao')), 'douyin')
    process.env.UNI_PLATFORM = 'mp-kuaishou'
    assert.equal(uniPlatformName(u('mp-toutiao')), 'kuaishou')
    delete process.env.UNI_PLATFORM
    const table: [string | undefined, string][] = [
      ['mp-weixin', 'wechat'],
      ['mp-qq', 'qq'],
      ['mp-alipay', 'alipay'],
      ['mp-baidu', 'baidu'],
      ['mp-jd', 'jd'],
      ['mp-lark', 'lark'],
      ['h5', 'wechat'],
      [undefined, 'wechat'],
    ]
    for (const [p, want] of table) assert.equal(uniPlatformName(u(p)), want, String(p))
    assert.equal(uniPlatformName({} as UniLike), 'wechat')
  })

  test('on mp-toutiao: provider toutiao, code and anonymous_code, platform douyin', async () => {
    process.env.UNI_PLATFORM = 'mp-toutiao'
    const srv = server()
    const f = fakeUni('tt', srv.handle)
    const c = createUniClient({ baseURL: base, uni: f.uni })
    assert.equal(c.platform, 'douyin')
    await c.login()
    assert.deepEqual(f.providers, ['toutiao'])
    assert.deepEqual(loginBody(srv.logins[0]!), { code: 'ttcode1', anonymous_code: 'anon1', platform: 'douyin' })
  })

  test('on mp-alipay (from uniPlatform): the silent auth_base scope, and the phone number from the global my', async () => {
    const srv = server()
    const f = fakeUni('my', srv.handle, 'mp-alipay')
    const my = fakeHost('my', () => ({ status: 500 }))
    my.st.phoneResponse = '{"response":"x","sign":"y"}'
    g.my = my.host
    const c = createUniClient({ baseURL: base, uni: f.uni })
    assert.equal(c.platform, 'alipay')
    await c.getPhoneNumber()
    assert.deepEqual(f.providers, ['alipay'])
    assert.deepEqual(f.st.loginOptions, [{ scopes: 'auth_base' }])
    assert.deepEqual(loginBody(srv.logins[0]!), { code: 'alipaycode', platform: 'alipay' })
    assert.equal(f.st.seen.find((s) => s.path === '/wx/phone')!.data, '{"response":"x","sign":"y"}')
  })
})

// A Taro object on a host's fake: Taro's promise forms of the wx-style APIs.
function fakeTaro(name: HostName, handle: Parameters<typeof fakeHost>[1], env: string | undefined) {
  const f = fakeHost(name === 'my' ? 'wx' : name, handle)
  const h = f.host as AnyObject
  const promised =
    (api: string) =>
    (o: AnyObject = {}) => {
      let task: AnyObject = {}
      const p = new Promise((resolve, reject) => (task = h[api]({ ...o, success: resolve, fail: reject })))
      return Object.assign(p, { abort: () => task?.abort?.() })
    }
  const taro: TaroLike = {
    login: (o?: AnyObject) =>
      name === 'my'
        ? (f.st.logins.push('getAuthCode'), f.st.loginOptions.push(o ?? {}), Promise.resolve({ code: 'taroalipay' }))
        : (promised('login')(o) as Promise<AnyObject>),
    request: promised('request') as never,
    uploadFile: promised('uploadFile') as never,
    downloadFile: promised('downloadFile') as never,
    getStorageSync: h.getStorageSync,
    setStorageSync: h.setStorageSync,
    removeStorageSync: h.removeStorageSync,
  }
  if (env !== undefined) taro.getEnv = () => env
  return { ...f, taro }
}

describe('Taro', () => {
  test('Taro.getEnv() names the platform; where it names none the kit knows (Kuaishou), the globals do', () => {
    const t = (e?: string) => ({ getEnv: e === undefined ? undefined : () => e })
    const table: [string, string][] = [
      ['WEAPP', 'wechat'],
      ['QQ', 'qq'],
      ['TT', 'douyin'],
      ['ALIPAY', 'alipay'],
      ['SWAN', 'baidu'],
      ['JD', 'jd'],
      ['WEB', 'wechat'],
    ]
    for (const [e, want] of table) assert.equal(taroPlatformName(t(e)), want, e)
    g.ks = fakeHost('ks', () => ({ status: 500 })).host
    g.wx = fakeHost('wx', () => ({ status: 500 })).host
    assert.equal(taroPlatformName(t('KWAI')), 'kuaishou')
    assert.equal(taroPlatformName(t()), 'kuaishou')
    assert.equal(taroPlatformName(t('TT')), 'douyin')
  })

  test('on TT: code and anonymous_code through Taro.login, platform douyin', async () => {
    const srv = server()
    const f = fakeTaro('tt', srv.handle, 'TT')
    const c = createTaroClient({ baseURL: base, taro: f.taro })
    assert.equal(c.platform, 'douyin')
    assert.equal((await c.request<AnyObject>({ path: '/api' })).token, 'tttcode1')
    assert.deepEqual(loginBody(srv.logins[0]!), { code: 'ttcode1', anonymous_code: 'anon1', platform: 'douyin' })
  })

  test('on ALIPAY: Taro.login with the auth_base scope, platform alipay', async () => {
    const srv = server()
    const f = fakeTaro('my', srv.handle, 'ALIPAY')
    const c = createTaroClient({ baseURL: base, taro: f.taro })
    await c.login()
    assert.deepEqual(f.st.loginOptions, [{ scopes: 'auth_base' }])
    assert.deepEqual(loginBody(srv.logins[0]!), { code: 'taroalipay', platform: 'alipay' })
  })

  test('in a Kuaishou build (no getEnv value): platform kuaishou from the global ks', async () => {
    const srv = server()
    g.ks = fakeHost('ks', () => ({ status: 500 })).host
    const f = fakeTaro('ks', srv.handle, 'KWAI')
    const c = createTaroClient({ baseURL: base, taro: f.taro })
    await c.login()
    assert.equal(loginBody(srv.logins[0]!).platform, 'kuaishou')
  })
})
