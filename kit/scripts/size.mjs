// Measures what the kit adds to a mini-program: the built ESM modules
// bundled and minified by esbuild (as a mini-program build would), then
// gzipped by zlib. `wx`, `uni` and `taro` are what an app imports (the core
// and one adapter); `all` is the whole package (every adapter).
// Run after the build: node scripts/size.mjs prints the sizes as JSON.

import { gzipSync } from 'node:zlib'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { build } from 'esbuild'

const kit = join(dirname(fileURLToPath(import.meta.url)), '..')

async function measure(code) {
  const r = await build({
    stdin: { contents: code, resolveDir: join(kit, 'dist', 'esm'), loader: 'js' },
    bundle: true,
    minify: true,
    format: 'esm',
    target: 'es2017',
    write: false,
    logLevel: 'silent',
  })
  const text = r.outputFiles[0].contents
  return { min: text.length, gzip: gzipSync(text, { level: 9 }).length }
}

/** Sizes in bytes: { wx, uni, taro, all }, each { min, gzip }. */
export async function sizes() {
  return {
    wx: await measure("export { createWxClient, isRefusal, WxAuthError } from './index.js'"),
    uni: await measure("export { createUniClient, isRefusal, WxAuthError } from './index.js'"),
    taro: await measure("export { createTaroClient, isRefusal, WxAuthError } from './index.js'"),
    all: await measure("export * from './index.js'"),
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) console.log(JSON.stringify(await sizes()))
