// The same page logic built for Douyin (mp-toutiao): no code change, the kit
// logs in with tt.login's code and anonymous code as platform douyin, and the
// phone number goes as the button's encryptedData and iv.

import assert from 'node:assert/strict'
import { before, test } from 'node:test'

import { load } from './load.js'

let t: Awaited<ReturnType<typeof load>>
before(async () => {
  t = await load('tt', 'mp-toutiao')
})

test('logs in as douyin with code and anonymous_code, provider toutiao', async () => {
  assert.deepEqual(await t.profile.whoami(), { openid: 'o-mp-toutiao' })
  assert.deepEqual(t.providers, ['toutiao'])
  const { nonce, ...body } = t.srv.logins[0]!
  assert.match(nonce, /^[A-Za-z0-9_-]{32}$/)
  assert.deepEqual(body, { code: 'ttcode1', anonymous_code: 'anon1', platform: 'douyin' })
})

test('the phone number goes as encryptedData and iv', async () => {
  await t.profile.phone({ detail: { encryptedData: 'ED', iv: 'IV' } })
  assert.deepEqual(t.st.seen.find((s) => s.path === '/wx/phone')!.data, { encryptedData: 'ED', iv: 'IV' })
})
