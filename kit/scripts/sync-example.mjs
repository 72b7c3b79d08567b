// Copies the client's sources the example mini-program uses (src/core.ts and
// src/wx.ts) into miniprogram/wxauth/, so that the example is a complete
// project for WeChat DevTools: it compiles only what is inside
// miniprogramRoot. test/example.test.ts fails when the copies are stale.

import { copyFileSync, mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const kit = join(dirname(fileURLToPath(import.meta.url)), '..')
export const copied = ['core.ts', 'wx.ts']

mkdirSync(join(kit, 'miniprogram', 'wxauth'), { recursive: true })
for (const f of copied) copyFileSync(join(kit, 'src', f), join(kit, 'miniprogram', 'wxauth', f))
