import { AVATAR_PATH, client, PROFILE_PATH } from '../../api'
import { explain } from '../../explain'
import type { PhoneNumberEvent } from '../../wxauth/core'

Page({
  data: {
    avatarUrl: '',
    profilePath: PROFILE_PATH,
    output: '',
  },

  // <button open-type="chooseAvatar">: WeChat hands over a temporary file of
  // the picked avatar; upload it to your app with the token.
  async onChooseAvatar(e: WechatMiniprogram.CustomEvent<{ avatarUrl: string }>) {
    const { avatarUrl } = e.detail
    this.setData({ avatarUrl })
    try {
      const saved = await client.uploadFile({ path: AVATAR_PATH, filePath: avatarUrl, name: 'avatar' })
      this.setData({ output: 'POST ' + AVATAR_PATH + '\n' + JSON.stringify(saved, null, 2) })
    } catch (err) {
      this.setData({ output: 'POST ' + AVATAR_PATH + ' failed\n' + explain(err) })
    }
  },

  // <input type="nickname"> in a form: WeChat checks the nickname when the
  // input loses focus and clears it when it fails; read it on submit.
  async onSaveNickname(e: WechatMiniprogram.CustomEvent<{ value: { nickname?: string } }>) {
    const nickname = (e.detail.value.nickname || '').trim()
    if (!nickname) {
      this.setData({ output: 'nickname is empty' })
      return
    }
    try {
      const saved = await client.request({ path: PROFILE_PATH, method: 'POST', data: { nickname } })
      this.setData({ output: 'POST ' + PROFILE_PATH + '\n' + JSON.stringify(saved, null, 2) })
    } catch (err) {
      this.setData({ output: 'POST ' + PROFILE_PATH + ' failed\n' + explain(err) })
    }
  },

  // <button open-type="getPhoneNumber">: a one-time code (base library
  // 2.21.2+), resolved by wxauth into the number; no code means the user declined.
  async onPhone(e: PhoneNumberEvent) {
    try {
      const phone = await client.getPhoneNumber(e)
      this.setData({ output: 'POST /wx/phone\n' + JSON.stringify(phone, null, 2) })
    } catch (err) {
      this.setData({ output: 'POST /wx/phone failed\n' + explain(err) })
    }
  },
})
