// Loads the example's page logic (src/profile.ts and what it imports: the
// kit's built package, luch-request, the recipe) as uni-app's compiler would
// bundle it, on a fake uni of the given host and a fake server. Each test
// file runs in its own process, so each loads the bundle once for its platform.

import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

import { build } from 'esbuild'

import { fakeHost, server, type Handler, type HostName } from '../../../test/hosts.js'

type AnyObject = Record<string, any>
export type Profile = typeof import('../src/profile.js')

/** The page logic on a fake `uni` of host `name`, and what the fakes saw. */
export async function load(name: HostName, uniPlatform: string) {
  const srv = server()
  const handle: Handler = (req) => {
    if (req.path === '/api/whoami' && req.auth && srv.valid.has(req.auth.slice(7))) return { status: 200, data: { openid: 'o-' + uniPlatform } }
    if ((req.path === '/api/avatar' || req.path === '/api/profile') && req.auth && srv.valid.has(req.auth.slice(7))) {
      return { status: 200, data: { saved: req.file ?? req.data } }
    }
    return srv.handle(req)
  }
  const f = fakeHost(name, handle)
  const h = f.host
  const providers: string[] = []
  // uni's API is the host's, with uni.login's provider; luch-request reads the complete callback.
  const both = (o: AnyObject) => ({
    ...o,
    success: (r: unknown) => (o.success?.(r), o.complete?.(r)),
    fail: (e: unknown) => (o.fail?.(e), o.complete?.(e)),
  })
  ;(globalThis as AnyObject).uni = {
    ...h,
    login: (o: AnyObject) => (providers.push(o.provider), h.login(o)),
    request: (o: AnyObject) => h.request(both(o)),
    getSystemInfoSync: () => ({ uniPlatform }),
  }
  process.env.UNI_PLATFORM = uniPlatform

  const out = await build({
    entryPoints: [fileURLToPath(new URL('../src/profile.ts', import.meta.url))],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    write: false,
    logLevel: 'silent',
  })
  const file = join(await mkdtemp(join(tmpdir(), 'uni-example-')), 'profile.mjs')
  await writeFile(file, out.outputFiles[0]!.text)
  const profile = (await import(pathToFileURL(file).href)) as Profile
  return { profile, st: f.st, srv, providers }
}
