// The page's logic, apart from the page so that it runs anywhere: whoami
// through luch-request, the avatar upload, the nickname, the phone number.
import { isRefusal, WxAuthError, type PhoneNumberEvent } from 'caddy-wxauth-kit'
import { client, http } from './api'

/** Your app's own authenticated routes: the avatar file (field "avatar") and the nickname. */
export const AVATAR_PATH = '/api/avatar'
export const PROFILE_PATH = '/api/profile'

/** A line for the screen; a refusal's message is the app's own text for the user. */
export function explain(e: unknown): string {
  if (isRefusal(e)) return e.message
  if (e instanceof WxAuthError) return `${e.status} ${e.error}: ${e.message}`
  const r = e as { statusCode?: number; data?: { error?: string } } | undefined
  if (r && typeof r.statusCode === 'number') return `${r.statusCode} ${r.data?.error ?? 'http_error'}` // luch-request's rejection
  return String(e)
}

/** GET /api/whoami through luch-request: the recipe adds the token. */
export async function whoami(): Promise<{ openid: string }> {
  const res = await http.get('/api/whoami')
  return res.data as { openid: string }
}

/** The chooseAvatar button's file, uploaded with the token. */
export function uploadAvatar(avatarUrl: string): Promise<unknown> {
  return client.uploadFile({ path: AVATAR_PATH, filePath: avatarUrl, name: 'avatar' })
}

/** The nickname from <input type="nickname">, saved with the token. */
export function saveNickname(nickname: string): Promise<unknown> {
  return client.request({ path: PROFILE_PATH, method: 'POST', data: { nickname: nickname.trim() } })
}

/**
 * The phone number, each platform its way: WeChat's button code, the
 * encrypted data of QQ, Douyin, Baidu and Kuaishou, Alipay's
 * my.getPhoneNumber (after its getAuthorize button).
 */
export function phone(e?: PhoneNumberEvent): Promise<unknown> {
  return client.getPhoneNumber(e)
}
