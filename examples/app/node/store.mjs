// A JSON file as the app's user store. A real app uses its database; this
// file keeps the example dependency-free and readable with `cat`.
//
// The server and the admin command (admin.mjs) both change the file, so every
// change holds a lock (a directory next to the file: mkdir is atomic) while it
// reads, changes and rewrites the whole file (write a temporary file, then
// rename it over the old one, so a reader never sees half a file).

import { mkdir, readFile, rename, rmdir, stat, writeFile } from 'node:fs/promises'

// A lock older than this was left by a process that died holding it.
const staleLockMs = 10_000
const lockWaitMs = 5_000

/** An empty store. */
export function emptyStore() {
  return { next_uid: 1, users: {}, seen: {} }
}

async function lock(dir) {
  const deadline = Date.now() + lockWaitMs
  for (;;) {
    try {
      await mkdir(dir)
      return
    } catch (e) {
      if (e.code !== 'EEXIST') throw e
    }
    const st = await stat(dir).catch(() => null)
    if (st && Date.now() - st.mtimeMs > staleLockMs) {
      await rmdir(dir).catch(() => {})
      continue
    }
    if (Date.now() > deadline) throw new Error(`store ${dir} stayed locked for ${lockWaitMs} ms`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

/** Reads the store; a missing file is an empty store. */
export async function readStore(file) {
  try {
    return JSON.parse(await readFile(file, 'utf8'))
  } catch (e) {
    if (e.code === 'ENOENT') return emptyStore()
    throw e
  }
}

/**
 * Runs change(db) on the current contents under the lock and saves db
 * afterwards; returns what change returned. If change throws, nothing is saved.
 */
export async function update(file, change) {
  const dir = file + '.lock'
  await lock(dir)
  try {
    const db = await readStore(file)
    const result = change(db)
    const tmp = `${file}.${process.pid}.tmp`
    await writeFile(tmp, JSON.stringify(db, null, 2) + '\n')
    await rename(tmp, file)
    return result
  } finally {
    await rmdir(dir).catch(() => {})
  }
}
