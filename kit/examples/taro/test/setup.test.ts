// The Taro snippet's wiring on a fake Taro whose request runs the interceptor
// chain as Taro's does: the app's own Taro.request to the server carries the
// token after one shared login, a refused token is answered by one re-login
// and one retry, other hosts get no token; the client knows its platform from
// Taro.getEnv().

import assert from 'node:assert/strict'
import { test } from 'node:test'

import type TaroType from '@tarojs/taro'

import { fakeHost, server } from '../../../test/hosts.js'
import { setupWxAuth } from '../src/wxauth.js'

type AnyObject = Record<string, any>

// Taro's request with its interceptor chain: proceed(params) hands the request to the next interceptor, the last one sends.
function fakeTaro(env: string, host: AnyObject) {
  const interceptors: ((chain: AnyObject) => Promise<any>)[] = []
  const promised = (api: string) => (o: AnyObject = {}) => new Promise((resolve, reject) => host[api]({ ...o, success: resolve, fail: reject }))
  const chain = (params: AnyObject, list: typeof interceptors, i: number): AnyObject => ({
    requestParams: params,
    proceed(p: AnyObject) {
      return list[i]!(chain(p, list, i + 1))
    },
  })
  const send = (c: AnyObject) => promised('request')(c.requestParams)
  return {
    getEnv: () => env,
    addInterceptor: (f: (c: AnyObject) => Promise<any>) => void interceptors.push(f),
    request: (params: AnyObject) => chain(params, [...interceptors, send], 0).proceed(params),
    login: promised('login'),
    uploadFile: promised('uploadFile'),
    downloadFile: promised('downloadFile'),
    getStorageSync: host.getStorageSync,
    setStorageSync: host.setStorageSync,
    removeStorageSync: host.removeStorageSync,
  }
}

const base = 'https://api.example.com'

test("the app's Taro.request carries the token; a refused one gets one re-login and retry; other hosts none", async () => {
  const srv = server()
  const f = fakeHost('wx', srv.handle)
  const Taro = fakeTaro('WEAPP', f.host)
  const client = setupWxAuth(Taro as unknown as typeof TaroType, base)
  assert.equal(client.platform, 'wechat')

  const all = await Promise.all([1, 2, 3].map(() => Taro.request({ url: base + '/api/orders' })))
  assert.deepEqual(
    all.map((r: AnyObject) => r.data.token),
    ['twxcode1', 'twxcode1', 'twxcode1'],
  )
  assert.equal(srv.logins.length, 1)

  srv.valid.clear()
  const again: AnyObject = await Taro.request({ url: base + '/api/orders' })
  assert.equal(again.statusCode, 200)
  assert.equal(again.data.token, 'twxcode2')

  await Taro.request({ url: 'https://cdn.example/x.png' })
  assert.equal(f.st.seen.at(-1)!.auth, undefined)
})

test('on Douyin (getEnv TT) the same setup logs in as douyin', async () => {
  const srv = server()
  const f = fakeHost('tt', srv.handle)
  const client = setupWxAuth(fakeTaro('TT', f.host) as unknown as typeof TaroType, base)
  assert.equal(client.platform, 'douyin')
  await client.login()
  assert.equal(srv.logins[0]!.platform, 'douyin')
  assert.equal(srv.logins[0]!.anonymous_code, 'anon1')
})
