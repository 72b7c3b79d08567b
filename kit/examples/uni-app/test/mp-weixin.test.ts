// The page logic of the uni-app example in its mp-weixin build, on a fake
// uni: luch-request sends with the token (the kit's recipe), a refused token
// gets one re-login and one retry, the avatar upload, the nickname and the
// phone code.

import assert from 'node:assert/strict'
import { before, test } from 'node:test'

import { load } from './load.js'

let t: Awaited<ReturnType<typeof load>>
before(async () => {
  t = await load('wx', 'mp-weixin')
})

test('whoami through luch-request logs in with provider weixin and sends the token', async () => {
  assert.deepEqual(await t.profile.whoami(), { openid: 'o-mp-weixin' })
  assert.deepEqual(t.providers, ['weixin'])
  const [login] = t.srv.logins
  assert.equal(login.platform, undefined)
  assert.equal(login.code, 'wxcode1')
  assert.equal(t.st.seen.at(-1)!.auth, 'Bearer twxcode1')
})

test('a refused token: one re-login and one retry, shared by concurrent requests', async () => {
  t.srv.valid.clear()
  const all = await Promise.all([t.profile.whoami(), t.profile.whoami(), t.profile.whoami()])
  assert.equal(all.length, 3)
  assert.equal(t.srv.logins.length, 2)
})

test('the avatar upload and the nickname go with the token', async () => {
  const up = (await t.profile.uploadAvatar('http://tmp/a.jpg')) as { saved: { name: string; filePath: string } }
  assert.deepEqual(up.saved, { filePath: 'http://tmp/a.jpg', name: 'avatar' })
  assert.deepEqual(await t.profile.saveNickname(' 小明 '), { saved: { nickname: '小明' } })
})

test("the phone number from the getPhoneNumber button's code; a refusal's message is shown as it is", async () => {
  await t.profile.phone({ detail: { code: 'pc' } })
  assert.deepEqual(t.st.seen.find((s) => s.path === '/wx/phone')!.data, { code: 'pc' })
  const e = await t.profile.phone({ detail: { errMsg: 'getPhoneNumber:fail user deny' } }).catch((x: unknown) => x)
  assert.equal(t.profile.explain(e), '0 phone_denied: getPhoneNumber:fail user deny')
})
