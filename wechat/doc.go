// Package wechat is a small client of the WeChat server API used by
// mini-program logins (code2Session, stable_token, getuserphonenumber,
// checksession) and by web logins (sns/oauth2/access_token and sns/userinfo
// of official account OAuth and website QR login), plus the pure crypto
// helpers that go with it: decrypting encryptedData, checking rawData
// signatures and signing login states.
//
// It knows nothing of Caddy. Secrets (app secret, session_key, access_token,
// refresh_token, login codes) never appear in the errors it returns.
package wechat
