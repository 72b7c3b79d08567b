// In-process fakes of wx, uni and Taro whose requests go to a handler instead
// of the network, for the unit tests. Each fake has its framework's calling
// convention: wx and uni take callbacks (uni also answers with a promise when
// none are given), Taro answers with promises. Answers arrive asynchronously.

import { randomBytes } from 'node:crypto'

import type { Client, ClientOptions } from '../src/core.js'
import { createTaroClient, type TaroLike } from '../src/taro.js'
import { createUniClient, type UniLike } from '../src/uni.js'
import { createWxClient, type WxLike } from '../src/wx.js'

/** The three adapters. */
export const kinds = ['wx', 'uni', 'taro'] as const
export type Kind = (typeof kinds)[number]

/** One request as the handler sees it. */
export interface Seen {
  method: string
  path: string
  auth?: string
  data?: unknown
}

/** An answer (delay in ms, default 5), or 'network' for a request that got none. */
export type Handler = (req: Seen) => { status: number; data?: unknown; delay?: number } | 'network'

/** What a fake saw and how it behaves. */
export interface FakeState {
  /** Calls of the login API. */
  logins: number
  /** When set, the login API fails. */
  loginFails: boolean
  seen: Seen[]
  storage: Map<string, unknown>
  /** Calls of the framework's own random API. */
  randoms: number
  /** When set, the framework's random API fails. */
  randomFails: boolean
}

/** A fake framework object and a way to build a client on it. */
export interface Fake {
  st: FakeState
  /** The fake `wx`, `uni` or `Taro` object. */
  host: unknown
  make(opts: Omit<ClientOptions, 'baseURL'> & { baseURL?: string }): Client
}

type Res = { statusCode: number; data: unknown; header: Record<string, string>; errMsg: string }
type Callbacks<T> = { success?: (r: T) => void; fail?: (e: { errMsg: string }) => void }

const later = (f: () => void, ms = 5) => void setTimeout(f, ms)

/** Builds a fake of `kind` whose requests go to `handle`. */
export function fake(kind: Kind, handle: Handler): Fake {
  const st: FakeState = { logins: 0, loginFails: false, seen: [], storage: new Map(), randoms: 0, randomFails: false }

  // The framework-neutral parts, as promises.
  const login = (): Promise<{ code: string; errMsg: string }> => {
    st.logins++
    const n = st.logins
    return new Promise((resolve, reject) =>
      later(() => (st.loginFails ? reject({ errMsg: 'login:fail' }) : resolve({ code: 'code' + n, errMsg: 'login:ok' }))),
    )
  }
  const request = (o: { url: string; method?: string; header?: Record<string, string>; data?: unknown }): Promise<Res> => {
    const h = o.header ?? {}
    const req: Seen = { method: o.method ?? 'GET', path: new URL(o.url).pathname, auth: h['Authorization'], data: o.data }
    st.seen.push(req)
    const r = handle(req)
    return new Promise((resolve, reject) =>
      later(
        () =>
          r === 'network'
            ? reject({ errMsg: 'request:fail connect refused' })
            : resolve({ statusCode: r.status, data: r.data ?? '', header: {}, errMsg: 'request:ok' }),
        r === 'network' ? undefined : r.delay,
      ),
    )
  }
  const random = (length: number): Promise<{ randomValues: ArrayBuffer; errMsg: string }> => {
    st.randoms++
    if (st.randomFails) return Promise.reject({ errMsg: 'getRandomValues:fail' })
    const b = randomBytes(length)
    return Promise.resolve({ randomValues: b.buffer.slice(b.byteOffset, b.byteOffset + b.length), errMsg: 'ok' })
  }
  const storage = {
    getStorageSync: (k: string): unknown => (st.storage.has(k) ? structuredClone(st.storage.get(k)) : ''),
    setStorageSync: (k: string, v: unknown): void => void st.storage.set(k, structuredClone(v)),
    removeStorageSync: (k: string): void => void st.storage.delete(k),
  }
  // Calls back when callbacks are given, as wx and uni do.
  const callback = <T>(p: Promise<T>, o: Callbacks<T>): void =>
    void p.then(
      (r) => o.success?.(r),
      (e: { errMsg: string }) => o.fail?.(e),
    )

  const base = 'https://app.example'
  if (kind === 'wx') {
    const host = {
      login: (o: Callbacks<{ code: string; errMsg: string }>) => callback(login(), o),
      request: (o: Parameters<typeof request>[0] & Callbacks<Res>) => (callback(request(o), o), {}),
      getRandomValues: (o: { length: number } & Callbacks<{ randomValues: ArrayBuffer }>) =>
        callback(random(o.length), o),
      ...storage,
    }
    const make: Fake['make'] = (opts) => createWxClient({ baseURL: base, ...opts, wx: host as WxLike })
    return { st, host, make }
  }
  if (kind === 'uni') {
    // uni answers with a promise when no callback is given; in a Vue 2 project
    // that promise resolves [err, res]. The client must not depend on it.
    const either = <T>(p: Promise<T>, o: Callbacks<T>) => {
      if (o.success || o.fail) return callback(p, o)
      return p.then(
        (r) => [null, r],
        (e) => [e, undefined],
      )
    }
    const host = {
      provider: [] as string[],
      login: (o: { provider?: string } & Callbacks<{ code: string; errMsg: string }>) => {
        host.provider.push(o.provider ?? '')
        return either(login(), o)
      },
      request: (o: Parameters<typeof request>[0] & Callbacks<Res>) => either(request(o), o),
      ...storage,
    }
    const make: Fake['make'] = (opts) => createUniClient({ baseURL: base, ...opts, uni: host as UniLike })
    return { st, host, make }
  }
  const host = {
    login: () => login(),
    request: (o: Parameters<typeof request>[0]) => Object.assign(request(o), { abort() {} }),
    getRandomValues: (o: { length: number }) => random(o.length),
    ...storage,
  }
  const make: Fake['make'] = (opts) => createTaroClient({ baseURL: base, ...opts, taro: host as TaroLike })
  return { st, host, make }
}
