import { isRefusal, WxAuthError } from './wxauth/core'

// Turns an error into a line for the screen; WxAuthError carries the server's code.
export function explain(e: unknown): string {
  // The app refused on purpose (a ban, say): its message is meant for the user.
  if (isRefusal(e)) return e.message
  if (e instanceof WxAuthError) {
    return `${e.status} ${e.error}: ${e.message}` + (e.errcode !== undefined ? ` (errcode ${e.errcode})` : '')
  }
  return String(e)
}
