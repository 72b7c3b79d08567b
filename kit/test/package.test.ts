// The package as a team would publish it: the build makes ESM and CommonJS
// outputs with .d.ts files, `import` and `require` of the package name load
// working clients through the exports map, the types resolve for ESM and
// CommonJS consumers, and `npm pack` packs exactly the build, the READMEs,
// the changelog and the licence.

import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

import { NONCE_PATTERN } from '../src/core.js'

const run = promisify(execFile)
const kit = fileURLToPath(new URL('..', import.meta.url))
const fixtures = join(kit, 'test', 'fixtures')
const modules = ['index', 'core', 'wx', 'uni', 'taro']
const tsc = join(dirname(createRequire(import.meta.url).resolve('typescript/package.json')), 'bin', 'tsc')

interface Report {
  resolved: string
  exports: string[]
  sameAsRoot: boolean
  error: boolean
  openids: string[]
  bodies: { code: string; nonce: string }[]
}

// Plain node, without tsx: the built files must run on their own.
async function report(file: string): Promise<Report> {
  const { stdout } = await run(process.execPath, [join(fixtures, file)], { cwd: fixtures })
  return JSON.parse(stdout) as Report
}

before(async () => {
  await run(process.execPath, [join(kit, 'scripts', 'build.mjs')], { cwd: kit })
})

describe('package', () => {
  test('the build writes ESM and CommonJS modules, each with its .d.ts', async () => {
    for (const flavour of ['esm', 'cjs']) {
      for (const m of modules) {
        for (const ext of ['.js', '.d.ts']) {
          const f = join(kit, 'dist', flavour, m + ext)
          assert.ok(existsSync(f), `${f} is missing`)
        }
      }
    }
    const cjs = await readFile(join(kit, 'dist', 'cjs', 'index.js'), 'utf8')
    assert.match(cjs, /require\("\.\/core\.js"\)/)
    const esm = await readFile(join(kit, 'dist', 'esm', 'index.js'), 'utf8')
    assert.match(esm, /from '\.\/core\.js'|from "\.\/core\.js"/)
    assert.deepEqual(JSON.parse(await readFile(join(kit, 'dist', 'cjs', 'package.json'), 'utf8')), { type: 'commonjs' })
  })

  test('every path in package.json exists after the build', async () => {
    const pkg = JSON.parse(await readFile(join(kit, 'package.json'), 'utf8')) as {
      main: string
      module: string
      types: string
      exports: Record<string, string | Record<string, Record<string, string>>>
    }
    const paths = [pkg.main, pkg.module, pkg.types]
    for (const entry of Object.values(pkg.exports)) {
      if (typeof entry === 'string') paths.push(entry)
      else for (const cond of Object.values(entry)) paths.push(...Object.values(cond))
    }
    assert.equal(paths.length, 3 + 1 + 4 * 4)
    for (const p of paths) assert.ok(existsSync(join(kit, p)), `${p} is missing`)
  })

  for (const [how, file, dir] of [
    ['import', 'import.mjs', 'esm'],
    ['require', 'require.cjs', 'cjs'],
  ] as const) {
    test(`${how} of the package name loads the ${dir} build and logs in through every adapter`, async () => {
      const r = await report(file)
      assert.ok(r.resolved.replace(/\\/g, '/').endsWith(`/dist/${dir}/index.js`), r.resolved)
      for (const name of ['createClient', 'createWxClient', 'createUniClient', 'createTaroClient', 'WxAuthError']) {
        assert.ok(r.exports.includes(name), `${name} is not exported`)
      }
      assert.equal(r.sameAsRoot, true)
      assert.equal(r.error, true)
      assert.deepEqual(r.openids, ['o1', 'o2', 'o3'])
      assert.equal(r.bodies.length, 3)
      for (const b of r.bodies) assert.match(b.nonce, NONCE_PATTERN)
      assert.equal(new Set(r.bodies.map((b) => b.nonce)).size, 3)
    })
  }

  test('ESM and CommonJS consumers type-check against the built .d.ts files', async () => {
    try {
      await run(process.execPath, [tsc, '-p', join(fixtures, 'tsconfig.json')], { cwd: fixtures })
    } catch (e) {
      const { stdout, stderr } = e as { stdout: string; stderr: string }
      assert.fail(`consumer type check failed:\n${stdout}${stderr}`)
    }
  })

  test('npm pack packs the build, the READMEs, CHANGELOG, LICENSE and package.json, nothing else', async () => {
    // --ignore-scripts: the build above is what prepack would make.
    const { stdout } = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: kit })
    const [packed] = JSON.parse(stdout) as [{ name: string; files: { path: string }[] }]
    assert.equal(packed.name, 'caddy-wxauth-kit')
    const want = ['package.json', 'README.md', 'README.zh-CN.md', 'CHANGELOG.md', 'LICENSE', 'dist/cjs/package.json']
    for (const flavour of ['esm', 'cjs']) for (const m of modules) want.push(`dist/${flavour}/${m}.js`, `dist/${flavour}/${m}.d.ts`)
    assert.deepEqual(packed.files.map((f) => f.path).sort(), want.sort())
  })
})

// The size an app pays, measured on the build (scripts/size.mjs: esbuild
// bundles and minifies what an app imports, zlib gzips it), and the numbers
// the READMEs give.
describe('size', () => {
  const names = [
    ['wx', '`createWxClient`'],
    ['uni', '`createUniClient`'],
    ['taro', '`createTaroClient`'],
    ['all', 'everything'],
  ] as const
  let sizes: Record<(typeof names)[number][0], { min: number; gzip: number }>

  before(async () => {
    const { stdout } = await run(process.execPath, [join(kit, 'scripts', 'size.mjs')], { cwd: kit })
    sizes = JSON.parse(stdout) as typeof sizes
  })

  test('the core with one adapter is under 6 KB min+gzip', () => {
    for (const n of ['wx', 'uni', 'taro'] as const) assert.ok(sizes[n].gzip < 6 * 1024, `${n}: ${sizes[n].gzip} bytes`)
  })

  for (const readme of ['README.md', 'README.zh-CN.md']) {
    test(`${readme} gives the measured sizes (within 5%)`, async () => {
      const text = await readFile(join(kit, readme), 'utf8')
      for (const [n, label] of names) {
        const m = new RegExp('\\| ' + label.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') + '[^|\\n]*\\| ([0-9.]+) KB \\|').exec(text)
        assert.ok(m, `${readme} has no size row for ${label}`)
        const said = Number(m[1]) * 1024
        const got = sizes[n].gzip
        assert.ok(Math.abs(said - got) <= Math.max(64, got * 0.05), `${readme} says ${m[1]} KB for ${label}, measured ${(got / 1024).toFixed(1)} KB`)
      }
    })
  }
})
