// The example mini-program is a whole project for WeChat DevTools: DevTools
// compiles only what is inside miniprogramRoot, so every import of the
// example stays inside it, and its copy of the client (miniprogram/wxauth)
// is the example's current source (example/src). The project opens with the tourist
// appid, without domain checks, and the server is one marked line.

import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import { dirname, join, relative, resolve } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'

const example = fileURLToPath(new URL('..', import.meta.url))
const kitSrc = fileURLToPath(new URL('../../../kit/src/', import.meta.url))

interface ProjectConfig {
  appid: string
  compileType: string
  miniprogramRoot: string
  setting: { urlCheck: boolean; useCompilerPlugins: string[] }
}

const project = async () => JSON.parse(await readFile(join(example, 'project.config.json'), 'utf8')) as ProjectConfig

async function tsFiles(dir: string): Promise<string[]> {
  const out: string[] = []
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    if (e.isDirectory()) out.push(...(await tsFiles(p)))
    else if (e.name.endsWith('.ts')) out.push(p)
  }
  return out
}

test('project.config.json opens the example with the tourist appid, TypeScript and no domain check', async () => {
  const p = await project()
  assert.equal(p.appid, 'touristappid')
  assert.equal(p.compileType, 'miniprogram')
  assert.equal(p.setting.urlCheck, false)
  assert.ok(p.setting.useCompilerPlugins.includes('typescript'))
  assert.ok(existsSync(join(example, p.miniprogramRoot, 'app.json')), 'no app.json in miniprogramRoot')
  assert.ok(existsSync(join(example, p.miniprogramRoot, 'app.ts')), 'no app.ts in miniprogramRoot')
})

test('every import of the example stays inside miniprogramRoot and resolves', async () => {
  const root = resolve(example, (await project()).miniprogramRoot)
  const files = await tsFiles(root)
  assert.ok(files.length >= 4)
  for (const f of files) {
    const src = (await readFile(f, 'utf8')).replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '')
    for (const [, spec] of src.matchAll(/\bfrom\s+'([^']+)'/g)) {
      assert.ok(spec!.startsWith('.'), `${relative(example, f)} imports the package ${spec}; DevTools has no npm build here`)
      const target = resolve(dirname(f), spec!.replace(/\.js$/, ''))
      assert.ok(!relative(root, target).startsWith('..'), `${relative(example, f)} imports ${spec}, outside miniprogramRoot`)
      assert.ok(existsSync(target + '.ts'), `${relative(example, f)} imports ${spec}, which is not there`)
    }
  }
})

test('miniprogram/wxauth is the current source of the example (npm run sync:example in example/)', async () => {
  assert.deepEqual((await readdir(join(example, 'miniprogram', 'wxauth'))).sort(), ['core.ts', 'wx.ts'])
  for (const f of ['core.ts', 'wx.ts']) {
    assert.equal(
      await readFile(join(example, 'miniprogram', 'wxauth', f), 'utf8'),
      await readFile(join(kitSrc, f), 'utf8'),
      `miniprogram/wxauth/${f} differs from example/src/${f}: run npm run sync:example in example/`,
    )
  }
})

test('no example uses the withdrawn wx.getUserInfo or wx.getUserProfile', async () => {
  const root = join(example, 'miniprogram')
  const files = [...(await tsFiles(root))]
  for (const e of await readdir(join(root, 'pages'), { recursive: true })) if (String(e).endsWith('.wxml')) files.push(join(root, 'pages', String(e)))
  for (const f of files) {
    if (f.includes(`${'/'}wxauth${'/'}`)) continue
    assert.doesNotMatch(await readFile(f, 'utf8'), /getUserInfo|getUserProfile/, relative(example, f))
  }
})

test('the server of the example is one marked line, the demo', async () => {
  const api = await readFile(join(example, 'miniprogram', 'api.ts'), 'utf8')
  const urls = api.split('\n').filter((l) => /https?:\/\//.test(l) && !l.trimStart().startsWith('//'))
  assert.deepEqual(urls, ["export const BASE_URL = 'http://127.0.0.1:8080' // ← the one line to change for your server"])
  const demo = await readFile(join(example, '..', '..', 'example.Caddyfile'), 'utf8')
  assert.match(demo, /^http:\/\/127\.0\.0\.1:8080 \{$/m, 'the demo no longer serves the app on 127.0.0.1:8080')
  assert.match(demo, /^\s*any_code \S+/m, 'the demo has no any_code for DevTools codes')
})
