// The client core: token storage, one shared login at a time, a nonce per
// login code, one retry after 401 invalid_token, refresh before expiry,
// interceptors, aborting, uploads and downloads, and the phone and decrypt
// helpers. It knows nothing of wx, uni or Taro: each adapter (wx.ts, uni.ts,
// taro.ts) hands it a Platform.

/** HTTP methods that mini-program request APIs accept. */
export type Method = 'OPTIONS' | 'GET' | 'HEAD' | 'POST' | 'PUT' | 'DELETE' | 'TRACE' | 'CONNECT'

/** A JSON-like object, as the request APIs take for `data`. */
export type AnyObject = Record<string, any>

/** What a request may carry: a string, an object (JSON, or query parameters for GET) or bytes. */
export type RequestData = string | AnyObject | ArrayBuffer

/**
 * The mini-program platforms wxauth serves (`platform` in the login request),
 * and `jd`, which the kit detects so that a JD build is not taken for WeChat.
 */
export type PlatformName = 'wechat' | 'qq' | 'douyin' | 'alipay' | 'baidu' | 'kuaishou' | 'jd'

/**
 * The part of the standard `AbortSignal` the client uses. A real
 * `AbortController().signal` fits where the engine has one; so does any
 * object of this shape where it does not.
 */
export interface AbortSignalLike {
  readonly aborted: boolean
  addEventListener(type: 'abort', listener: () => void): void
  removeEventListener?(type: 'abort', listener: () => void): void
}

/** One HTTP request, as the core hands it to a {@link Platform}. */
export interface HttpRequest {
  /** Absolute URL. */
  url: string
  method: Method
  header: Record<string, string>
  data?: RequestData
  /** Milliseconds; absent means the platform's default. */
  timeout?: number
  /** Aborts the platform's task (`RequestTask.abort()`) when it fires. */
  signal?: AbortSignalLike
}

/** A file upload (wx.uploadFile and its kin), as the core hands it to a {@link Platform}. */
export interface UploadRequest {
  /** Absolute URL. */
  url: string
  header: Record<string, string>
  /** The local file, e.g. the `avatarUrl` of a chooseAvatar button. */
  filePath: string
  /** The form field that carries the file. */
  name: string
  /** Other form fields. */
  formData?: AnyObject
  /** Alipay needs it (`image`, `video` or `audio`); other platforms ignore it. */
  fileType?: 'image' | 'video' | 'audio'
  timeout?: number
  signal?: AbortSignalLike
}

/** A file download (wx.downloadFile and its kin), as the core hands it to a {@link Platform}. */
export interface DownloadRequest {
  /** Absolute URL. */
  url: string
  header: Record<string, string>
  /** Where to save the file (user data path); absent means a temporary file. */
  filePath?: string
  timeout?: number
  signal?: AbortSignalLike
}

/** Any request the client sends, as request interceptors see it; `kind` tells which. */
export type OutgoingRequest =
  | ({ kind: 'request' } & HttpRequest)
  | ({ kind: 'upload' } & UploadRequest)
  | ({ kind: 'download' } & DownloadRequest)

/** The answer to a request, for any HTTP status. */
export interface HttpReply {
  statusCode: number
  /** Response headers, where the platform gives them. */
  header?: Record<string, string>
  /**
   * The body, parsed as JSON when it is JSON (as the request APIs do with
   * `dataType: 'json'`). For a download: `{ tempFilePath, filePath? }`.
   */
  data: unknown
}

/** What a request resolves with when `fullResponse` is set. */
export interface FullResponse<T = unknown> {
  statusCode: number
  header: Record<string, string>
  data: T
}

/** What a download resolves with. */
export interface DownloadResult {
  statusCode: number
  header: Record<string, string>
  /** The downloaded file (Alipay's `apFilePath`). */
  tempFilePath: string
  /** Set when the request named a `filePath`. */
  filePath?: string
}

/** A login API's answer: a code, and Douyin's anonymous code when it gives one. */
export interface LoginCode {
  code?: string
  /** Douyin (`tt.login`): names the device; the only code of a guest who is not logged in to Douyin. */
  anonymousCode?: string
}

/**
 * What the core needs from the framework. The adapters build one from `wx`
 * (and the other native hosts), `uni` or `Taro`; write your own to run the
 * client somewhere else.
 */
export interface Platform {
  /** The platform, sent as `platform` in the login request unless `wechat`. Default `wechat`. */
  name?: string
  /** A fresh login code (wx.login and its kin). Rejects when none came. */
  login(): Promise<string | LoginCode>
  /**
   * Sends a request. Resolves for every HTTP status; rejects (preferably with
   * a {@link WxAuthError} `network_error`) only when no answer came.
   */
  request(req: HttpRequest): Promise<HttpReply>
  /** Uploads a file; resolves for every HTTP status, `data` as the platform gives it (text). */
  upload?(req: UploadRequest): Promise<HttpReply>
  /** Downloads a file; resolves for every HTTP status, `data` being `{ tempFilePath, filePath? }`. */
  download?(req: DownloadRequest): Promise<HttpReply>
  /** Alipay: the text `my.getPhoneNumber` gives, posted unchanged to the phone endpoint. */
  phoneResponse?(): Promise<string>
  /** Reads local storage synchronously; anything that is not a stored token is ignored. */
  getStorage(key: string): unknown
  /** Writes local storage synchronously. */
  setStorage(key: string, value: unknown): void
  /** Removes a key from local storage. */
  removeStorage(key: string): void
  /** `n` bytes from a cryptographically secure source. */
  randomBytes(n: number): Promise<Uint8Array>
}

/** Options shared by every adapter. */
export interface ClientOptions {
  /** Where Caddy serves the app, without a trailing slash, e.g. `https://api.example.com`. */
  baseURL: string
  /** The wxauth `login_path`. Default `/wx/login`. */
  loginPath?: string
  /** The wxauth `refresh_path`. Default `/wx/refresh`. */
  refreshPath?: string
  /** The wxauth `logout_path`. Default `/wx/logout`. */
  logoutPath?: string
  /** The wxauth `decrypt_path`. Default `/wx/decrypt`. */
  decryptPath?: string
  /** The wxauth `phone_path`. Default `/wx/phone`. */
  phonePath?: string
  /** The wxauth `session_path`. Default `/wx/session`. */
  sessionPath?: string
  /**
   * The platform, when detection should not decide (see the adapters). The
   * login request says it as `platform` (not for `wechat`), and the phone
   * number is asked for in its own way.
   */
  platform?: PlatformName
  /** Extra options for the platform's login API, e.g. `{ force: false }` for Douyin's tt.login. */
  loginOptions?: AnyObject
  /**
   * The local storage key that holds the token. Default `wxauth_token:` plus
   * baseURL (without its trailing slash), so that clients of two servers keep
   * their own tokens. A token stored by an earlier version under the plain
   * `wxauth_token` key is moved to the default key on first use (not when
   * this option is set).
   */
  storageKey?: string
  /**
   * How long before its expiry a token is renewed (through the refresh
   * endpoint, which keeps the session) instead of used, in seconds.
   * Default 60; never more than half the token's lifetime.
   */
  renewBeforeSeconds?: number
  /** Request timeout in milliseconds. Default: the platform's own. */
  timeout?: number
  /**
   * A secure random source for login nonces, replacing the platform's
   * (`wx.getRandomValues` and its kin, else `crypto.getRandomValues`). Never
   * use Math.random: the nonce is what keeps a leaked code from giving away a
   * session.
   */
  random?: (n: number) => Uint8Array | Promise<Uint8Array>
  /** The clock, in milliseconds since the epoch. Default `Date.now`; for tests. */
  now?: () => number
}

/** Options of every request the client sends for the app. */
export interface SendOptions {
  /** A path on baseURL, starting with `/`; may carry a query string. */
  path: string
  /** Extra request headers. `Authorization` is set by the client. */
  header?: Record<string, string>
  /** Timeout in milliseconds for this request. */
  timeout?: number
  /** Send the token and handle 401 by logging in. Default true; false for public paths. */
  auth?: boolean
  /** Aborts the request when it fires, like calling `abort()` on the returned task. */
  signal?: AbortSignalLike
}

/** What {@link Client.request} sends. */
export interface RequestOptions extends SendOptions {
  /** HTTP method. Default `GET`. */
  method?: Method
  /** Body (JSON for objects) or, for GET, query parameters, as the request APIs treat them. */
  data?: RequestData
  /** Resolve with `{ statusCode, header, data }` instead of `data` only. */
  fullResponse?: boolean
}

/** What {@link Client.uploadFile} sends. */
export interface UploadOptions extends SendOptions {
  /** The local file, e.g. the `avatarUrl` of a chooseAvatar button. */
  filePath: string
  /** The form field that carries the file. Default `file`. */
  name?: string
  /** Other form fields. */
  formData?: AnyObject
  /** Alipay needs it; default `image`. */
  fileType?: 'image' | 'video' | 'audio'
  /** Resolve with `{ statusCode, header, data }` instead of `data` only. */
  fullResponse?: boolean
}

/** What {@link Client.downloadFile} sends. */
export interface DownloadOptions extends SendOptions {
  /** Where to save the file; absent means a temporary file. */
  filePath?: string
}

/** A request under way: a promise that also has `abort()`, which rejects it with `aborted`. */
export type RequestTask<T> = Promise<T> & { abort(): void }

/** Changes a request before it is sent (every attempt, login and refresh included), or throws to stop it. */
export type RequestInterceptor = (req: OutgoingRequest) => OutgoingRequest | void | Promise<OutgoingRequest | void>

/**
 * Sees the final answer of a request, upload or download (after the client's
 * one re-login and retry) before the client turns it into a result or an
 * error; may return another reply, or throw.
 */
export type ResponseInterceptor = (res: HttpReply, req: OutgoingRequest) => HttpReply | void | Promise<HttpReply | void>

/** A list of interceptors; `use` adds one and returns the function that removes it. */
export interface InterceptorList<F> {
  use(interceptor: F): () => void
}

/** The reply of the login and refresh endpoints. */
export interface LoginResult {
  token: string
  token_type: 'Bearer'
  /** Lifetime of the token in seconds. */
  expires_in: number
  openid: string
  /** Present only when the platform gave one. */
  unionid?: string
}

/** What the client keeps in local storage. */
export interface StoredToken {
  token: string
  /** When the server stops accepting the token, ms since the epoch (local clock). */
  expiresAt: number
  /** When the client renews it, ms since the epoch. */
  renewAt: number
  openid: string
  unionid?: string
}

/** Encrypted open data, as the platforms' APIs and button events hand it over. */
export interface EncryptedData {
  encryptedData: string
  iv: string
  /** With `signature`, lets the server check that rawData came from WeChat. */
  rawData?: string
  signature?: string
}

/** A component event that carries {@link EncryptedData} in `detail`. */
export interface EncryptedDataEvent {
  detail: EncryptedData
}

/** The event of `<button open-type="getPhoneNumber">` (wx, uni-app and Taro alike). */
export interface PhoneNumberEvent {
  detail: {
    /** WeChat: the one-time phone code (base library 2.21.2+); absent when the user declined. */
    code?: string
    /** QQ, Douyin, Baidu, Kuaishou: the number sealed with the session key. */
    encryptedData?: string
    iv?: string
    errMsg?: string
  }
}

/** The phone number, as the phone endpoint answers it (WeChat's phone_info). */
export interface PhoneInfo {
  phoneNumber: string
  purePhoneNumber: string
  countryCode: string | number
  watermark?: { timestamp: number; appid: string }
}

/** The reply of the session endpoint. */
export interface SessionInfo {
  openid: string
  unionid?: string
  /** Unix seconds. */
  expires_at: number
  /** False when the platform no longer accepts the session_key: call login() before decrypting. */
  session_key_valid: boolean
}

/** The client every adapter returns. */
export interface Client {
  /** baseURL without its trailing slash: recipes send the token only to URLs under it. */
  readonly baseURL: string
  /** The platform the client logs in on (`wechat`, `qq`, `douyin`, ...). */
  readonly platform: string
  /**
   * Sends an authenticated request and resolves with the reply body of a 2xx
   * answer (with `fullResponse`, with `{ statusCode, header, data }`).
   */
  request<T = unknown>(opts: RequestOptions & { fullResponse: true }): RequestTask<FullResponse<T>>
  request<T = unknown>(opts: RequestOptions): RequestTask<T>
  /** Uploads a file with the token (same re-login and retry rules); resolves with the reply body, JSON parsed. */
  uploadFile<T = unknown>(opts: UploadOptions & { fullResponse: true }): RequestTask<FullResponse<T>>
  uploadFile<T = unknown>(opts: UploadOptions): RequestTask<T>
  /** Downloads a file with the token (same re-login and retry rules). */
  downloadFile(opts: DownloadOptions): RequestTask<DownloadResult>
  /** Interceptors of every request the client sends (`request`) and of the app's answers (`response`). */
  readonly interceptors: {
    request: InterceptorList<RequestInterceptor>
    response: InterceptorList<ResponseInterceptor>
  }
  /** Logs in now, even when a token is stored. Concurrent calls share one login. */
  login(): Promise<LoginResult>
  /** Ends the session on the server (when there is one) and forgets the token. */
  logout(): Promise<void>
  /**
   * Has the server decrypt open data with the session's session_key. Takes
   * the API result (`{ encryptedData, iv, ... }`) or a component event whose
   * `detail` carries it.
   */
  decrypt<T = Record<string, unknown>>(data: EncryptedData | EncryptedDataEvent): Promise<T>
  /**
   * Resolves a WeChat getPhoneNumber button code into the phone number. A
   * `hook_failed` (the app did not take the phone event) is not retried
   * here: calling again with the same code within 5 minutes is.
   */
  phone(code: string): Promise<PhoneInfo>
  /**
   * Handles the getPhoneNumber button's event in the platform's own way:
   * WeChat's code, the encrypted data of QQ, Douyin, Baidu and Kuaishou, or
   * on Alipay `my.getPhoneNumber` (call it from the button's
   * `onGetAuthorize`; the event may be left out). Rejects with
   * `phone_denied` when the user declined. After a `hook_failed`, the same
   * event may be passed again (see {@link Client.phone}).
   */
  getPhoneNumber(e?: PhoneNumberEvent): Promise<PhoneInfo>
  /** The server's view of the session, including whether the session_key still works. */
  session(): Promise<SessionInfo>
  /** The stored token, if any (it may be expired); undefined before login. */
  token(): string | undefined
  /**
   * A token the server should accept, for requests sent by your own HTTP
   * layer: the stored one while it is valid, else after a refresh or a login
   * (concurrent callers share one). With `{ refused }`, the token your
   * request was refused with (`401 invalid_token`): the client forgets it
   * and resolves with a new one, shared with every caller refused with the
   * same token. Retry your request once with it.
   */
  ensureToken(opts?: EnsureTokenOptions): Promise<string>
  /** The stored token when it has not expired (by the local clock), else null. Never sends a request. */
  getToken(): string | null
  /** Calls `listener` after every login and refresh that stored a new token. Returns the unsubscribe function. */
  onLogin(listener: (e: LoginEvent) => void): () => void
  /** Calls `listener` after {@link Client.logout} forgot a stored token. Returns the unsubscribe function. */
  onLogout(listener: () => void): () => void
  /**
   * Calls `listener` once per failure that the app may want to route on: a
   * login or refresh that failed (any cause, network included), a `401`
   * `invalid_token` / `missing_token` left after the one re-login and retry,
   * and every refusal by the app ({@link isRefusal}). Returns the unsubscribe function.
   */
  onAuthError(listener: (e: WxAuthError) => void): () => void
}

/** Options of {@link Client.ensureToken}. */
export interface EnsureTokenOptions {
  /** The token a request was refused with; it is replaced, not returned. */
  refused?: string
}

/** What {@link Client.onLogin} listeners get: the server's reply and how the token came. */
export interface LoginEvent extends LoginResult {
  /** `login` for a new session (wx.login), `refresh` for a renewed token of the same session. */
  via: 'login' | 'refresh'
}

/**
 * An error answer of caddy-wxauth (its JSON `error`, `message`, `errcode`), or
 * a failure on the way there, with status 0: `network_error` (no answer came),
 * `aborted` (the caller aborted the request), `wx_login_failed` (the
 * platform's login API gave no code), `no_random_source` (the `random`
 * option failed), `phone_denied` (the user declined the phone number); or
 * `http_error` (a non-2xx answer without the server's error body, e.g. from
 * the upstream app) and `invalid_response` (a login reply without a token).
 */
export class WxAuthError extends Error {
  /** HTTP status; 0 when no answer came. */
  readonly status: number
  /** The error code, e.g. `invalid_token`, `invalid_code`, `rate_limited`, `hook_failed`, `network_error`. */
  readonly error: string
  /** The platform's errcode, when it gave one (a number, or Alipay's sub_code text). */
  readonly errcode?: number | string
  /** The raw reply body, or the platform's failure object. */
  readonly body?: unknown
  /**
   * Who refused on purpose: `app` when your app_hook refused the login,
   * phone or decrypt event (`403` with the app's own `error` and `message`).
   * The client never retries or logs in again after a refusal; see {@link isRefusal}.
   */
  readonly refusedBy?: string

  constructor(status: number, error: string, message: string, errcode?: number | string, body?: unknown, refusedBy?: string) {
    super(message || error)
    // Keeps instanceof working when a build compiles classes down to ES5.
    Object.setPrototypeOf(this, WxAuthError.prototype)
    this.name = 'WxAuthError'
    this.status = status
    this.error = error
    if (errcode !== undefined) this.errcode = errcode
    if (body !== undefined) this.body = body
    if (refusedBy !== undefined) this.refusedBy = refusedBy
  }
}

/**
 * True for a deliberate refusal (today only by your app, `refusedBy: 'app'`):
 * show `e.message` to the user (it is the app's own text) and do not retry.
 */
export function isRefusal(e: unknown): e is WxAuthError & { refusedBy: string } {
  return e instanceof WxAuthError && typeof e.refusedBy === 'string' && e.refusedBy !== ''
}

/** The bytes of a login nonce: 24 bytes make 32 base64url characters. */
export const NONCE_BYTES = 24

/** The server's rule for a nonce. */
export const NONCE_PATTERN = /^[A-Za-z0-9_-]{16,64}$/

// Only the type of the global: it exists in browsers, Node and some mini-program engines.
declare const crypto: { getRandomValues?(a: Uint8Array): Uint8Array } | undefined

/**
 * `n` bytes from `crypto.getRandomValues`, for platforms without their own
 * source. Throws `no_random_source` where there is none.
 */
export function cryptoRandomBytes(n: number): Uint8Array {
  if (typeof crypto !== 'undefined' && crypto && typeof crypto.getRandomValues === 'function') {
    return crypto.getRandomValues(new Uint8Array(n))
  }
  throw new WxAuthError(0, 'no_random_source', 'no secure random source (getRandomValues); pass options.random')
}

const b64url = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

/** Encodes bytes as unpadded base64url (no btoa in mini-programs). */
export function base64url(bytes: Uint8Array): string {
  let s = ''
  for (let i = 0; i < bytes.length; i += 3) {
    const v = (bytes[i]! << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0)
    const n = Math.min(4, Math.ceil(((bytes.length - i) * 4) / 3))
    for (let k = 0; k < n; k++) s += b64url[(v >> (18 - 6 * k)) & 63]!
  }
  return s
}

// The 401 codes that a new login can cure; invalid_code cannot.
const relogin = ['invalid_token', 'missing_token']

const aborted = () => new WxAuthError(0, 'aborted', 'request aborted')

/**
 * Builds a client on a platform. The adapters (`createWxClient`,
 * `createUniClient`, `createTaroClient`) call this; call it yourself only
 * for a platform of your own. Make one client per server and share it, so
 * that logins are shared.
 */
export function createClient(platform: Platform, options: ClientOptions): Client {
  const now = options.now ?? Date.now
  const base = options.baseURL.replace(/\/+$/, '')
  const name = options.platform ?? platform.name ?? 'wechat'
  const key = options.storageKey ?? 'wxauth_token:' + base
  // The key of versions before 0.3, read once when the namespaced one is empty.
  let legacy: string | undefined = options.storageKey === undefined ? 'wxauth_token' : undefined
  const renewBefore = (options.renewBeforeSeconds ?? 60) * 1000
  const paths = {
    login: options.loginPath ?? '/wx/login',
    refresh: options.refreshPath ?? '/wx/refresh',
    logout: options.logoutPath ?? '/wx/logout',
    decrypt: options.decryptPath ?? '/wx/decrypt',
    phone: options.phonePath ?? '/wx/phone',
    session: options.sessionPath ?? '/wx/session',
  }

  // The one login or refresh under way; every caller that needs a new token waits on it.
  let pending: Promise<StoredToken> | undefined

  const listeners = { login: [] as ((e: LoginEvent) => void)[], logout: [] as (() => void)[], error: [] as ((e: WxAuthError) => void)[] }
  const before: RequestInterceptor[] = []
  const after: ResponseInterceptor[] = []
  // Errors already handed to onAuthError (callers sharing a login share its error), and login failures.
  const reported = new WeakSet<object>()
  const fromLogin = new WeakSet<object>()

  function subscribe<F>(list: F[], f: F): () => void {
    list.push(f)
    return () => {
      const i = list.indexOf(f)
      if (i >= 0) list.splice(i, 1)
    }
  }

  // Hands an auth failure to onAuthError once, then rethrows it.
  function fail(e: unknown): never {
    if (
      e instanceof WxAuthError &&
      !reported.has(e) &&
      (fromLogin.has(e) || isRefusal(e) || (e.status === 401 && relogin.indexOf(e.error) >= 0))
    ) {
      reported.add(e)
      emit(listeners.error, e)
    }
    throw e
  }

  function read(k: string): StoredToken | undefined {
    let v: unknown
    try {
      v = platform.getStorage(k)
    } catch {
      return undefined
    }
    const t = v as Partial<StoredToken> | undefined
    if (!t || typeof t.token !== 'string' || t.token === '' || typeof t.expiresAt !== 'number') {
      return undefined
    }
    return { renewAt: t.expiresAt, openid: '', ...t } as StoredToken
  }

  function load(): StoredToken | undefined {
    const s = read(key)
    if (s || legacy === undefined) return s
    const old = read(legacy)
    const k = legacy
    legacy = undefined
    if (!old) return undefined
    try {
      platform.setStorage(key, old)
      platform.removeStorage(k)
    } catch {
      // Still usable for this run.
    }
    return old
  }

  function save(r: LoginResult): StoredToken {
    const t = now()
    const life = Math.max(0, r.expires_in) * 1000
    const s: StoredToken = {
      token: r.token,
      expiresAt: t + life,
      renewAt: t + life - Math.min(renewBefore, life / 2),
      openid: r.openid,
    }
    if (r.unionid) s.unionid = r.unionid
    platform.setStorage(key, s)
    return s
  }

  function forget(): void {
    try {
      platform.removeStorage(key)
    } catch {
      // Nothing stored, nothing to forget.
    }
  }

  // The request as interceptors and the platform get it, for one attempt.
  function outgoing(kind: OutgoingRequest['kind'], opts: SendOptions & AnyObject, token?: string): OutgoingRequest {
    const header: Record<string, string> = { ...opts.header }
    if (token) header['Authorization'] = 'Bearer ' + token
    const o: AnyObject = { kind, url: base + opts.path, header }
    if (kind === 'request') o.method = opts.method ?? 'GET'
    if (kind === 'upload') {
      o.name = opts.name ?? 'file'
      o.fileType = opts.fileType ?? 'image'
    }
    for (const f of ['data', 'filePath', 'formData']) if (opts[f] !== undefined) o[f] = opts[f]
    const timeout = opts.timeout ?? options.timeout
    if (timeout !== undefined) o.timeout = timeout
    return o as OutgoingRequest
  }

  async function send(o: OutgoingRequest, sig?: AbortSignalLike): Promise<HttpReply> {
    for (const f of before.slice()) o = (await f(o)) || o
    if (sig) {
      if (sig.aborted) throw aborted()
      o.signal = sig
    }
    try {
      const { kind } = o
      if (kind === 'request') return await platform.request(o)
      const run = kind === 'upload' ? platform.upload : platform.download
      if (!run) throw new WxAuthError(0, 'unsupported', kind + ' is not supported on this platform')
      const r = await run.call(platform, o as never)
      // Upload answers come as text; the server's errors are JSON.
      if (kind === 'upload') r.data = parse(r.data)
      return r
    } catch (e) {
      if (sig && sig.aborted) throw aborted()
      if (e instanceof WxAuthError) throw e
      throw new WxAuthError(0, 'network_error', errMsg(e) || 'request failed', undefined, e)
    }
  }

  async function loginCode(): Promise<LoginCode> {
    let c: string | LoginCode
    try {
      c = await platform.login()
    } catch (e) {
      if (e instanceof WxAuthError) throw e
      throw new WxAuthError(0, 'wx_login_failed', errMsg(e) || 'login failed', undefined, e)
    }
    const r = typeof c === 'string' ? { code: c } : c || {}
    if (!r.code && !r.anonymousCode) throw new WxAuthError(0, 'wx_login_failed', 'login gave no code')
    return r
  }

  // A login nonce, or undefined where the platform has no secure random
  // source: the server then takes the code once, with no way to recover a
  // lost answer, which is safe, only less forgiving.
  async function nonce(): Promise<string | undefined> {
    let bytes: Uint8Array
    try {
      bytes = await (options.random ? options.random(NONCE_BYTES) : platform.randomBytes(NONCE_BYTES))
    } catch (e) {
      if (!options.random && e instanceof WxAuthError && e.error === 'no_random_source') return undefined
      if (e instanceof WxAuthError) throw e
      throw new WxAuthError(0, 'no_random_source', errMsg(e) || 'the random source failed', undefined, e)
    }
    if (!(bytes instanceof Uint8Array) || bytes.length !== NONCE_BYTES) {
      throw new WxAuthError(0, 'no_random_source', 'the random source gave no usable bytes')
    }
    return base64url(bytes)
  }

  function asLoginResult(r: HttpReply): LoginResult {
    if (r.statusCode < 200 || r.statusCode > 299) throw toError(r)
    const d = r.data as Partial<LoginResult> | undefined
    if (!d || typeof d.token !== 'string' || d.token === '' || typeof d.expires_in !== 'number') {
      throw new WxAuthError(r.statusCode, 'invalid_response', 'login reply without a token')
    }
    return d as LoginResult
  }

  const post = (path: string, data?: RequestData, token?: string) =>
    outgoing('request', { path, method: 'POST', data }, token)

  async function doLogin(): Promise<StoredToken> {
    const c = await loginCode()
    const body: AnyObject = {}
    if (c.code) body.code = c.code
    if (c.anonymousCode) body.anonymous_code = c.anonymousCode
    if (name !== 'wechat') body.platform = name
    // One nonce per code: the server gives a replayed code a token only with the same nonce.
    const n = await nonce()
    if (n) body.nonce = n
    let r: HttpReply
    try {
      r = await send(post(paths.login, body))
    } catch (e) {
      if (!n || !(e instanceof WxAuthError) || e.error !== 'network_error') throw e
      // The answer may have been lost after the platform took the code: the
      // same code with the same nonce gets this session's token once more.
      r = await send(post(paths.login, body))
    }
    const res = asLoginResult(r)
    const s = save(res)
    emit(listeners.login, { ...res, via: 'login' })
    return s
  }

  async function doRefresh(old: StoredToken): Promise<StoredToken> {
    let res: LoginResult
    try {
      res = asLoginResult(await send(post(paths.refresh, undefined, old.token)))
    } catch (e) {
      // A refusal stands; whatever else went wrong, a fresh login is the way back.
      if (isRefusal(e)) throw e
      return doLogin()
    }
    const s = save(res)
    emit(listeners.login, { ...res, via: 'refresh' })
    return s
  }

  // Starts a login (or a refresh of a still valid token) unless one is under way.
  function renew(old?: StoredToken): Promise<StoredToken> {
    if (!pending) {
      const p = old && now() < old.expiresAt ? doRefresh(old) : doLogin()
      // No finally(): it is ES2018, newer than some mini-program engines.
      pending = p.then(
        (s) => {
          pending = undefined
          return s
        },
        (e: unknown) => {
          pending = undefined
          if (e && typeof e === 'object') fromLogin.add(e)
          throw e
        },
      )
    }
    return pending
  }

  async function current(): Promise<string> {
    if (pending) return (await pending).token
    const s = load()
    if (s && now() < s.renewAt) return s.token
    return (await renew(s)).token
  }

  // The token to use instead of one the server refused.
  async function replacement(refused: string): Promise<string> {
    // Another request may already have logged in again since this one started.
    const s = load()
    if (s && s.token !== refused && now() < s.renewAt) return s.token
    if (s && s.token === refused) forget()
    return (await renew()).token
  }

  // Runs `body` as an abortable task: abort() (or the caller's signal)
  // rejects the task at once with `aborted` and aborts the platform's task
  // under way; a login under way goes on for the other callers.
  function task<T>(user: AbortSignalLike | undefined, body: (sig: AbortSignalLike) => Promise<T>): RequestTask<T> {
    const fs: (() => void)[] = []
    const sig = {
      aborted: false,
      addEventListener: (_: 'abort', f: () => void) => void fs.push(f),
    }
    const abort = () => {
      if (!sig.aborted) {
        sig.aborted = true
        emit(fs)
      }
    }
    const p = new Promise<T>((resolve, reject) => {
      fs.push(() => reject(aborted()))
      if (user) {
        if (user.aborted) return abort()
        user.addEventListener('abort', abort)
      }
      body(sig).then(resolve, reject)
    })
    if (user && user.removeEventListener) {
      const off = () => user.removeEventListener!('abort', abort)
      p.then(off, off)
    }
    return Object.assign(p, { abort })
  }

  // A request, upload or download with the token: one re-login and one
  // retry after a 401 the server says a new login cures.
  function exchange<T>(kind: OutgoingRequest['kind'], opts: SendOptions & AnyObject, done: (r: HttpReply) => T): RequestTask<T> {
    return task(opts.signal, async (sig) => {
      // Absolute URLs would send the token to whatever host they name.
      if (opts.path.charAt(0) !== '/') throw new TypeError('wxauth: path must start with "/"')
      try {
        let o = outgoing(kind, opts)
        let r: HttpReply
        if (opts.auth === false) r = await send(o, sig)
        else {
          const token = await current()
          r = await send((o = outgoing(kind, opts, token)), sig)
          if (curable(r, kind)) r = await send((o = outgoing(kind, opts, await replacement(token))), sig)
        }
        for (const f of after.slice()) r = (await f(r, o)) || r
        if (r.statusCode < 200 || r.statusCode > 299) throw toError(r, kind)
        return done(r)
      } catch (e) {
        return fail(e)
      }
    })
  }

  const full = (r: HttpReply): FullResponse => ({ statusCode: r.statusCode, header: r.header || {}, data: body(r) })

  function request(opts: RequestOptions): RequestTask<any> {
    return exchange('request', opts, (r) => (opts.fullResponse ? full(r) : body(r)))
  }

  function uploadFile(opts: UploadOptions): RequestTask<any> {
    return exchange('upload', opts, (r) => (opts.fullResponse ? full(r) : body(r)))
  }

  function downloadFile(opts: DownloadOptions): RequestTask<DownloadResult> {
    return exchange('download', opts, (r) => ({ statusCode: r.statusCode, header: r.header || {}, ...(r.data as AnyObject) }) as DownloadResult)
  }

  async function ensureToken(opts?: EnsureTokenOptions): Promise<string> {
    try {
      return opts && opts.refused ? await replacement(opts.refused) : await current()
    } catch (e) {
      return fail(e)
    }
  }

  function getToken(): string | null {
    const s = load()
    return s && now() < s.expiresAt ? s.token : null
  }

  async function login(): Promise<LoginResult> {
    const s = await renew().catch(fail)
    const r: LoginResult = {
      token: s.token,
      token_type: 'Bearer',
      expires_in: Math.max(0, Math.round((s.expiresAt - now()) / 1000)),
      openid: s.openid,
    }
    if (s.unionid) r.unionid = s.unionid
    return r
  }

  async function logout(): Promise<void> {
    if (pending) await pending.catch(() => undefined)
    const s = load()
    forget()
    if (!s) return
    emit(listeners.logout)
    const r = await send(post(paths.logout, undefined, s.token))
    // A token the server no longer knows is as logged out as it gets.
    if (r.statusCode === 401) return
    if (r.statusCode < 200 || r.statusCode > 299) throw toError(r)
  }

  function decrypt<T = Record<string, unknown>>(input: EncryptedData | EncryptedDataEvent): Promise<T> {
    const data: Partial<EncryptedData> = ('detail' in input && input.detail ? input.detail : input) as EncryptedData
    // Send only the four fields: a whole API result also carries userInfo and errMsg.
    const b: Partial<EncryptedData> = { encryptedData: data.encryptedData, iv: data.iv }
    if (data.rawData !== undefined) b.rawData = data.rawData
    if (data.signature !== undefined) b.signature = data.signature
    return request({ path: paths.decrypt, method: 'POST', data: b })
  }

  async function phoneOf(data: RequestData): Promise<PhoneInfo> {
    const header = { 'Content-Type': 'application/json' }
    const p = (await request({ path: paths.phone, method: 'POST', data, header })) as AnyObject
    // Alipay's answer is {phone_number, pure_phone_number, country_code}: give it WeChat's names too.
    if (p && p.phoneNumber === undefined && p.phone_number !== undefined) {
      p.phoneNumber = p.phone_number
      p.purePhoneNumber = p.pure_phone_number
      p.countryCode = p.country_code
    }
    return p as PhoneInfo
  }

  function phone(code: string): Promise<PhoneInfo> {
    return phoneOf({ code })
  }

  async function getPhoneNumber(e?: PhoneNumberEvent): Promise<PhoneInfo> {
    const d = (e && e.detail) || {}
    const denied = (m?: string, b?: unknown) =>
      new WxAuthError(0, 'phone_denied', m || d.errMsg || 'getPhoneNumber gave no number', undefined, b || d)
    if (name === 'alipay' && platform.phoneResponse) {
      let text: string
      try {
        text = await platform.phoneResponse()
      } catch (x) {
        throw denied(errMsg(x), x)
      }
      // Posted unchanged: the server checks Alipay's sign over this exact text.
      return phoneOf(text)
    }
    if (name !== 'wechat' && d.encryptedData && d.iv) return phoneOf({ encryptedData: d.encryptedData, iv: d.iv })
    if (typeof d.code === 'string' && d.code !== '') return phone(d.code)
    throw denied()
  }

  function session(): Promise<SessionInfo> {
    return request({ path: paths.session })
  }

  return {
    baseURL: base,
    platform: name,
    request,
    uploadFile,
    downloadFile,
    interceptors: {
      request: { use: (f) => subscribe(before, f) },
      response: { use: (f) => subscribe(after, f) },
    },
    login,
    logout,
    decrypt,
    phone,
    getPhoneNumber,
    session,
    token: () => load()?.token,
    ensureToken,
    getToken,
    onLogin: (f) => subscribe(listeners.login, f),
    onLogout: (f) => subscribe(listeners.logout, f),
    onAuthError: (f) => subscribe(listeners.error, f),
  } as Client
}

// Calls every listener; a listener's failure is the app's own, the client goes on.
function emit<A extends unknown[]>(list: ((...a: A) => void)[], ...a: A): void {
  for (const f of list.slice()) {
    try {
      f(...a)
    } catch {
      // ignored on purpose
    }
  }
}

/** The `errMsg` (or Alipay's `errorMessage`) of a platform failure object, or an Error's message. */
export function errMsg(e: unknown): string {
  if (e && typeof e === 'object') {
    const o = e as { errMsg?: unknown; errorMessage?: unknown; message?: unknown }
    const m = o.errMsg ?? o.errorMessage ?? o.message
    if (typeof m === 'string') return m
  }
  return typeof e === 'string' ? e : ''
}

function parse(d: unknown): unknown {
  if (typeof d !== 'string' || d === '') return d
  try {
    return JSON.parse(d)
  } catch {
    return d
  }
}

function field(data: unknown, f: string): string {
  const v = data && typeof data === 'object' ? (data as AnyObject)[f] : undefined
  return typeof v === 'string' ? v : ''
}

// A header's value, whatever the case of its name.
function headerOf(r: HttpReply, name: string): string {
  const h = r.header || {}
  for (const k in h) if (k.toLowerCase() === name) return String(h[k])
  return ''
}

// The error code of a 401 download (its body is a file): from WWW-Authenticate.
function downloadError(r: HttpReply): string {
  const m = /error="([^"]*)"/.exec(headerOf(r, 'www-authenticate'))
  return m ? m[1]! : 'missing_token'
}

// Whether a new login may cure this answer: a 401 invalid_token or
// missing_token that the app did not send as a refusal.
function curable(r: HttpReply, kind: string): boolean {
  if (r.statusCode !== 401) return false
  if (kind === 'download') return relogin.indexOf(downloadError(r)) >= 0
  return relogin.indexOf(field(r.data, 'error')) >= 0 && !field(r.data, 'refused_by')
}

function body(r: HttpReply): any {
  // A 204 (logout) has an empty body, which the request APIs give as ''.
  return r.statusCode === 204 || r.data === '' ? undefined : r.data
}

function toError(r: HttpReply, kind?: string): WxAuthError {
  const d = r.data as AnyObject | null | undefined
  if (kind === 'download' && r.statusCode === 401) {
    return new WxAuthError(401, downloadError(r), 'HTTP 401', undefined, r.data)
  }
  if (d && typeof d === 'object' && typeof d.error === 'string') {
    const ec = d.errcode
    return new WxAuthError(
      r.statusCode,
      d.error,
      typeof d.message === 'string' ? d.message : d.error,
      typeof ec === 'number' || typeof ec === 'string' ? ec : undefined,
      r.data,
      field(d, 'refused_by') || undefined,
    )
  }
  return new WxAuthError(r.statusCode, 'http_error', 'HTTP ' + r.statusCode, undefined, r.data)
}
