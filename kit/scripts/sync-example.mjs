// Copies the kit's sources the example mini-program uses (src/core.ts and
// src/wx.ts) into examples/miniprogram/miniprogram/wxauth/, so that the
// example is a complete project for WeChat DevTools: it compiles only what
// is inside miniprogramRoot. The example's own test fails when the copies
// are stale.

import { copyFileSync, mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const kit = join(dirname(fileURLToPath(import.meta.url)), '..')
const into = join(kit, '..', 'examples', 'miniprogram', 'miniprogram', 'wxauth')
export const copied = ['core.ts', 'wx.ts']

mkdirSync(into, { recursive: true })
for (const f of copied) copyFileSync(join(kit, 'src', f), join(into, f))
