// Admin commands: change the store and tell wxauth.
//
//   node admin.mjs ban <openid>          refuse its logins, end its sessions
//   node admin.mjs unban <openid>        allow its logins again
//   node admin.mjs role <openid> <role>  new role, in the store and at once in every session
//   node admin.mjs notify <openid> <template_id> <text>
//                                        a subscribe message, with wxauth's access_token
//
// Environment: WXAUTH_SECRET (the secret of app_hook), WXAUTH_API (the URL of
// app_api, e.g. http://127.0.0.1:8080/wx/app), STORE (default users.json),
// WECHAT_API (default https://api.weixin.qq.com; wxmock's URL in the demo).

import { update } from './store.mjs'
import { endSessions, sendSubscribeMessage, setClaims } from './wxauth-api.mjs'

const [cmd, openid, role, text] = process.argv.slice(2)
const secret = process.env.WXAUTH_SECRET ?? ''
const api = process.env.WXAUTH_API ?? ''
const storeFile = process.env.STORE || 'users.json'

function fail(msg, code = 1) {
  console.error(msg)
  process.exit(code)
}

const argsOK = { ban: !role, unban: !role, role: role && !text, notify: role && text }[cmd]
if (!openid || !argsOK) {
  fail('usage: node admin.mjs ban <openid> | unban <openid> | role <openid> <role> | notify <openid> <template_id> <text>', 2)
}
if (cmd !== 'unban' && (!secret.startsWith('whsec_') || !api)) {
  fail('set WXAUTH_SECRET (whsec_...) and WXAUTH_API (the app_api URL)', 2)
}

if (cmd === 'notify') {
  try {
    // thing1 is the template's first field; a real template names its own.
    const wechatAPI = process.env.WECHAT_API || 'https://api.weixin.qq.com'
    await sendSubscribeMessage(api, secret, wechatAPI, openid, role, { thing1: { value: text } })
    console.log(`notify ${openid}: done`)
    process.exit(0)
  } catch (e) {
    fail(e.message)
  }
}

try {
  // The store first: a login that races the ban is refused by the hook, and
  // the sessions that exist are ended next.
  await update(storeFile, (db) => {
    const u = db.users[openid]
    if (!u) throw new Error(`no user ${openid} in ${storeFile}`)
    if (cmd === 'role') u.role = role
    else u.banned = cmd === 'ban'
  })
  if (cmd === 'ban') await endSessions(api, secret, openid)
  if (cmd === 'role') await setClaims(api, secret, openid, { role })
  console.log(`${cmd} ${openid}: done`)
} catch (e) {
  fail(e.message)
}
