import { client } from '../../api'
import { explain } from '../../explain'

interface WhoAmI {
  openid: string
  unionid: string
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

  onProfile() {
    wx.navigateTo({ url: '/pages/profile/profile' })
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
