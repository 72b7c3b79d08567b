// The example's pages as WeChat runs them, on a fake wx and a fake server:
// Page() and App() hand over their definitions, the test calls their handlers
// with the events WeChat would send, and reads what they put on the screen.
// The profile flow: the chooseAvatar button's file uploaded with the token
// (one re-login and retry when the token was refused), the nickname from a
// form with <input type="nickname">, the phone number from the
// getPhoneNumber button's code.

import assert from 'node:assert/strict'
import { before, describe, test } from 'node:test'

import { fakeHost, server } from '../../../kit/test/hosts.js'

type AnyObject = Record<string, any>

const g = globalThis as AnyObject
const srv = server()
const wx = fakeHost('wx', (req) => {
  if (req.path === '/api/avatar' && req.auth === 'Bearer ' + [...srv.valid].at(-1)) {
    return { status: 200, data: { avatar: 'https://cdn.example/avatars/1.jpg', field: req.file?.name, file: req.file?.filePath } }
  }
  if (req.path === '/api/profile' && req.auth) return { status: 200, data: { saved: req.data } }
  return srv.handle(req)
})
const pages: Record<string, AnyObject> = {}
const navigated: string[] = []
let app: AnyObject = {}

// A page instance as WeChat makes one from its definition.
function instance(def: AnyObject): AnyObject {
  const p: AnyObject = { ...def, data: structuredClone(def.data) }
  p.setData = (d: AnyObject) => Object.assign(p.data, d)
  return p
}

before(async () => {
  g.wx = { ...wx.host, navigateTo: (o: { url: string }) => navigated.push(o.url) }
  g.App = (def: AnyObject) => (app = def)
  g.Page = (def: AnyObject) => (pages[current] = def)
  let current = ''
  for (const name of ['index', 'profile']) {
    current = name
    await import(`../miniprogram/pages/${name}/${name}.js`)
  }
  await import('../miniprogram/app.js')
})

describe('the example pages', () => {
  test('onLaunch logs in early; the index page shows whoami and opens the profile', async () => {
    app.onLaunch()
    const index = instance(pages.index!)
    await index.onWhoami()
    assert.match(index.data.output, /^GET \/api\/whoami\n/)
    assert.equal(srv.logins.length, 1, 'onLaunch and the first request shared one login')
    index.onProfile()
    assert.deepEqual(navigated, ['/pages/profile/profile'])
  })

  test('chooseAvatar: the picked file is uploaded to the avatar route with the token', async () => {
    const profile = instance(pages.profile!)
    await profile.onChooseAvatar({ detail: { avatarUrl: 'http://tmp/avatar.jpg' } })
    assert.equal(profile.data.avatarUrl, 'http://tmp/avatar.jpg')
    assert.match(profile.data.output, /^POST \/api\/avatar\n/)
    assert.match(profile.data.output, /"field": "avatar"/)
    const up = wx.st.seen.filter((s) => s.kind === 'upload').at(-1)!
    assert.equal(up.path, '/api/avatar')
    assert.equal(up.file?.filePath, 'http://tmp/avatar.jpg')
  })

  test('a refused token on the avatar upload: one silent re-login and one retry', async () => {
    srv.valid.clear()
    const logins = srv.logins.length
    const profile = instance(pages.profile!)
    await profile.onChooseAvatar({ detail: { avatarUrl: 'http://tmp/b.jpg' } })
    assert.match(profile.data.output, /^POST \/api\/avatar\n/)
    assert.equal(srv.logins.length, logins + 1)
  })

  test('the nickname is read from the form on submit; an empty one sends nothing', async () => {
    const profile = instance(pages.profile!)
    await profile.onSaveNickname({ detail: { value: { nickname: '  小明 ' } } })
    assert.match(profile.data.output, /"nickname": "小明"/)
    const n = wx.st.seen.length
    await profile.onSaveNickname({ detail: { value: { nickname: ' ' } } })
    assert.equal(profile.data.output, 'nickname is empty')
    assert.equal(wx.st.seen.length, n)
  })

  test("getPhoneNumber posts the button's code; a declined button shows WeChat's message", async () => {
    const profile = instance(pages.profile!)
    await profile.onPhone({ detail: { code: 'phone-code', errMsg: 'getPhoneNumber:ok' } })
    assert.match(profile.data.output, /^POST \/wx\/phone\n/)
    assert.deepEqual(wx.st.seen.find((s) => s.path === '/wx/phone')!.data, { code: 'phone-code' })
    await profile.onPhone({ detail: { errMsg: 'getPhoneNumber:fail user deny' } })
    assert.equal(profile.data.output, 'POST /wx/phone failed\n0 phone_denied: getPhoneNumber:fail user deny')
  })

  test('logout forgets the token and says so', async () => {
    const index = instance(pages.index!)
    await index.onLogout()
    assert.equal(index.data.output, 'logged out')
    assert.equal(wx.st.storage.size, 0)
  })
})
