// wxauth.ts: a mini-program client for caddy-wxauth.
//
// Copy this one file into a mini-program project. It logs in with wx.login,
// keeps the token in local storage, sends it as `Authorization: Bearer`, and
// logs in again (once) when the server refuses the token. It has no
// dependencies; its types come from miniprogram-api-typings.

/** The parts of `wx` the client uses; the real `wx` fits, and tests can pass a stand-in. */
export type WxLike = Pick<
  WechatMiniprogram.Wx,
  'login' | 'request' | 'getStorageSync' | 'setStorageSync' | 'removeStorageSync'
>

/** Options of {@link createClient}. */
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
  /** The local storage key that holds the token. Default `wxauth_token`. */
  storageKey?: string
  /**
   * How long before its expiry a token is renewed (through the refresh
   * endpoint, which keeps the session_key) instead of used, in seconds.
   * Default 60; never more than half the token's lifetime.
   */
  renewBeforeSeconds?: number
  /** wx.request timeout in milliseconds. Default: wx's own (60 s). */
  timeout?: number
  /** The `wx` object. Default: the global `wx`. */
  wx?: WxLike
  /** The clock, in milliseconds since the epoch. Default `Date.now`; for tests. */
  now?: () => number
}

/** What {@link Client.request} sends. */
export interface RequestOptions {
  /** A path on baseURL, starting with `/`; may carry a query string. */
  path: string
  /** HTTP method. Default `GET`. */
  method?: NonNullable<WechatMiniprogram.RequestOption['method']>
  /** Body (JSON for objects) or, for GET, query parameters, as wx.request treats them. */
  data?: string | WechatMiniprogram.IAnyObject | ArrayBuffer
  /** Extra request headers. `Authorization` is set by the client. */
  header?: Record<string, string>
  /** Timeout in milliseconds for this request. */
  timeout?: number
  /** Send the token and handle 401 by logging in. Default true; false for public paths. */
  auth?: boolean
}

/** The reply of the login and refresh endpoints. */
export interface LoginResult {
  token: string
  token_type: 'Bearer'
  /** Lifetime of the token in seconds. */
  expires_in: number
  openid: string
  /** Present only when WeChat gave one. */
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

/** Input of {@link Client.decrypt}: a wx.getUserInfo result (or its parts) fits. */
export interface EncryptedData {
  encryptedData: string
  iv: string
  /** With `signature`, lets the server check that rawData came from WeChat. */
  rawData?: string
  signature?: string
}

/** WeChat's phone_info object, as the phone endpoint answers it. */
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
  /** False when WeChat no longer accepts the session_key: call login() before decrypting. */
  session_key_valid: boolean
}

/** The client returned by {@link createClient}. */
export interface Client {
  /** Sends an authenticated request and resolves with the reply body of a 2xx answer. */
  request<T = unknown>(opts: RequestOptions): Promise<T>
  /** Logs in with wx.login now, even when a token is stored. Concurrent calls share one login. */
  login(): Promise<LoginResult>
  /** Ends the session on the server (when there is one) and forgets the token. */
  logout(): Promise<void>
  /** Has the server decrypt wx open data with the session's session_key. */
  decrypt<T = Record<string, unknown>>(data: EncryptedData): Promise<T>
  /** Resolves a getPhoneNumber button code (`e.detail.code`) into the phone number. */
  phone(code: string): Promise<PhoneInfo>
  /** The server's view of the session, including whether the session_key still works. */
  session(): Promise<SessionInfo>
  /** The stored token, if any (it may be expired); undefined before login. */
  token(): string | undefined
}

/**
 * An error answer of caddy-wxauth (its JSON `error`, `message`, `errcode`), or
 * a failure on the way there: `network_error` (wx.request failed, status 0),
 * `wx_login_failed` (wx.login failed, status 0), `http_error` (a non-2xx
 * answer without the contract's body, e.g. from the upstream app) and
 * `invalid_response` (a login reply without a token).
 */
export class WxAuthError extends Error {
  /** HTTP status; 0 when no answer came. */
  readonly status: number
  /** The contract's error code, e.g. `invalid_token`, `invalid_code`, `rate_limited`. */
  readonly error: string
  /** WeChat's errcode, when WeChat gave one. */
  readonly errcode?: number
  /** The raw reply body, when there was one. */
  readonly body?: unknown

  constructor(status: number, error: string, message: string, errcode?: number, body?: unknown) {
    super(message || error)
    // Keeps instanceof working when the mini-program build compiles classes down to ES5.
    Object.setPrototypeOf(this, WxAuthError.prototype)
    this.name = 'WxAuthError'
    this.status = status
    this.error = error
    if (errcode !== undefined) this.errcode = errcode
    if (body !== undefined) this.body = body
  }
}

// The 401 codes that a new login can cure; invalid_code cannot.
const relogin = new Set(['invalid_token', 'missing_token'])

interface Reply {
  statusCode: number
  data: unknown
}

/** Creates a client. Make one per server and share it, so that logins are shared. */
export function createClient(options: ClientOptions): Client {
  const w: WxLike = options.wx ?? wx
  const now = options.now ?? Date.now
  const base = options.baseURL.replace(/\/+$/, '')
  const key = options.storageKey ?? 'wxauth_token'
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

  function load(): StoredToken | undefined {
    let v: unknown
    try {
      v = w.getStorageSync(key)
    } catch {
      return undefined
    }
    const t = v as Partial<StoredToken> | undefined
    if (!t || typeof t.token !== 'string' || t.token === '' || typeof t.expiresAt !== 'number') {
      return undefined
    }
    return { renewAt: t.expiresAt, openid: '', ...t } as StoredToken
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
    w.setStorageSync(key, s)
    return s
  }

  function forget(): void {
    try {
      w.removeStorageSync(key)
    } catch {
      // Nothing stored, nothing to forget.
    }
  }

  function send(opts: RequestOptions, token?: string): Promise<Reply> {
    const header: Record<string, string> = { ...opts.header }
    if (token) header['Authorization'] = 'Bearer ' + token
    return new Promise((resolve, reject) => {
      const req: WechatMiniprogram.RequestOption = {
        url: base + opts.path,
        method: opts.method ?? 'GET',
        header,
        dataType: 'json',
        // wx.request calls success for every HTTP status, fail only when no answer came.
        success: (res) => resolve({ statusCode: res.statusCode, data: res.data }),
        fail: (err) =>
          reject(new WxAuthError(0, 'network_error', err?.errMsg || 'request failed', undefined, err)),
      }
      if (opts.data !== undefined) req.data = opts.data
      const timeout = opts.timeout ?? options.timeout
      if (timeout !== undefined) req.timeout = timeout
      w.request(req)
    })
  }

  function wxLogin(): Promise<string> {
    return new Promise((resolve, reject) => {
      w.login({
        success: (res) => {
          if (res.code) resolve(res.code)
          else reject(new WxAuthError(0, 'wx_login_failed', res.errMsg || 'wx.login gave no code'))
        },
        fail: (err) => reject(new WxAuthError(0, 'wx_login_failed', err?.errMsg || 'wx.login failed')),
      })
    })
  }

  function asLoginResult(r: Reply): LoginResult {
    if (r.statusCode < 200 || r.statusCode > 299) throw toError(r)
    const d = r.data as Partial<LoginResult> | undefined
    if (!d || typeof d.token !== 'string' || d.token === '' || typeof d.expires_in !== 'number') {
      throw new WxAuthError(r.statusCode, 'invalid_response', 'login reply without a token')
    }
    return d as LoginResult
  }

  async function doLogin(): Promise<StoredToken> {
    const code = await wxLogin()
    const r = await send({ path: paths.login, method: 'POST', data: { code } })
    return save(asLoginResult(r))
  }

  async function doRefresh(old: StoredToken): Promise<StoredToken> {
    try {
      const r = await send({ path: paths.refresh, method: 'POST' }, old.token)
      return save(asLoginResult(r))
    } catch {
      // Whatever went wrong, a fresh login is the way back.
      return doLogin()
    }
  }

  // Starts a login (or a refresh of a still valid token) unless one is under way.
  function renew(old?: StoredToken): Promise<StoredToken> {
    if (!pending) {
      const p = old && now() < old.expiresAt ? doRefresh(old) : doLogin()
      pending = p.finally(() => {
        pending = undefined
      })
    }
    return pending
  }

  async function current(): Promise<string> {
    if (pending) return (await pending).token
    const s = load()
    if (s && now() < s.renewAt) return s.token
    return (await renew(s)).token
  }

  async function request<T = unknown>(opts: RequestOptions): Promise<T> {
    if (!opts.path.startsWith('/')) {
      // Absolute URLs would send the token to whatever host they name.
      throw new TypeError('wxauth: path must start with "/"')
    }
    if (opts.auth === false) return result<T>(await send(opts))

    const token = await current()
    let r = await send(opts, token)
    if (r.statusCode === 401 && relogin.has(errorCode(r.data))) {
      // Another request may already have logged in again since this one started.
      const s = load()
      let next: string
      if (s && s.token !== token && now() < s.renewAt) {
        next = s.token
      } else {
        if (s && s.token === token) forget()
        next = (await renew()).token
      }
      r = await send(opts, next) // exactly one retry
    }
    return result<T>(r)
  }

  async function login(): Promise<LoginResult> {
    const s = await renew()
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
    const r = await send({ path: paths.logout, method: 'POST' }, s.token)
    // A token the server no longer knows is as logged out as it gets.
    if (r.statusCode === 401) return
    if (r.statusCode < 200 || r.statusCode > 299) throw toError(r)
  }

  function decrypt<T = Record<string, unknown>>(data: EncryptedData): Promise<T> {
    // Send only the four fields: a whole wx.getUserInfo result also carries userInfo and errMsg.
    const body: EncryptedData = { encryptedData: data.encryptedData, iv: data.iv }
    if (data.rawData !== undefined) body.rawData = data.rawData
    if (data.signature !== undefined) body.signature = data.signature
    return request<T>({ path: paths.decrypt, method: 'POST', data: { ...body } })
  }

  function phone(code: string): Promise<PhoneInfo> {
    return request<PhoneInfo>({ path: paths.phone, method: 'POST', data: { code } })
  }

  function session(): Promise<SessionInfo> {
    return request<SessionInfo>({ path: paths.session })
  }

  function token(): string | undefined {
    return load()?.token
  }

  return { request, login, logout, decrypt, phone, session, token }
}

function errorCode(data: unknown): string {
  const e = (data as { error?: unknown } | null | undefined)?.error
  return typeof e === 'string' ? e : ''
}

function result<T>(r: Reply): T {
  if (r.statusCode >= 200 && r.statusCode <= 299) {
    // A 204 (logout) has an empty body, which wx gives as ''.
    return (r.statusCode === 204 || r.data === '' ? undefined : r.data) as T
  }
  throw toError(r)
}

function toError(r: Reply): WxAuthError {
  const d = r.data as { error?: unknown; message?: unknown; errcode?: unknown } | null | undefined
  if (d && typeof d === 'object' && typeof d.error === 'string') {
    return new WxAuthError(
      r.statusCode,
      d.error,
      typeof d.message === 'string' ? d.message : d.error,
      typeof d.errcode === 'number' ? d.errcode : undefined,
      r.data,
    )
  }
  return new WxAuthError(r.statusCode, 'http_error', 'HTTP ' + r.statusCode, undefined, r.data)
}
