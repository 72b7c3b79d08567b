// The adapter for native mini-programs. It finds the host by its global
// (qq, tt, jd, swan, my, ks, then wx: the other hosts also expose a wx
// alias, so wx comes last) and calls that host's own APIs in their callback
// form (the login APIs have no promise form everywhere): wx.login and its kin,
// Douyin's anonymousCode, Baidu's swan.getLoginCode, Alipay's my.getAuthCode
// and its request, storage and upload shapes.

import {
  createClient,
  cryptoRandomBytes,
  errMsg,
  WxAuthError,
  type AnyObject,
  type Client,
  type ClientOptions,
  type DownloadRequest,
  type HttpReply,
  type HttpRequest,
  type LoginCode,
  type Method,
  type Platform,
  type PlatformName,
  type UploadRequest,
} from './core.js'

/** A mini-program API failure, as `fail` callbacks receive it (Alipay: `error`, `errorMessage`). */
export interface FailResult {
  errMsg?: string
  errno?: number
  error?: number
  errorMessage?: string
}

/** A login API's success: `code`; Douyin adds `anonymousCode`, Alipay's my.getAuthCode gives `authCode`. */
export interface LoginSuccess {
  code?: string
  anonymousCode?: string
  authCode?: string
  errMsg?: string
}

/** The callbacks of a login API (wx.login, uni.login, tt.login, swan.getLoginCode, my.getAuthCode). */
export interface LoginCallbacks {
  success: (res: LoginSuccess) => void
  fail: (err: FailResult) => void
}

/** A task handle that mini-program request, upload and download APIs return. */
export interface TaskLike {
  abort?(): void
}

/** The options of `wx.request` that the client uses. */
export interface WxRequestOption {
  url: string
  method?: Method
  data?: string | AnyObject | ArrayBuffer
  header?: AnyObject
  timeout?: number
  dataType?: 'json'
  /** Called for every HTTP status. */
  success?: (res: { statusCode: number; data: unknown; header?: AnyObject }) => void
  /** Called only when no answer came. */
  fail?: (err: FailResult) => void
}

/** The options of `wx.uploadFile` that the client uses. */
export interface WxUploadOption {
  url: string
  filePath: string
  name: string
  header?: AnyObject
  formData?: AnyObject
  timeout?: number
  /** uni-app on Alipay needs it. */
  fileType?: string
  success?: (res: { statusCode: number; data: unknown; header?: AnyObject }) => void
  fail?: (err: FailResult) => void
}

/** The options of `wx.downloadFile` that the client uses. */
export interface WxDownloadOption {
  url: string
  header?: AnyObject
  filePath?: string
  timeout?: number
  success?: (res: { statusCode: number; tempFilePath: string; filePath?: string; header?: AnyObject }) => void
  fail?: (err: FailResult) => void
}

/** The options of `wx.getRandomValues` (base library 2.15.0+). */
export interface WxRandomOption {
  length: number
  success?: (res: { randomValues: ArrayBuffer }) => void
  fail?: (err: FailResult) => void
}

/**
 * The parts of `wx` the client uses; the real `wx` fits, and so do `qq`,
 * `tt`, `jd`, `swan` and `ks`. Tests pass a stand-in.
 */
export interface WxLike {
  login(option: Partial<LoginCallbacks> & AnyObject): unknown
  request(option: WxRequestOption): unknown
  getStorageSync(key: string): unknown
  setStorageSync(key: string, data: unknown): void
  removeStorageSync(key: string): void
  uploadFile?(option: WxUploadOption): unknown
  downloadFile?(option: WxDownloadOption): unknown
  /** Baidu: the login code API that does not ask the user (swan.login may). */
  getLoginCode?(option: Partial<LoginCallbacks>): unknown
  /** Absent before base library 2.15.0 and on some hosts; the client then uses `crypto.getRandomValues`. */
  getRandomValues?(option: WxRandomOption): unknown
}

/** The parts of Alipay's `my` the client uses: its own shapes for login, request, storage and upload. */
export interface AlipayLike {
  getAuthCode(option: { scopes: string } & Partial<LoginCallbacks>): unknown
  /** Alipay answers `{ status, headers, data }`; a non-2xx status comes to `fail` (error 19) with them. */
  request(option: {
    url: string
    method?: string
    headers?: AnyObject
    data?: unknown
    timeout?: number
    dataType?: string
    success?: (res: { status: number; data: unknown; headers?: AnyObject }) => void
    fail?: (err: FailResult & { status?: number; data?: unknown; headers?: AnyObject }) => void
  }): unknown
  getStorageSync(option: { key: string }): { data?: unknown } | undefined
  setStorageSync(option: { key: string; data: unknown }): unknown
  removeStorageSync(option: { key: string }): unknown
  uploadFile?(option: {
    url: string
    filePath: string
    fileName: string
    fileType: string
    header?: AnyObject
    formData?: AnyObject
    success?: (res: { statusCode: number; data: unknown; header?: AnyObject }) => void
    fail?: (err: FailResult) => void
  }): unknown
  downloadFile?(option: {
    url: string
    header?: AnyObject
    success?: (res: { apFilePath?: string; tempFilePath?: string; statusCode?: number; header?: AnyObject }) => void
    fail?: (err: FailResult) => void
  }): unknown
  /** Call it after the user tapped `<button open-type="getAuthorize" scope="phoneNumber">`. */
  getPhoneNumber?(option: { success?: (res: { response: string }) => void; fail?: (err: FailResult) => void }): unknown
  getRandomValues?(option: WxRandomOption): unknown
}

/** Options of {@link createWxClient}. */
export interface WxClientOptions extends ClientOptions {
  /**
   * The host object. Default: the detected global (qq, tt, jd, swan, my, ks,
   * else wx). With a host given, `platform` says which it is (default `wechat`).
   */
  wx?: WxLike | AlipayLike
}

// Only the types: the hosts' globals exist inside their mini-programs.
declare const qq: unknown, tt: unknown, jd: unknown, swan: unknown, my: unknown, ks: unknown, wx: unknown

/** A native host global and the platform it is. */
export interface NativeHost {
  name: PlatformName
  host: WxLike | AlipayLike
}

/**
 * The native host of this mini-program, by its global: qq, tt (Douyin), jd,
 * swan (Baidu), my (Alipay), ks (Kuaishou), then wx, since other hosts expose
 * a wx alias too. Undefined outside a mini-program.
 */
export function detectNative(): NativeHost | undefined {
  const found: [unknown, PlatformName][] = [
    [typeof qq !== 'undefined' && qq, 'qq'],
    [typeof tt !== 'undefined' && tt, 'douyin'],
    [typeof jd !== 'undefined' && jd, 'jd'],
    [typeof swan !== 'undefined' && swan, 'baidu'],
    [typeof my !== 'undefined' && my, 'alipay'],
    [typeof ks !== 'undefined' && ks, 'kuaishou'],
    [typeof wx !== 'undefined' && wx, 'wechat'],
  ]
  for (const [h, name] of found) {
    if (h && typeof (h as AnyObject).request === 'function') return { name, host: h as WxLike }
  }
  return undefined
}

/** Creates a client for a native mini-program on any of the hosts. Make one per server and share it. */
export function createWxClient(options: WxClientOptions): Client {
  const found: NativeHost | undefined = options.wx ? { name: options.platform ?? 'wechat', host: options.wx } : detectNative()
  if (!found) throw new TypeError('wxauth: no global wx (nor qq, tt, jd, swan, my, ks); pass options.wx')
  return createClient(nativePlatform(found.host, options.platform ?? found.name, options.loginOptions), options)
}

/** The {@link Platform} for a host object (`wx`, `qq`, `tt`, `jd`, `swan`, `ks`, or Alipay's `my`). */
export function nativePlatform(h: WxLike | AlipayLike, name: PlatformName = 'wechat', loginOptions?: AnyObject): Platform {
  if (name === 'alipay') return alipayPlatform(h as AlipayLike)
  const w = h as WxLike
  return {
    name,
    // Baidu's getLoginCode gives a code without asking the user; swan.login may ask.
    login: () =>
      callbackLogin((o) => (name === 'baidu' && w.getLoginCode ? w.getLoginCode(o) : w.login({ ...loginOptions, ...o })), name + ' login'),
    request: (req) => callbackRequest(w, req),
    upload: w.uploadFile && ((req) => callbackUpload(w, req)),
    download: w.downloadFile && ((req) => callbackDownload(w, req)),
    getStorage: (key) => w.getStorageSync(key),
    setStorage: (key, value) => w.setStorageSync(key, value),
    removeStorage: (key) => w.removeStorageSync(key),
    randomBytes: (n) => wxRandomBytes(w, n),
  }
}

/** The {@link Platform} for wx, kept for code written against 0.x. */
export const wxPlatform = (w: WxLike): Platform => nativePlatform(w)

/** The {@link Platform} for Alipay's `my`: my.getAuthCode with scope auth_base, and Alipay's own shapes. */
export function alipayPlatform(m: AlipayLike): Platform {
  return {
    name: 'alipay',
    login: () => callbackLogin((o) => m.getAuthCode({ scopes: 'auth_base', ...o }), 'my.getAuthCode'),
    request: (req) =>
      call<HttpReply>(req, (ok, ko) => {
        const header: AnyObject = { ...req.header }
        let data = req.data
        // Alipay sends objects as a form unless told JSON; wxauth and most apps want JSON.
        if (data !== undefined && typeof data === 'object' && !(data instanceof ArrayBuffer) && req.method !== 'GET') {
          if (!Object.keys(header).some((k) => k.toLowerCase() === 'content-type')) header['content-type'] = 'application/json'
          data = JSON.stringify(data)
        }
        const o: Parameters<AlipayLike['request']>[0] = { url: req.url, method: req.method, headers: header, dataType: 'json' }
        if (data !== undefined) o.data = data
        if (req.timeout !== undefined) o.timeout = req.timeout
        o.success = (r) => ok({ statusCode: r.status, data: r.data, header: r.headers || {} })
        // error 19: an answer with a non-2xx status, which the client handles like any other answer.
        o.fail = (e) => (typeof e.status === 'number' && e.status > 0 ? ok({ statusCode: e.status, data: e.data, header: e.headers || {} }) : ko(e))
        return m.request(o)
      }),
    upload: (req) =>
      call<HttpReply>(req, (ok, ko) =>
        m.uploadFile!({
          url: req.url,
          filePath: req.filePath,
          fileName: req.name,
          fileType: req.fileType || 'image',
          header: req.header,
          formData: req.formData,
          success: (r) => ok({ statusCode: r.statusCode, data: r.data, header: r.header || {} }),
          fail: ko,
        }),
      ),
    download: (req) =>
      call<HttpReply>(req, (ok, ko) =>
        m.downloadFile!({
          url: req.url,
          header: req.header,
          success: (r) =>
            ok({ statusCode: r.statusCode || 200, data: { tempFilePath: r.apFilePath || r.tempFilePath }, header: r.header || {} }),
          fail: ko,
        }),
      ),
    phoneResponse: () => alipayPhone(m),
    getStorage: (key) => {
      const r = m.getStorageSync({ key })
      return r && r.data
    },
    setStorage: (key, data) => void m.setStorageSync({ key, data }),
    removeStorage: (key) => void m.removeStorageSync({ key }),
    randomBytes: (n) => wxRandomBytes(m, n),
  }
}

/** The text `my.getPhoneNumber` gives (its `response`), for the phone endpoint. */
export function alipayPhone(m: Pick<AlipayLike, 'getPhoneNumber'>): Promise<string> {
  return new Promise((resolve, reject) => {
    if (!m.getPhoneNumber) return reject(new WxAuthError(0, 'phone_denied', 'my.getPhoneNumber is missing'))
    m.getPhoneNumber({
      success: (r) => (r && typeof r.response === 'string' ? resolve(r.response) : reject(r)),
      fail: reject,
    })
  })
}

/**
 * Gets a code from a callback-style login API; `name` is for error messages.
 * Douyin's anonymousCode comes along when there is one; Alipay's authCode is the code.
 */
export function callbackLogin(login: (o: LoginCallbacks) => unknown, name: string): Promise<string | LoginCode> {
  return new Promise((resolve, reject) => {
    const failed = (e: unknown, m?: string) => reject(new WxAuthError(0, 'wx_login_failed', errMsg(e) || m || name + ' failed', undefined, e))
    try {
      login({
        success: (res) => {
          const code = res && (res.code || res.authCode)
          if (res && res.anonymousCode) resolve(code ? { code, anonymousCode: res.anonymousCode } : { anonymousCode: res.anonymousCode })
          else if (code) resolve(code)
          else failed(undefined, (res && res.errMsg) || name + ' gave no code')
        },
        fail: (err) => failed(err),
      })
    } catch (e) {
      failed(e)
    }
  })
}

// Starts a platform task with callbacks, and aborts it when the request's signal fires.
function call<T>(
  req: { signal?: HttpRequest['signal'] },
  start: (ok: (r: T) => void, ko: (e: unknown) => void) => unknown,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const ko = (e: unknown) => reject(new WxAuthError(0, 'network_error', errMsg(e) || 'request failed', undefined, e))
    try {
      const t = start(resolve, ko) as TaskLike | undefined
      if (req.signal) req.signal.addEventListener('abort', () => t && typeof t.abort === 'function' && t.abort())
    } catch (e) {
      ko(e)
    }
  })
}

/** Sends a request through a callback-style `request` (wx.request, uni.request and the other hosts'). */
export function callbackRequest(host: { request(option: WxRequestOption): unknown }, req: HttpRequest): Promise<HttpReply> {
  return call<HttpReply>(req, (ok, ko) => {
    const o: WxRequestOption = {
      url: req.url,
      method: req.method,
      header: req.header,
      dataType: 'json',
      // success comes for every HTTP status, fail only when no answer came.
      success: (res) => ok({ statusCode: res.statusCode, data: res.data, header: res.header || {} }),
      fail: ko,
    }
    if (req.data !== undefined) o.data = req.data
    if (req.timeout !== undefined) o.timeout = req.timeout
    return host.request(o)
  })
}

/** Uploads through a callback-style `uploadFile` (wx.uploadFile, uni.uploadFile and kin). */
export function callbackUpload(host: Pick<WxLike, 'uploadFile'>, req: UploadRequest, fileType?: boolean): Promise<HttpReply> {
  return call<HttpReply>(req, (ok, ko) => {
    const o: WxUploadOption = {
      url: req.url,
      filePath: req.filePath,
      name: req.name,
      header: req.header,
      success: (res) => ok({ statusCode: res.statusCode, data: res.data, header: res.header || {} }),
      fail: ko,
    }
    if (req.formData !== undefined) o.formData = req.formData
    if (req.timeout !== undefined) o.timeout = req.timeout
    if (fileType && req.fileType) o.fileType = req.fileType
    return host.uploadFile!(o)
  })
}

/** Downloads through a callback-style `downloadFile` (wx.downloadFile, uni.downloadFile and kin). */
export function callbackDownload(host: Pick<WxLike, 'downloadFile'>, req: DownloadRequest): Promise<HttpReply> {
  return call<HttpReply>(req, (ok, ko) => {
    const o: WxDownloadOption = {
      url: req.url,
      header: req.header,
      success: (res) => {
        const data: AnyObject = { tempFilePath: res.tempFilePath }
        if (res.filePath) data.filePath = res.filePath
        ok({ statusCode: res.statusCode, data, header: res.header || {} })
      },
      fail: ko,
    }
    if (req.filePath !== undefined) o.filePath = req.filePath
    if (req.timeout !== undefined) o.timeout = req.timeout
    return host.downloadFile!(o)
  })
}

/**
 * `n` secure random bytes from `host.getRandomValues` when it has one and it
 * works, else from `crypto.getRandomValues`.
 */
export function wxRandomBytes(host: Pick<WxLike, 'getRandomValues'> | undefined, n: number): Promise<Uint8Array> {
  const get = host && host.getRandomValues
  if (typeof get !== 'function') return fallback(n)
  return new Promise((resolve, reject) => {
    const other = () => fallback(n).then(resolve, reject)
    try {
      get.call(host, {
        length: n,
        success: (res) => {
          // No instanceof: the bridge's ArrayBuffer may come from another realm.
          const v = res && res.randomValues
          const b = v && typeof v.byteLength === 'number' ? new Uint8Array(v) : undefined
          if (b && b.length === n) resolve(b)
          else other()
        },
        fail: other,
      })
    } catch {
      other()
    }
  })
}

function fallback(n: number): Promise<Uint8Array> {
  try {
    return Promise.resolve(cryptoRandomBytes(n))
  } catch (e) {
    return Promise.reject(e)
  }
}
