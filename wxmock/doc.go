// Package wxmock provides the Caddy module http.handlers.wxmock: a stand-in for
// the WeChat server API for local development, demos and tests. Point wxauth's
// api_base at a site that runs wxmock and the whole mini-program login flow
// works without WeChat.
//
// It answers the four WeChat calls wxauth makes, and the subscribe message an
// app sends with wxauth's access_token, the way WeChat answers them (HTTP 200
// with an errcode; code2Session with Content-Type text/plain):
//
//	GET  /sns/jscode2session?appid=&secret=&js_code=&grant_type=authorization_code
//	POST /cgi-bin/stable_token
//	POST /wxa/business/getuserphonenumber?access_token=
//	GET  /wxa/checksession?access_token=&openid=&signature=&sig_method=hmac_sha256
//	POST /cgi-bin/message/subscribe/send?access_token=
//
// and WeChat's web login (official account OAuth inside WeChat, website QR
// login) at WeChat's own paths, so wxauth's open_base and api_base can both
// point at wxmock:
//
//	GET  /connect/oauth2/authorize?appid=&redirect_uri=&response_type=code&scope=&state=
//	GET  /connect/qrconnect?appid=&redirect_uri=&response_type=code&scope=snsapi_login&state=
//	GET  /sns/oauth2/access_token?appid=&secret=&code=&grant_type=authorization_code
//	GET  /sns/oauth2/refresh_token?appid=&grant_type=refresh_token&refresh_token=
//	GET  /sns/userinfo?access_token=&openid=&lang=
//
// The two pages show a form whose button (id "approve") approves as the
// user named in its input (id "user", "alice" unless changed), or denies
// (id "deny"). Added to the page's URL, user=<name> approves at once as that
// user (302 to redirect_uri?code=&state=), deny=1 denies as WeChat does
// (302 to redirect_uri?state=, without a code), and snapshot=1 makes the
// code one of a snapshot page's visitor (is_snapshotuser 1, a virtual
// openid). Codes work once, for 5 minutes, for the app id they were made
// for (40029, used: 40163); sns/userinfo refuses a snsapi_base token
// (48001), an unknown access_token (40001), an expired one (42001) and
// another openid (40003). unionid comes with snsapi_userinfo and
// snsapi_login, never with snsapi_base. The codes invalid, used, busy and
// limit fail as for code2Session. With web_app lines configured (web_app
// <app_id> [<app_secret>]), only
// their app ids (else 40013) and secrets (else 40125) are taken.
//
// and a few developer endpoints that play the mini-program's side:
//
//	GET|POST /wxmock/login?user=&session_key=&unionid=0  {"code"} like wx.login
//	GET  /wxmock/userinfo?user=&appid=                   encryptedData etc. like wx.getUserInfo
//	GET  /wxmock/phonecode?user=&phone=&cc=num           {"code"} like the getPhoneNumber button
//	POST /wxmock/expire_tokens                           every access_token issued so far expires
//	GET  /wxmock/stats                                   counts of WeChat API calls
//	POST /wxmock/reset                                   zero the counts, forget codes and tokens
//
// Every other request goes on to the next handler.
//
// These js_code values make code2Session fail on purpose (after the appid and
// secret checks):
//
//	js_code    answer
//	invalid    errcode 40029 "invalid code"
//	used       errcode 40163 "code been used"
//	risky      errcode 40226 "high risk user"
//	busy       errcode -1 "system error"
//	limit      errcode 45011 "api minute-quota reach limit"
//	html       HTTP 502 with an HTML page, as a failing gateway would
//	slow       waits 10s (or until the request ends), then errcode 40029
//	reset      the connection is closed without an answer
//	busyonce   errcode -1 and a valid login for user "busyonce", alternately,
//	           so a single retry succeeds
//
// With any_code <user> (development only, for WeChat DevTools), every other
// js_code that wxmock did not issue logs in as <user>, once per code.
//
// openid is derived from (app id, user) and unionid from the user alone, so
// they stay the same across logins and restarts, and one user has one
// unionid on the mini-program and every web app; every code carries a fresh
// session_key, which becomes the user's current one when the code is exchanged.
// State is kept in memory, per app_id, and survives config reloads.
package wxmock
