// The adapter for uni-app. It finds the platform of the build
// (process.env.UNI_PLATFORM, which uni-app's compiler fills in, else
// uni.getSystemInfoSync().uniPlatform) and uses uni.login, uni.request,
// uni.uploadFile, uni.downloadFile and uni storage in their callback form,
// which behaves the same in Vue 2 and Vue 3 projects (their promise forms
// differ: Vue 2 resolves [err, res], Vue 3 resolves res).

import { createClient, type AnyObject, type Client, type ClientOptions, type Platform } from './core.js'
import {
  alipayPhone,
  callbackDownload,
  callbackLogin,
  callbackRequest,
  callbackUpload,
  detectNative,
  wxRandomBytes,
  type AlipayLike,
  type LoginCallbacks,
  type WxLike,
  type WxRandomOption,
} from './wx.js'

/** The parts of `uni` the client uses: those of `wx`, with uni.login's provider. */
export interface UniLike extends Omit<WxLike, 'login' | 'getRandomValues' | 'getLoginCode'> {
  login(option: { provider?: string } & Partial<LoginCallbacks> & AnyObject): unknown
  /** Not a uni API today; used when present. */
  getRandomValues?(option: WxRandomOption): unknown
  /** Its `uniPlatform` (`mp-weixin`, `mp-toutiao`, ...) names the build when process.env.UNI_PLATFORM is not compiled in. */
  getSystemInfoSync?(): { uniPlatform?: string }
}

/** Options of {@link createUniClient}. */
export interface UniClientOptions extends ClientOptions {
  /** The `uni` object. Default: the global `uni`. */
  uni?: UniLike
  /** The `provider` of uni.login. Default: the platform's (`weixin`, `qq`, `toutiao`, `alipay`, `baidu`, `kuaishou`). */
  provider?: string
}

// Only the types: uni exists inside uni-app; uni-app's compiler replaces process.env.UNI_PLATFORM.
declare const uni: UniLike | undefined
declare const process: { env: Record<string, string | undefined> }

const names: AnyObject = {
  'mp-weixin': 'wechat',
  'mp-qq': 'qq',
  'mp-toutiao': 'douyin',
  'mp-alipay': 'alipay',
  'mp-baidu': 'baidu',
  'mp-kuaishou': 'kuaishou',
  'mp-jd': 'jd',
}
const providers: AnyObject = { wechat: 'weixin', douyin: 'toutiao' }

/**
 * The platform of this uni-app build: `wechat` for mp-weixin, `douyin` for
 * mp-toutiao, `alipay`, `qq`, `baidu`, `kuaishou`, `jd`; another mp-x is `x`;
 * anything else (h5, app) is `wechat`.
 */
export function uniPlatformName(u?: UniLike): string {
  let p: string | undefined
  try {
    p = process.env.UNI_PLATFORM
  } catch {
    // Not compiled in and no process: ask uni.
  }
  try {
    if (!p && u && u.getSystemInfoSync) p = u.getSystemInfoSync().uniPlatform
  } catch {
    // An old uni without uniPlatform.
  }
  return (p && (names[p] || (p.indexOf('mp-') === 0 && p.slice(3)))) || 'wechat'
}

/** Creates a client for a uni-app project, on whichever platform it was built for. Make one per server and share it. */
export function createUniClient(options: UniClientOptions): Client {
  const u = options.uni ?? (typeof uni !== 'undefined' ? uni : undefined)
  if (!u) throw new TypeError('wxauth: no global uni; pass options.uni')
  return createClient(uniPlatform(u, options), options)
}

/** The {@link Platform} for a `uni`-shaped object; a string second argument is the provider (as in 0.x). */
export function uniPlatform(
  u: UniLike,
  opts: string | Pick<UniClientOptions, 'provider' | 'platform' | 'loginOptions'> = {},
): Platform {
  const o = typeof opts === 'string' ? { provider: opts } : opts
  const name = o.platform ?? uniPlatformName(u)
  const provider = o.provider ?? providers[name] ?? name
  // Alipay's code comes from my.getAuthCode, with the silent scope.
  const extra: AnyObject = name === 'alipay' ? { scopes: 'auth_base', ...o.loginOptions } : { ...o.loginOptions }
  const native = () => detectNative()
  return {
    name,
    login: () => callbackLogin((c) => u.login({ provider, ...extra, ...c }), 'uni.login'),
    request: (req) => callbackRequest(u, req),
    upload: (req) => callbackUpload(u, req, true),
    download: (req) => callbackDownload(u, req),
    phoneResponse: () => alipayPhone((native()?.host ?? {}) as AlipayLike),
    getStorage: (key) => u.getStorageSync(key),
    setStorage: (key, value) => u.setStorageSync(key, value),
    removeStorage: (key) => u.removeStorageSync(key),
    // uni has no random API of its own; the host's global (wx and kin) may.
    randomBytes: (n) => wxRandomBytes(typeof u.getRandomValues === 'function' ? u : native()?.host, n),
  }
}
