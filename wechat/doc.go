// Package wechat is a small client of the WeChat server API used by
// mini-program logins (code2Session, stable_token, getuserphonenumber,
// checksession) plus the pure crypto helpers that go with it: decrypting
// encryptedData, checking rawData signatures and signing login states.
//
// It knows nothing of Caddy. Secrets (app secret, session_key, access_token,
// login codes) never appear in the errors it returns.
package wechat
