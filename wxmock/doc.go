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
// <app_id> [<app_secret>]), only their app ids (else 40013) and secrets
// (else 40125) are taken.
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
//
// # Other platforms
//
// wxmock also stands in for the mini-program login of QQ, Douyin, Baidu and
// Kuaishou, each under its own prefix, so that wxauth's platform block points
// its api_base at http://host:port/<platform>:
//
//	GET  /qq/sns/jscode2session?appid=&secret=&js_code=&grant_type=authorization_code
//	POST /douyin/api/apps/v2/jscode2session       JSON {appid, secret, code, anonymous_code}
//	POST /baidu/oauth/jscode2sessionkey           form code, client_id (the AppKey), sk
//	POST /kuaishou/oauth2/mp/code2session         form app_id, app_secret, js_code
//
// Each answers as its platform does: QQ as WeChat (HTTP 200, errcode, text/plain);
// Douyin with HTTP 200, err_no, err_tips and data {session_key, openid,
// anonymous_openid, unionid}; Baidu with {openid, session_key}, a missing
// parameter as HTTP 200 {errno: 10010100, error, error_description} and a wrong
// app or code in its OAuth form, HTTP 400 {error: invalid_client|invalid_grant,
// error_description}; Kuaishou with HTTP 200 and result (1 for success, 100200101
// a wrong app, 100200105 a bad code). A platform block's app_id and app_secret,
// when set, are the only ones accepted; a platform without a block accepts any.
// These special codes (busyonce is WeChat's only) fail on every platform,
// each in its own codes:
//
//	code     QQ      Douyin    Baidu                      Kuaishou
//	invalid  40029   40018     400 invalid_grant          100200105
//	used     40029   40018     400 invalid_grant          100200105
//	busy     -1      -1        errno 5010004              100200500
//	limit    45011   28003018  errno 5010003              (none: a bad code)
//	html, slow, reset          as for WeChat
//
// and any_code applies to them too. Baidu's session keys are 24 bytes (AES-192),
// the others' 16. QQ and Douyin give unionids (the same as WeChat's for a user
// name: one person, one unionid); Baidu and Kuaishou give none. Douyin's
// anonymous_code alone answers only the device's anonymous_openid (no
// session_key); with a code, both.
//
// Developer endpoints, per platform:
//
//	GET|POST /<platform>/wxmock/login?user=&session_key=&unionid=0  {"code"}; Douyin with anonymous=1: {"anonymous_code"}
//	GET  /<platform>/wxmock/userinfo?user=&appid=  getUserInfo's answer: encryptedData, iv, rawData, signature
//	                                               (Baidu: userInfo, data, iv, and encryptedData = data)
//	GET  /<platform>/wxmock/phone?user=&phone=&appid=  getPhoneNumber's answer: encryptedData, iv
//
// sealed with the user's current session key as the platform seals them: QQ,
// Douyin and Kuaishou as WeChat (AES-128-CBC; a watermark naming the app id);
// Baidu with AES-192-CBC around 16 random bytes, the length, the data and the
// AppKey, padded to 32 bytes. The phone plaintext is WeChat's {phoneNumber,
// purePhoneNumber, countryCode, watermark}, Baidu's {"mobile"}.
//
// # Alipay
//
// Under /alipay/ it stands in for Alipay's open platform gateway (wxauth's
// platform alipay block takes api_base http://<wxmock>/alipay/gateway.do):
//
//	GET|POST /alipay/gateway.do        alipay.system.oauth.token (grant_type=authorization_code)
//	GET|POST /alipay/wxmock/login?user=&id=user_id   {"authCode"} like my.getAuthCode
//	GET  /alipay/wxmock/phone?phone=&refuse=auth|perm|busy&nosign=1
//	                                   the text my.getPhoneNumber gives (its res.response):
//	                                   {"response","sign","sign_type","encrypt_type","charset"}
//
// The gateway checks a request as Alipay's does: the common parameters
// (40001 isv.missing-*), app_id against the block's app_id when set
// (isv.invalid-app-id, unsigned, as for an app Alipay does not know), the
// method, sign_type RSA2, a Beijing-time timestamp within 15 minutes of
// wxmock's clock (isv.invalid-timestamp), and, when app_public_key is set,
// the RSA2 sign over the sorted parameters (isv.invalid-signature); its
// refusals come in error_response. It answers
// {"alipay_system_oauth_token_response":{...},"sign":"..."}, signed over
// the member's exact text with platform_private_key; without that key its
// answers carry no sign, and wxauth refuses an unsigned login. open_id is
// derived from (app id, user) like WeChat's openid; with id=user_id the
// answer carries a 2088... user_id (from the user alone) instead, as for
// apps that still get it. Auth codes work once, for 5 minutes, and
// any_code applies to them as to WeChat's codes. These codes fail on
// purpose:
//
//	code       answer
//	invalid    error_response 40002 isv.code-invalid (so does any used,
//	used       expired or unknown code)
//	busy       error_response 20000 isp.unknow-error
//	noperm     error_response 40006 isv.insufficient-isv-permissions
//	badsign    a login whose sign does not verify
//	html, slow, reset   as for WeChat
//
// The phone text is {"code":"10000","msg":"Success","mobile":phone} sealed
// with aes_key (AES-128-CBC, zero iv, PKCS#7, base64) and signed over the
// quoted ciphertext with platform_private_key, as Alipay seals it;
// refuse= seals Alipay's refusal instead (auth: 40003
// isv.invalid-auth-relations, perm: 40006 isv.insufficient-isv-permissions,
// busy: 20000 aop.unknow-error), nosign=1 leaves the sign out (an app that
// set up no signing). The sealed number names no user, so user= is not
// needed.
//
// wxmock makes no keys of its own. The demo uses the demo-only key files of
// examples/keys (see its README): wxmock's block takes
// app_public_key {file.examples/keys/alipay-app-public.pem},
// platform_private_key {file.examples/keys/alipay-platform-private.pem} and
// aes_key {file.examples/keys/alipay-aes.key}; wxauth's takes the other
// halves, alipay-app-private.pem and alipay-platform-public.pem, and the
// same aes_key.
package wxmock
