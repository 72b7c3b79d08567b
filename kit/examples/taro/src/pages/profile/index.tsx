// The profile flow in Taro (React): avatar by chooseAvatar, uploaded with the
// token; nickname by <Input type="nickname">; phone number by the
// getPhoneNumber button (on Alipay, the getAuthorize button). The withdrawn
// user-info APIs are not used.
import { Button, Image, Input, Text, View } from '@tarojs/components'
import { useState } from 'react'
import { isRefusal, WxAuthError, type PhoneNumberEvent } from 'caddy-wxauth-kit'
import { client } from '../../api'

function explain(e: unknown): string {
  if (isRefusal(e)) return e.message // the app's own text for the user
  if (e instanceof WxAuthError) return `${e.status} ${e.error}: ${e.message}`
  return String(e)
}

export default function Profile() {
  const [avatarUrl, setAvatarUrl] = useState('')
  const [output, setOutput] = useState('')

  const run = async (label: string, f: () => Promise<unknown>) => {
    try {
      setOutput(label + '\n' + JSON.stringify(await f(), null, 2))
    } catch (e) {
      setOutput(label + ' failed\n' + explain(e))
    }
  }

  return (
    <View>
      <Button
        openType="chooseAvatar"
        onChooseAvatar={(e) => {
          setAvatarUrl(e.detail.avatarUrl)
          void run('avatar', () => client.uploadFile({ path: '/api/avatar', filePath: e.detail.avatarUrl, name: 'avatar' }))
        }}
      >
        {avatarUrl ? <Image src={avatarUrl} mode="aspectFill" /> : <Text>Avatar</Text>}
      </Button>
      <Input
        type="nickname"
        placeholder="Nickname"
        onBlur={(e) => {
          const nickname = e.detail.value.trim()
          if (nickname) void run('nickname', () => client.request({ path: '/api/profile', method: 'POST', data: { nickname } }))
        }}
      />
      <Button openType="getPhoneNumber" onGetPhoneNumber={(e) => void run('phone', () => client.getPhoneNumber(e as PhoneNumberEvent))}>
        Phone number
      </Button>
      <Text>{output}</Text>
    </View>
  )
}
