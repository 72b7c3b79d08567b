// Fakes of each mini-program host's API shape, for the platform tests: wx,
// qq, tt (Douyin), jd, swan (Baidu), ks (Kuaishou) take wx-style callbacks
// with their own login quirks (tt.login's anonymousCode, swan.getLoginCode);
// Alipay's my has its own: my.getAuthCode's authCode, my.request's
// headers/status and error 19 for a non-2xx status, storage by {key}, uploads
// with fileName and fileType, downloads with apFilePath, my.getPhoneNumber's
// response text. Requests go to an in-process handler; answers arrive
// asynchronously, and every task has abort().

import type { AnyObject } from '../src/core.js'

/** One request as the handler sees it. */
export interface Seen {
  kind: 'request' | 'upload' | 'download'
  method: string
  url: string
  path: string
  auth?: string
  header: Record<string, string>
  data?: unknown
  file?: { filePath: string; name: string; formData?: AnyObject; fileType?: string }
}

/** An answer (delay in ms, default 5), or 'network' for a request that got none. */
export type Handler = (req: Seen) => { status: number; data?: unknown; header?: AnyObject; delay?: number } | 'network'

/** The native hosts, by their global's name. */
export const hostNames = ['wx', 'qq', 'tt', 'jd', 'swan', 'my', 'ks'] as const
export type HostName = (typeof hostNames)[number]

/** The platform each global stands for. */
export const platformOf: Record<HostName, string> = {
  wx: 'wechat',
  qq: 'qq',
  tt: 'douyin',
  jd: 'jd',
  swan: 'baidu',
  my: 'alipay',
  ks: 'kuaishou',
}

/** What a fake saw. */
export interface HostState {
  /** Calls of the login API, by its name (login, getLoginCode, getAuthCode). */
  logins: string[]
  /** The options each login call got, without callbacks. */
  loginOptions: AnyObject[]
  seen: Seen[]
  storage: Map<string, unknown>
  /** Tasks aborted. */
  aborted: number
  /** Douyin: the user is not logged in to Douyin, so tt.login gives only an anonymousCode. */
  guest: boolean
  /** Alipay: what my.getPhoneNumber gives, or undefined for a refusal. */
  phoneResponse?: string
}

/** Builds a fake host `name` whose requests go to `handle`. */
export function fakeHost(name: HostName, handle: Handler): { st: HostState; host: AnyObject } {
  const st: HostState = { logins: [], loginOptions: [], seen: [], storage: new Map(), aborted: 0, guest: false }
  const later = (f: () => void, ms = 5) => setTimeout(f, ms)
  const strip = (o: AnyObject) => {
    const { success: _s, fail: _f, complete: _c, ...rest } = o
    return rest
  }
  const lower = (h: AnyObject | undefined) => {
    const out: Record<string, string> = {}
    for (const k in h) out[k] = String(h[k])
    return out
  }
  // Runs one request through the handler; done(status, data, header) or fail().
  const exchange = (
    seen: Seen,
    done: (r: { status: number; data: unknown; header: AnyObject }) => void,
    fail: (e: AnyObject) => void,
  ) => {
    st.seen.push(seen)
    const r = handle(seen)
    let cancelled = false
    const t = setTimeout(
      () => {
        if (cancelled) return
        if (r === 'network') fail(name === 'my' ? { error: 12, errorMessage: 'network error' } : { errMsg: 'request:fail connect refused' })
        else done({ status: r.status, data: r.data ?? '', header: r.header ?? {} })
      },
      r === 'network' ? 5 : (r.delay ?? 5),
    )
    return {
      abort() {
        st.aborted++
        cancelled = true
        clearTimeout(t)
        fail(name === 'my' ? { error: 9, errorMessage: 'abort' } : { errMsg: 'request:fail abort' })
      },
    }
  }
  const seenOf = (kind: Seen['kind'], o: AnyObject, header: AnyObject | undefined, data?: unknown): Seen => {
    const h = lower(header)
    const s: Seen = { kind, method: o.method ?? (kind === 'request' ? 'GET' : 'POST'), url: o.url, path: new URL(o.url).pathname, header: h, data }
    const auth = h['Authorization'] ?? h['authorization']
    if (auth !== undefined) s.auth = auth
    return s
  }

  if (name === 'my') {
    let n = 0
    const host = {
      getAuthCode(o: AnyObject) {
        st.logins.push('getAuthCode')
        st.loginOptions.push(strip(o))
        n++
        later(() => o.success({ authCode: 'mycode' + n }))
      },
      request(o: AnyObject) {
        // Alipay sends a string as it is: the handler sees the text.
        return exchange(
          seenOf('request', o, o.headers, o.data),
          (r) =>
            r.status >= 200 && r.status < 300
              ? o.success?.({ status: r.status, data: r.data, headers: r.header })
              : o.fail?.({ error: 19, errorMessage: 'http status error', status: r.status, data: r.data, headers: r.header }),
          (e) => o.fail?.(e),
        )
      },
      uploadFile(o: AnyObject) {
        const s = seenOf('upload', o, o.header)
        s.file = { filePath: o.filePath, name: o.fileName, formData: o.formData, fileType: o.fileType }
        return exchange(s, (r) => o.success?.({ statusCode: r.status, data: typeof r.data === 'string' ? r.data : JSON.stringify(r.data), header: r.header }), (e) => o.fail?.(e))
      },
      downloadFile(o: AnyObject) {
        return exchange(seenOf('download', o, o.header), (r) => o.success?.({ apFilePath: 'https://resource/apml' + st.seen.length, statusCode: r.status, header: r.header }), (e) => o.fail?.(e))
      },
      getPhoneNumber(o: AnyObject) {
        later(() => (st.phoneResponse !== undefined ? o.success({ response: st.phoneResponse }) : o.fail({ error: 11, errorMessage: '用户取消授权' })))
      },
      getStorageSync: ({ key }: { key: string }) => ({ data: st.storage.has(key) ? structuredClone(st.storage.get(key)) : null }),
      setStorageSync: ({ key, data }: { key: string; data: unknown }) => void st.storage.set(key, structuredClone(data)),
      removeStorageSync: ({ key }: { key: string }) => void st.storage.delete(key),
    }
    return { st, host }
  }

  let n = 0
  const login = (api: string) => (o: AnyObject) => {
    st.logins.push(api)
    st.loginOptions.push(strip(o))
    n++
    const res: AnyObject = { errMsg: api + ':ok' }
    if (!(name === 'tt' && st.guest)) res.code = name + 'code' + n
    if (name === 'tt') {
      res.anonymousCode = 'anon' + n
      res.isLogin = !st.guest
    }
    later(() => o.success?.(res))
  }
  const host: AnyObject = {
    login: login('login'),
    request(o: AnyObject) {
      return exchange(seenOf('request', o, o.header, o.data), (r) => o.success?.({ statusCode: r.status, data: r.data, header: r.header, errMsg: 'request:ok' }), (e) => o.fail?.(e))
    },
    uploadFile(o: AnyObject) {
      const s = seenOf('upload', o, o.header)
      s.file = { filePath: o.filePath, name: o.name, formData: o.formData }
      // uploadFile hands the body over as text.
      return exchange(s, (r) => o.success?.({ statusCode: r.status, data: typeof r.data === 'string' ? r.data : JSON.stringify(r.data), header: r.header }), (e) => o.fail?.(e))
    },
    downloadFile(o: AnyObject) {
      return exchange(
        seenOf('download', o, o.header),
        (r) => o.success?.({ statusCode: r.status, tempFilePath: 'http://tmp/file' + st.seen.length, ...(o.filePath ? { filePath: o.filePath } : {}), header: r.header }),
        (e) => o.fail?.(e),
      )
    },
    getStorageSync: (k: string): unknown => (st.storage.has(k) ? structuredClone(st.storage.get(k)) : ''),
    setStorageSync: (k: string, v: unknown): void => void st.storage.set(k, structuredClone(v)),
    removeStorageSync: (k: string): void => void st.storage.delete(k),
  }
  if (name === 'swan') host.getLoginCode = login('getLoginCode')
  return { st, host }
}

/** A server that issues token "t<code>" on login and accepts only tokens in `valid`. */
export function server(opts: { ttl?: number } = {}) {
  const valid = new Set<string>()
  const logins: AnyObject[] = []
  const handle: Handler = (req) => {
    const tok = req.auth?.replace(/^Bearer /, '')
    if (req.path === '/wx/login') {
      const d = (typeof req.data === 'string' ? JSON.parse(req.data) : req.data) as AnyObject
      logins.push(d)
      const t = 't' + (d.code ?? d.anonymous_code)
      valid.add(t)
      return { status: 200, data: { token: t, token_type: 'Bearer', expires_in: opts.ttl ?? 7200, openid: 'o-' + (d.platform ?? 'wechat') } }
    }
    if (req.path.startsWith('/public')) return { status: 200, data: { pub: true } }
    if (!tok) return { status: 401, data: { error: 'missing_token', message: 'no token' }, header: { 'WWW-Authenticate': 'Bearer realm="wxauth"' } }
    if (!valid.has(tok)) {
      return {
        status: 401,
        data: { error: 'invalid_token', message: 'bad token' },
        header: { 'WWW-Authenticate': 'Bearer realm="wxauth", error="invalid_token"' },
        delay: req.path === '/slow' ? 60 : 5,
      }
    }
    if (req.path === '/wx/phone') {
      return { status: 200, data: typeof req.data === 'string' ? { phone_number: '13800000000', pure_phone_number: '13800000000', country_code: '86', got: req.data } : { phoneNumber: '+86 139', purePhoneNumber: '139', countryCode: '86', got: req.data } }
    }
    if (req.path === '/banned') return { status: 403, data: { error: 'account_closed', message: 'Closed.', refused_by: 'app' } }
    return { status: 200, data: { ok: true, token: tok, path: req.path, file: req.file }, header: { 'X-Served': req.path } }
  }
  return { valid, handle, logins }
}
