// The client core: token storage, one shared login at a time, a nonce per
// login code, one retry after 401 invalid_token, refresh before expiry, and
// the phone and decrypt helpers. It knows nothing of wx, uni or Taro: each
// adapter (wx.ts, uni.ts, taro.ts) hands it a Platform.

/** HTTP methods that mini-program request APIs accept. */
export type Method = 'OPTIONS' | 'GET' | 'HEAD' | 'POST' | 'PUT' | 'DELETE' | 'TRACE' | 'CONNECT'

/** A JSON-like object, as the request APIs take for `data`. */
export type AnyObject = Record<string, any>

/** What a request may carry: a string, an object (JSON, or query parameters for GET) or bytes. */
export type RequestData = string | AnyObject | ArrayBuffer

/** One HTTP request, as the core hands it to a {@link Platform}. */
export interface HttpRequest {
  /** Absolute URL. */
  url: string
  method: Method
  header: Record<string, string>
  data?: RequestData
  /** Milliseconds; absent means the platform's default. */
  timeout?: number
}

/** The answer to an {@link HttpRequest}, for any HTTP status. */
export interface HttpReply {
  statusCode: number
  /** The body, parsed as JSON when it is JSON (as the request APIs do with `dataType: 'json'`). */
  data: unknown
}

/**
 * What the core needs from the framework. The adapters build one from `wx`,
 * `uni` or `Taro`; write your own to run the client somewhere else.
 */
export interface Platform {
  /** A fresh login code (wx.login and its kin). Rejects when none came. */
  login(): Promise<string>
  /**
   * Sends a request. Resolves for every HTTP status; rejects (preferably with
   * a {@link WxAuthError} `network_error`) only when no answer came.
   */
  request(req: HttpRequest): Promise<HttpReply>
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
   * (`wx.getRandomValues`, else `crypto.getRandomValues`). Never use
   * Math.random: the nonce is what keeps a leaked code from giving away a session.
   */
  random?: (n: number) => Uint8Array | Promise<Uint8Array>
  /** The clock, in milliseconds since the epoch. Default `Date.now`; for tests. */
  now?: () => number
}

/** What {@link Client.request} sends. */
export interface RequestOptions {
  /** A path on baseURL, starting with `/`; may carry a query string. */
  path: string
  /** HTTP method. Default `GET`. */
  method?: Method
  /** Body (JSON for objects) or, for GET, query parameters, as the request APIs treat them. */
  data?: RequestData
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

/** Encrypted open data, as wx.getUserInfo and similar APIs hand it over. */
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
    /** The one-time phone code (base library 2.21.2+); absent when the user declined. */
    code?: string
    errMsg?: string
  }
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

/** The client every adapter returns. */
export interface Client {
  /** Sends an authenticated request and resolves with the reply body of a 2xx answer. */
  request<T = unknown>(opts: RequestOptions): Promise<T>
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
   * Resolves a getPhoneNumber button code into the phone number. A
   * `hook_failed` (the app did not take the phone event) is not retried
   * here: calling again with the same code within 5 minutes is.
   */
  phone(code: string): Promise<PhoneInfo>
  /**
   * Handles the getPhoneNumber button's event: resolves its code into the
   * phone number, or rejects with `phone_denied` when the user declined.
   * After a `hook_failed`, the same event may be passed again (see {@link Client.phone}).
   */
  getPhoneNumber(e: PhoneNumberEvent): Promise<PhoneInfo>
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
 * `wx_login_failed` (the login API gave no code), `no_random_source` (no
 * secure random source for the nonce), `phone_denied` (the user declined the
 * phone number); or `http_error` (a non-2xx answer without the server's error
 * body, e.g. from the upstream app) and `invalid_response` (a login reply
 * without a token).
 */
export class WxAuthError extends Error {
  /** HTTP status; 0 when no answer came. */
  readonly status: number
  /** The error code, e.g. `invalid_token`, `invalid_code`, `rate_limited`, `hook_failed`, `network_error`. */
  readonly error: string
  /** WeChat's errcode, when WeChat gave one. */
  readonly errcode?: number
  /** The raw reply body, or the platform's failure object. */
  readonly body?: unknown
  /**
   * Who refused on purpose: `app` when your app_hook refused the login,
   * phone or decrypt event (`403` with the app's own `error` and `message`).
   * The client never retries or logs in again after a refusal; see {@link isRefusal}.
   */
  readonly refusedBy?: string

  constructor(status: number, error: string, message: string, errcode?: number, body?: unknown, refusedBy?: string) {
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
  throw new WxAuthError(
    0,
    'no_random_source',
    'no secure random source (wx.getRandomValues or crypto.getRandomValues); pass options.random',
  )
}

const b64url = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

/** Encodes bytes as unpadded base64url (no btoa in mini-programs). */
export function base64url(bytes: Uint8Array): string {
  let s = ''
  let i = 0
  for (; i + 2 < bytes.length; i += 3) {
    const v = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!
    s += b64url[v >> 18]! + b64url[(v >> 12) & 63]! + b64url[(v >> 6) & 63]! + b64url[v & 63]!
  }
  const rest = bytes.length - i
  if (rest === 1) {
    const v = bytes[i]! << 16
    s += b64url[v >> 18]! + b64url[(v >> 12) & 63]!
  } else if (rest === 2) {
    const v = (bytes[i]! << 16) | (bytes[i + 1]! << 8)
    s += b64url[v >> 18]! + b64url[(v >> 12) & 63]! + b64url[(v >> 6) & 63]!
  }
  return s
}

// The 401 codes that a new login can cure; invalid_code cannot.
const relogin = new Set(['invalid_token', 'missing_token'])

/**
 * Builds a client on a platform. The adapters (`createWxClient`,
 * `createUniClient`, `createTaroClient`) call this; call it yourself only
 * for a platform of your own. Make one client per server and share it, so
 * that logins are shared.
 */
export function createClient(platform: Platform, options: ClientOptions): Client {
  const now = options.now ?? Date.now
  const base = options.baseURL.replace(/\/+$/, '')
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
  const random = options.random ?? ((n: number) => platform.randomBytes(n))

  // The one login or refresh under way; every caller that needs a new token waits on it.
  let pending: Promise<StoredToken> | undefined

  const listeners = { login: [] as ((e: LoginEvent) => void)[], logout: [] as (() => void)[], error: [] as ((e: WxAuthError) => void)[] }
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

  function emit<A extends unknown[]>(list: ((...a: A) => void)[], ...a: A): void {
    for (const f of list.slice()) {
      try {
        f(...a)
      } catch {
        // A listener's failure is the app's own; the client goes on.
      }
    }
  }

  // Hands an auth failure to onAuthError once, then rethrows it.
  function fail(e: unknown): never {
    if (
      e instanceof WxAuthError &&
      !reported.has(e) &&
      (fromLogin.has(e) || isRefusal(e) || (e.status === 401 && relogin.has(e.error)))
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

  async function send(opts: RequestOptions, token?: string): Promise<HttpReply> {
    const header: Record<string, string> = { ...opts.header }
    if (token) header['Authorization'] = 'Bearer ' + token
    const req: HttpRequest = { url: base + opts.path, method: opts.method ?? 'GET', header }
    if (opts.data !== undefined) req.data = opts.data
    const timeout = opts.timeout ?? options.timeout
    if (timeout !== undefined) req.timeout = timeout
    try {
      return await platform.request(req)
    } catch (e) {
      if (e instanceof WxAuthError) throw e
      throw new WxAuthError(0, 'network_error', errMsg(e) || 'request failed', undefined, e)
    }
  }

  async function loginCode(): Promise<string> {
    let code: unknown
    try {
      code = await platform.login()
    } catch (e) {
      if (e instanceof WxAuthError) throw e
      throw new WxAuthError(0, 'wx_login_failed', errMsg(e) || 'login failed', undefined, e)
    }
    if (typeof code !== 'string' || code === '') throw new WxAuthError(0, 'wx_login_failed', 'login gave no code')
    return code
  }

  async function nonce(): Promise<string> {
    let bytes: Uint8Array
    try {
      bytes = await random(NONCE_BYTES)
    } catch (e) {
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

  async function doLogin(): Promise<StoredToken> {
    const code = await loginCode()
    // One nonce per code: the server gives a replayed code a token only with the same nonce.
    const login: RequestOptions = { path: paths.login, method: 'POST', data: { code, nonce: await nonce() } }
    let r: HttpReply
    try {
      r = await send(login)
    } catch (e) {
      if (!(e instanceof WxAuthError) || e.error !== 'network_error') throw e
      // The answer may have been lost after WeChat took the code: the same
      // code with the same nonce gets this session's token once more.
      r = await send(login)
    }
    const res = asLoginResult(r)
    const s = save(res)
    emit(listeners.login, { ...res, via: 'login' })
    return s
  }

  async function doRefresh(old: StoredToken): Promise<StoredToken> {
    let res: LoginResult
    try {
      res = asLoginResult(await send({ path: paths.refresh, method: 'POST' }, old.token))
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
      const done = () => {
        pending = undefined
      }
      pending = p.then(
        (s) => {
          done()
          return s
        },
        (e: unknown) => {
          done()
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

  async function request<T = unknown>(opts: RequestOptions): Promise<T> {
    if (!opts.path.startsWith('/')) {
      // Absolute URLs would send the token to whatever host they name.
      throw new TypeError('wxauth: path must start with "/"')
    }
    if (opts.auth === false) return result<T>(await send(opts))

    try {
      const token = await current()
      let r = await send(opts, token)
      if (r.statusCode === 401 && relogin.has(errorCode(r.data)) && !refusedBy(r.data)) {
        r = await send(opts, await replacement(token)) // exactly one retry
      }
      return result<T>(r)
    } catch (e) {
      return fail(e)
    }
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
    const r = await send({ path: paths.logout, method: 'POST' }, s.token)
    // A token the server no longer knows is as logged out as it gets.
    if (r.statusCode === 401) return
    if (r.statusCode < 200 || r.statusCode > 299) throw toError(r)
  }

  function decrypt<T = Record<string, unknown>>(input: EncryptedData | EncryptedDataEvent): Promise<T> {
    const data: Partial<EncryptedData> = ('detail' in input && input.detail ? input.detail : input) as EncryptedData
    // Send only the four fields: a whole wx.getUserInfo result also carries userInfo and errMsg.
    const body: Partial<EncryptedData> = { encryptedData: data.encryptedData, iv: data.iv }
    if (data.rawData !== undefined) body.rawData = data.rawData
    if (data.signature !== undefined) body.signature = data.signature
    return request<T>({ path: paths.decrypt, method: 'POST', data: body })
  }

  function phone(code: string): Promise<PhoneInfo> {
    return request<PhoneInfo>({ path: paths.phone, method: 'POST', data: { code } })
  }

  async function getPhoneNumber(e: PhoneNumberEvent): Promise<PhoneInfo> {
    const d = e && e.detail
    if (!d || typeof d.code !== 'string' || d.code === '') {
      throw new WxAuthError(0, 'phone_denied', (d && d.errMsg) || 'getPhoneNumber gave no code', undefined, d)
    }
    return phone(d.code)
  }

  function session(): Promise<SessionInfo> {
    return request<SessionInfo>({ path: paths.session })
  }

  function token(): string | undefined {
    return load()?.token
  }

  return {
    request,
    login,
    logout,
    decrypt,
    phone,
    getPhoneNumber,
    session,
    token,
    ensureToken,
    getToken,
    onLogin: (f) => subscribe(listeners.login, f),
    onLogout: (f) => subscribe(listeners.logout, f),
    onAuthError: (f) => subscribe(listeners.error, f),
  }
}

/** The `errMsg` of a platform failure object, or an Error's message. */
export function errMsg(e: unknown): string {
  if (e && typeof e === 'object') {
    const m = (e as { errMsg?: unknown; message?: unknown }).errMsg ?? (e as { message?: unknown }).message
    if (typeof m === 'string') return m
  }
  return typeof e === 'string' ? e : ''
}

function errorCode(data: unknown): string {
  const e = (data as { error?: unknown } | null | undefined)?.error
  return typeof e === 'string' ? e : ''
}

function refusedBy(data: unknown): string {
  const r = (data as { refused_by?: unknown } | null | undefined)?.refused_by
  return typeof r === 'string' ? r : ''
}

function result<T>(r: HttpReply): T {
  if (r.statusCode >= 200 && r.statusCode <= 299) {
    // A 204 (logout) has an empty body, which the request APIs give as ''.
    return (r.statusCode === 204 || r.data === '' ? undefined : r.data) as T
  }
  throw toError(r)
}

function toError(r: HttpReply): WxAuthError {
  const d = r.data as { error?: unknown; message?: unknown; errcode?: unknown } | null | undefined
  if (d && typeof d === 'object' && typeof d.error === 'string') {
    return new WxAuthError(
      r.statusCode,
      d.error,
      typeof d.message === 'string' ? d.message : d.error,
      typeof d.errcode === 'number' ? d.errcode : undefined,
      r.data,
      refusedBy(d) || undefined,
    )
  }
  return new WxAuthError(r.statusCode, 'http_error', 'HTTP ' + r.statusCode, undefined, r.data)
}
