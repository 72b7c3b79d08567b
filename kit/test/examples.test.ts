// The docs show what the tests run: each recipe in recipes/ appears verbatim
// in both READMEs, and the uni-app and Taro examples use the recipe files
// themselves. No code in the docs or examples calls the withdrawn
// wx.getUserInfo / wx.getUserProfile.

import assert from 'node:assert/strict'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'

const kit = fileURLToPath(new URL('..', import.meta.url))
const read = (...p: string[]) => readFile(join(kit, ...p), 'utf8')

test('both READMEs include every recipe verbatim, as a TypeScript block', async () => {
  const recipes = (await readdir(join(kit, 'recipes'))).filter((f) => f.endsWith('.ts'))
  assert.deepEqual(recipes.sort(), ['luch-request.ts', 'taro-interceptor.ts', 'wx-request.ts'])
  for (const readme of ['README.md', 'README.zh-CN.md']) {
    const text = await read(readme)
    for (const r of recipes) {
      const code = (await read('recipes', r)).trimEnd()
      assert.ok(text.includes('```ts\n' + code + '\n```'), `${readme} does not show recipes/${r} as it is`)
    }
  }
})

test('the uni-app and Taro examples import the recipes themselves', async () => {
  assert.match(await read('examples', 'uni-app', 'src', 'api.ts'), /from '\.\.\/\.\.\/\.\.\/recipes\/luch-request'/)
  assert.match(await read('examples', 'taro', 'src', 'wxauth.ts'), /from '\.\.\/\.\.\/\.\.\/recipes\/taro-interceptor'/)
})

test('no code block or example calls wx.getUserInfo or wx.getUserProfile', async () => {
  for (const readme of ['README.md', 'README.zh-CN.md']) {
    const blocks = (await read(readme)).match(/```[\s\S]*?```/g) ?? []
    for (const b of blocks) assert.doesNotMatch(b, /getUserInfo|getUserProfile/, `${readme}: ${b.slice(0, 80)}`)
  }
  const files = [
    ['examples', 'uni-app', 'src', 'pages', 'index', 'index.vue'],
    ['examples', 'uni-app', 'src', 'profile.ts'],
    ['examples', 'taro', 'src', 'pages', 'profile', 'index.tsx'],
  ]
  for (const f of files) assert.doesNotMatch(await read(...f), /getUserInfo|getUserProfile/, f.join('/'))
})
