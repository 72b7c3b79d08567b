import Taro from '@tarojs/taro'
import { setupWxAuth } from './wxauth'

export const BASE_URL = 'https://api.example.com' // ← the one line to change for your server

// The same line runs on WeChat, QQ, Douyin, Alipay, Baidu and Kuaishou:
// Taro.getEnv() (and for Kuaishou the global ks) names the platform.
export const client = setupWxAuth(Taro, BASE_URL)

/** Your app's own API, through Taro.request: the interceptor adds the token. */
export async function getOrders(): Promise<{ id: string }[]> {
  const res = await Taro.request<{ id: string }[]>({ url: BASE_URL + '/api/orders' })
  return res.data
}
