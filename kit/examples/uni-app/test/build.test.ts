// What `uni build -p mp-weixin` (run by npm test before this file) made: a
// WeChat mini-program with the page's profile flow, the kit compiled in with
// its platform filled in by uni-app's compiler, and only the mp-weixin branch
// of the conditional blocks.

import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'

const out = fileURLToPath(new URL('../dist/build/mp-weixin/', import.meta.url))
const read = (f: string) => readFile(join(out, f), 'utf8')

test('the build is a WeChat mini-program with the index page', async () => {
  const app = JSON.parse(await read('app.json')) as { pages: string[] }
  assert.deepEqual(app.pages, ['pages/index/index'])
  assert.match(await read('project.config.json'), /"appid": "touristappid"/)
})

test("the page has the profile flow's buttons and input, and not Alipay's", async () => {
  const wxml = await read('pages/index/index.wxml')
  assert.match(wxml, /open-type="chooseAvatar" bindchooseavatar=/)
  assert.match(wxml, /<input type="nickname"/)
  assert.match(wxml, /open-type="getPhoneNumber" bindgetphonenumber=/)
  assert.doesNotMatch(wxml, /getAuthorize/)
})

test("the kit is compiled in, with uni-app's compiler filling in the platform", async () => {
  const vendor = await read('common/vendor.js')
  assert.match(vendor, /wxauth_token:/)
  assert.match(vendor, /mp-weixin/)
  assert.doesNotMatch(vendor, /process\.env\.UNI_PLATFORM/)
  assert.match(await read('api.js'), /createUniClient\(\{baseURL:/)
})
