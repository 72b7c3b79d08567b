import { client } from '../../api'
import { isRefusal, WxAuthError } from '../../wxauth/core'

interface WhoAmI {
  openid: string
  unionid: string
}

// Turns an error into a line for the screen; WxAuthError carries the server's code.
function explain(e: unknown): string {
  // The app refused on purpose (a ban, say): its message is meant for the user.
  if (isRefusal(e)) return e.message
  if (e instanceof WxAuthError) {
    return `${e.status} ${e.error}: ${e.message}` + (e.errcode !== undefined ? ` (errcode ${e.errcode})` : '')
  }
  return String(e)
}

Page({
  data: {
    openid: '',
    output: '',
  },

  show(label: string, value: unknown) {
    this.setData({ output: label + '\n' + JSON.stringify(value, null, 2) })
  },

  fail(label: string, e: unknown) {
    this.setData({ output: label + ' failed\n' + explain(e) })
  },

  async onLogin() {
    try {
      const r = await client.login()
      this.setData({ openid: r.openid })
      // Show what a user may see; the token itself stays out of the page.
      this.show('login', { openid: r.openid, unionid: r.unionid, expires_in: r.expires_in })
    } catch (e) {
      this.fail('login', e)
    }
  },

  async onWhoami() {
    try {
      // Logs in first when needed, and again once if the server refuses the token.
      const who = await client.request<WhoAmI>({ path: '/api/whoami' })
      this.setData({ openid: who.openid })
      this.show('GET /api/whoami', who)
    } catch (e) {
      this.fail('GET /api/whoami', e)
    }
  },

  async onSession() {
    try {
      this.show('GET /wx/session', await client.session())
    } catch (e) {
      this.fail('GET /wx/session', e)
    }
  },

  async onDecrypt() {
    try {
      // The data is encrypted with the session_key of the newest wx.login. Make
      // sure the server holds that key before asking WeChat for the data, and
      // do not log in between getting the data and decrypting it.
      const s = await client.session()
      if (!s.session_key_valid) await client.login()
      const res = await wx.getUserInfo({ lang: 'zh_CN' })
      const plain = await client.decrypt(res)
      this.show('POST /wx/decrypt', plain)
    } catch (e) {
      this.fail('POST /wx/decrypt', e)
    }
  },

  async onPhone(e: WechatMiniprogram.ButtonGetPhoneNumber) {
    // The button gives a one-time code (base library 2.21.2+); no code means the user declined.
    const code = e.detail.code
    if (!code) {
      this.setData({ output: 'getPhoneNumber: ' + e.detail.errMsg })
      return
    }
    try {
      this.show('POST /wx/phone', await client.phone(code))
    } catch (err) {
      this.fail('POST /wx/phone', err)
    }
  },

  async onLogout() {
    try {
      await client.logout()
      this.setData({ openid: '', output: 'logged out' })
    } catch (e) {
      this.fail('POST /wx/logout', e)
    }
  },
})
