// Builds the package: dist/esm (import) and dist/cjs (require), each with its
// .d.ts files. dist/cjs gets a package.json of its own so that Node and
// TypeScript read its .js and .d.ts files as CommonJS inside this ESM package.

import { spawnSync } from 'node:child_process'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const kit = join(dirname(fileURLToPath(import.meta.url)), '..')
const tsc = join(dirname(createRequire(import.meta.url).resolve('typescript/package.json')), 'bin', 'tsc')

rmSync(join(kit, 'dist'), { recursive: true, force: true })
for (const project of ['tsconfig.build.json', 'tsconfig.cjs.json']) {
  const r = spawnSync(process.execPath, [tsc, '-p', project], { cwd: kit, stdio: 'inherit' })
  if (r.status !== 0) {
    console.error(`tsc -p ${project} failed`)
    process.exit(r.status ?? 1)
  }
}
mkdirSync(join(kit, 'dist', 'cjs'), { recursive: true })
writeFileSync(join(kit, 'dist', 'cjs', 'package.json'), JSON.stringify({ type: 'commonjs' }) + '\n')
