// Unit tests of what differs between the adapters: where they find their
// framework object, how they call it, and the random source behind the nonce.

import assert from 'node:assert/strict'
import { after, describe, test } from 'node:test'

import { base64url, cryptoRandomBytes, WxAuthError } from '../src/core.js'
import { createTaroClient, type TaroLike } from '../src/taro.js'
import { createUniClient, type UniLike } from '../src/uni.js'
import { createWxClient, wxRandomBytes } from '../src/wx.js'
import { fake } from './fakes.js'

const loginReply = { token: 't', token_type: 'Bearer', expires_in: 7200, openid: 'o1' }
const g = globalThis as { wx?: unknown; uni?: unknown }

after(() => {
  delete g.wx
  delete g.uni
})

describe('base64url', () => {
  test('matches Node for every length remainder', () => {
    for (let n = 0; n <= 40; n++) {
      const b = new Uint8Array(n).map((_, i) => (i * 97 + n * 31) & 255)
      assert.equal(base64url(b), Buffer.from(b).toString('base64url'), `length ${n}`)
    }
  })
})

describe('random source', () => {
  test('crypto.getRandomValues gives distinct bytes of the asked length', () => {
    const a = cryptoRandomBytes(24)
    assert.equal(a.length, 24)
    assert.notDeepEqual(a, cryptoRandomBytes(24))
  })

  test('without crypto and without a framework source, no_random_source', async () => {
    const d = Object.getOwnPropertyDescriptor(globalThis, 'crypto')!
    Object.defineProperty(globalThis, 'crypto', { value: undefined, configurable: true, writable: true })
    try {
      assert.throws(() => cryptoRandomBytes(24), (e: unknown) => e instanceof WxAuthError && e.error === 'no_random_source')
      await assert.rejects(wxRandomBytes(undefined, 24), (e: unknown) => e instanceof WxAuthError && e.error === 'no_random_source')
    } finally {
      Object.defineProperty(globalThis, 'crypto', d)
    }
  })

  test('wx.getRandomValues answering the wrong length or throwing falls back to crypto', async () => {
    const short = { getRandomValues: (o: { success?: (r: { randomValues: ArrayBuffer }) => void }) => o.success?.({ randomValues: new ArrayBuffer(2) }) }
    assert.equal((await wxRandomBytes(short, 24)).length, 24)
    const throws = {
      getRandomValues: () => {
        throw new Error('not here')
      },
    }
    assert.equal((await wxRandomBytes(throws, 24)).length, 24)
  })
})

for (const [name, create] of [
  ['wx', createWxClient],
  ['uni', createUniClient],
] as const) {
  test(`the ${name} adapter uses the global ${name}, and says so when there is none`, async () => {
    assert.throws(() => create({ baseURL: 'https://a.example' }), new RegExp(`no global ${name}`))
    const f = fake(name, () => ({ status: 200, data: loginReply }))
    g[name] = f.host
    try {
      await create({ baseURL: 'https://a.example' }).login()
      assert.equal(f.st.logins, 1)
    } finally {
      delete g[name]
    }
  })
}

describe('uni adapter', () => {
  test('logs in with provider weixin unless told otherwise', async () => {
    const f = fake('uni', () => ({ status: 200, data: loginReply }))
    await f.make({}).login()
    await createUniClient({ baseURL: 'https://a.example', uni: f.host as UniLike, provider: 'qq' }).login()
    assert.deepEqual((f.host as { provider: string[] }).provider, ['weixin', 'qq'])
  })

  test('calls uni with callbacks, so a Vue 2 or Vue 3 promise form makes no difference', async () => {
    const f = fake('uni', () => ({ status: 200, data: loginReply }))
    const u = f.host as UniLike
    const strict: UniLike = {
      ...u,
      login: (o) => (assert.ok(o.success && o.fail), u.login(o)),
      request: (o) => (assert.ok(o.success && o.fail), u.request(o)),
    }
    await createUniClient({ baseURL: 'https://a.example', uni: strict }).login()
    assert.equal(f.st.logins, 1)
  })

  test('in the WeChat build, takes the nonce from the global wx.getRandomValues', async () => {
    const f = fake('uni', () => ({ status: 200, data: loginReply }))
    const w = fake('wx', () => ({ status: 500 }))
    g.wx = w.host
    try {
      await f.make({}).login()
      assert.equal(w.st.randoms, 1)
    } finally {
      delete g.wx
    }
  })
})

describe('Taro adapter', () => {
  test('needs the Taro object', () => {
    assert.throws(() => createTaroClient({ baseURL: 'https://a.example' } as never), /options\.taro/)
  })

  test('uses the promise form and the answer of Taro.request', async () => {
    const calls: string[] = []
    const taro: TaroLike = {
      login: async () => (calls.push('login'), { code: 'c1', errMsg: 'login:ok' }),
      request: async (o) => {
        calls.push(`${o.method} ${o.url} ${JSON.stringify(o.data)}`.replace(/"nonce":"[^"]+"/, '"nonce":…'))
        assert.equal(o.dataType, 'json')
        return { statusCode: 200, data: loginReply, header: {}, errMsg: 'request:ok' } as never
      },
      getStorageSync: () => '',
      setStorageSync: () => undefined,
      removeStorageSync: () => undefined,
    }
    assert.equal((await createTaroClient({ baseURL: 'https://a.example', taro }).login()).openid, 'o1')
    assert.deepEqual(calls, ['login', 'POST https://a.example/wx/login {"code":"c1","nonce":…}'])
  })
})
