// The adapter for Taro: Taro.login, Taro.request, Taro.uploadFile,
// Taro.downloadFile and Taro.getRandomValues in their promise form, and Taro
// storage. Taro is not a global: pass the default export of '@tarojs/taro'.
// The platform comes from Taro.getEnv(), which has no Kuaishou value: the
// native globals decide where it says nothing the kit knows.

import {
  createClient,
  cryptoRandomBytes,
  errMsg,
  WxAuthError,
  type AnyObject,
  type Client,
  type ClientOptions,
  type HttpReply,
  type Platform,
} from './core.js'
import { alipayPhone, detectNative, type AlipayLike, type LoginSuccess, type TaskLike, type WxRequestOption } from './wx.js'

/**
 * The options of `Taro.request` that the client uses: wx.request's, without
 * callbacks, and `wxauth: true`, which marks the kit's own requests for
 * interceptors (the recipe's Taro.addInterceptor lets them pass as they are).
 */
export type TaroRequestOption = Omit<WxRequestOption, 'success' | 'fail'> & { wxauth?: boolean }

/** What Taro's request, upload and download APIs resolve with (for every HTTP status). */
export interface TaroReply {
  statusCode: number
  data?: unknown
  header?: AnyObject
  tempFilePath?: string
  filePath?: string
}

/** The parts of `Taro` the client uses; `import Taro from '@tarojs/taro'` fits. */
export interface TaroLike {
  /** Resolves with the code; rejects when the login failed. */
  login(option?: AnyObject): Promise<LoginSuccess>
  /** Resolves for every HTTP status; rejects only when no answer came. */
  request(option: TaroRequestOption): Promise<{ statusCode: number; data: unknown; header?: AnyObject }>
  uploadFile?(option: { url: string; filePath: string; name: string; header?: AnyObject; formData?: AnyObject; timeout?: number; fileType?: string }): Promise<TaroReply>
  downloadFile?(option: { url: string; header?: AnyObject; filePath?: string; timeout?: number }): Promise<TaroReply>
  /** WEAPP, QQ, TT, ALIPAY, SWAN, JD, WEB, ... */
  getEnv?(): string
  getStorageSync(key: string): unknown
  setStorageSync(key: string, data: unknown): void
  removeStorageSync(key: string): void
  /** WeChat builds only; elsewhere the client uses `crypto.getRandomValues`. */
  getRandomValues?(option: { length: number }): Promise<{ randomValues: ArrayBuffer }>
}

/** Options of {@link createTaroClient}. */
export interface TaroClientOptions extends ClientOptions {
  /** The Taro object: `import Taro from '@tarojs/taro'`. */
  taro: TaroLike
}

const envs: AnyObject = { WEAPP: 'wechat', QQ: 'qq', TT: 'douyin', ALIPAY: 'alipay', SWAN: 'baidu', JD: 'jd' }

/** The platform Taro runs on: Taro.getEnv(), else the native globals (Kuaishou), else `wechat`. */
export function taroPlatformName(t: Pick<TaroLike, 'getEnv'>): string {
  let e = ''
  try {
    e = t.getEnv ? String(t.getEnv()) : ''
  } catch {
    // No getEnv: the globals decide.
  }
  const n = detectNative()
  return envs[e] || (n && n.name) || 'wechat'
}

/** Creates a client for a Taro project. Make one per server and share it. */
export function createTaroClient(options: TaroClientOptions): Client {
  if (!options.taro) throw new TypeError('wxauth: pass options.taro (import Taro from "@tarojs/taro")')
  return createClient(taroPlatform(options.taro, options), options)
}

// Runs one of Taro's promise APIs, aborting its task when the request's signal fires.
function run(start: () => Promise<TaroReply>, signal: { addEventListener(t: 'abort', f: () => void): void } | undefined, done: (r: TaroReply) => HttpReply): Promise<HttpReply> {
  let p: Promise<TaroReply> & TaskLike
  try {
    p = start()
  } catch (e) {
    return Promise.reject(e)
  }
  if (signal) signal.addEventListener('abort', () => typeof p.abort === 'function' && p.abort())
  return p.then(done, (e: unknown) => {
    throw new WxAuthError(0, 'network_error', errMsg(e) || 'request failed', undefined, e)
  })
}

/** The {@link Platform} for a `Taro`-shaped object. */
export function taroPlatform(t: TaroLike, opts: Pick<ClientOptions, 'platform' | 'loginOptions'> = {}): Platform {
  const name = opts.platform ?? taroPlatformName(t)
  const reply = (r: TaroReply): HttpReply => ({ statusCode: r.statusCode, data: r.data, header: r.header || {} })
  return {
    name,
    login: async () => {
      let res: LoginSuccess
      try {
        res = await t.login(name === 'alipay' ? { scopes: 'auth_base', ...opts.loginOptions } : opts.loginOptions)
      } catch (e) {
        throw new WxAuthError(0, 'wx_login_failed', errMsg(e) || 'Taro.login failed', undefined, e)
      }
      const code = res && (res.code || res.authCode)
      if (res && res.anonymousCode) return code ? { code, anonymousCode: res.anonymousCode } : { anonymousCode: res.anonymousCode }
      if (!code) throw new WxAuthError(0, 'wx_login_failed', (res && res.errMsg) || 'Taro.login gave no code')
      return code
    },
    request: (req) => {
      const o: TaroRequestOption = { url: req.url, method: req.method, header: req.header, dataType: 'json', wxauth: true }
      if (req.data !== undefined) o.data = req.data
      if (req.timeout !== undefined) o.timeout = req.timeout
      return run(() => t.request(o), req.signal, reply)
    },
    upload: (req) => {
      const o: Parameters<NonNullable<TaroLike['uploadFile']>>[0] = { url: req.url, filePath: req.filePath, name: req.name, header: req.header }
      if (req.formData !== undefined) o.formData = req.formData
      if (req.timeout !== undefined) o.timeout = req.timeout
      if (name === 'alipay' && req.fileType) o.fileType = req.fileType
      return run(() => t.uploadFile!(o), req.signal, reply)
    },
    download: (req) => {
      const o: Parameters<NonNullable<TaroLike['downloadFile']>>[0] = { url: req.url, header: req.header }
      if (req.filePath !== undefined) o.filePath = req.filePath
      if (req.timeout !== undefined) o.timeout = req.timeout
      return run(() => t.downloadFile!(o), req.signal, (r) => {
        const data: AnyObject = { tempFilePath: r.tempFilePath }
        if (r.filePath) data.filePath = r.filePath
        return { statusCode: r.statusCode, data, header: r.header || {} }
      })
    },
    phoneResponse: () => alipayPhone((detectNative()?.host ?? {}) as AlipayLike),
    getStorage: (key) => t.getStorageSync(key),
    setStorage: (key, value) => t.setStorageSync(key, value),
    removeStorage: (key) => t.removeStorageSync(key),
    randomBytes: async (n) => {
      if (typeof t.getRandomValues === 'function') {
        try {
          const v = (await t.getRandomValues({ length: n })).randomValues
          if (v && v.byteLength === n) return new Uint8Array(v)
        } catch {
          // Not this platform (Taro's H5 and other builds): use crypto below.
        }
      }
      return cryptoRandomBytes(n)
    },
  }
}
