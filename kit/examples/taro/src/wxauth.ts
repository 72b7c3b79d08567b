// The kit in a Taro app: one client, and Taro.addInterceptor so that every
// Taro.request to the server carries the token and a refused token is
// answered by one silent re-login and one retry.
import type TaroType from '@tarojs/taro'
import { createTaroClient, type Client } from 'caddy-wxauth-kit'
// In your app: copy kit/recipes/taro-interceptor.ts into your sources.
import { wxauthInterceptor } from '../../../recipes/taro-interceptor'

/** Makes the app's client on `Taro` and installs the interceptor. */
export function setupWxAuth(Taro: typeof TaroType, baseURL: string): Client {
  const client = createTaroClient({ baseURL, taro: Taro })
  Taro.addInterceptor(wxauthInterceptor(client))
  return client
}
