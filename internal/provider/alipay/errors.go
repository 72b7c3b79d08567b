package alipay

import (
	"net/http"

	"github.com/wxauth/caddy-wxauth/internal/apierr"
)

// codeInvalid is the sub_code of an auth code that is wrong, was already
// used, has expired (3 minutes to 24 hours) or was made for another app:
// alipay.system.oauth.token documents this one sub_code for all of them.
const codeInvalid = "isv.code-invalid"

// configFixes says, for each sub_code that means the server's app on
// Alipay is misconfigured, what to fix. None holds a secret.
var configFixes = map[string]string{
	"isv.invalid-app-id": "Alipay refused the app id (sub_code isv.invalid-app-id): set app_id to the mini-program's APPID " +
		"(open.alipay.com → the mini-program → 开发设置); its auth codes work for that app only",
	"isv.missing-app-id": "Alipay got no app id (sub_code isv.missing-app-id): set app_id",
	"isv.invalid-signature": "Alipay could not verify the request with the app public key it holds (sub_code isv.invalid-signature): " +
		"private_key must be the private half of the 应用公钥 uploaded under 开发设置 → 接口加签方式",
	"isv.missing-signature-config": "Alipay has no key to verify the app's requests (sub_code isv.missing-signature-config): " +
		"set up 接口加签方式 in public key mode (RSA2) and upload the 应用公钥 of private_key",
	"isv.missing-signature-key": "Alipay has no app public key for the app (sub_code isv.missing-signature-key): " +
		"upload the 应用公钥 of private_key under 开发设置 → 接口加签方式",
	"isv.invalid-signature-type": "Alipay refused RSA2 for the app (sub_code isv.invalid-signature-type): " +
		"set 接口加签方式 to RSA2 in public key mode (certificate mode is not supported)",
	"isv.insufficient-isv-permissions": "Alipay refused alipay.system.oauth.token to the app (sub_code isv.insufficient-isv-permissions): " +
		"bind the 获取会员信息 product to the mini-program (开发 → 产品绑定)",
	"isv.invalid-timestamp": "Alipay refused the request time (sub_code isv.invalid-timestamp): set the server's clock right " +
		"(wxauth sends Beijing time)",
}

// tokenAnswer is the member of alipay.system.oauth.token's answer that
// wxauth reads; the access and refresh tokens are not read, kept or logged.
type tokenAnswer struct {
	Code    string `json:"code"`
	Msg     string `json:"msg"`
	SubCode string `json:"sub_code"`
	OpenID  string `json:"open_id"`
	UserID  string `json:"user_id"`
	UnionID string `json:"union_id"`
}

// refused reports whether the answer is a refusal: an error member, or a
// code other than 10000 (a success may carry no code at all).
func (a *tokenAnswer) refused(node string) bool {
	return node == errorNode || a.Code != "" && a.Code != "10000"
}

// errcode is the code the client is told: the sub_code, or the code when
// Alipay gave no sub_code.
func (a *tokenAnswer) errcode() string {
	if a.SubCode != "" {
		return a.SubCode
	}
	return a.Code
}

// mapRefusal maps a refusal of the login to the contract's errors.
func mapRefusal(a *tokenAnswer) *apierr.Error {
	code := a.errcode()
	if fix, ok := configFixes[a.SubCode]; ok {
		return apierr.PlatformConfig(Platform, fix).WithErrCodeText(code)
	}
	if a.SubCode == codeInvalid {
		return apierr.New(http.StatusUnauthorized, "invalid_code",
			"the auth code is invalid, was already used or has expired; call my.getAuthCode again").WithErrCodeText(code)
	}
	if code == "" {
		return upstream("Alipay refused the login without a code")
	}
	// Alipay's msg and sub_msg stay out of the answer: sub_msg can quote
	// the request.
	return apierr.New(http.StatusBadGateway, "upstream_error", "Alipay refused the login with "+code).WithErrCodeText(code)
}

// upstream is a 502 upstream_error without an errcode: Alipay gave none,
// or its answer could not be trusted.
func upstream(msg string) *apierr.Error {
	return apierr.New(http.StatusBadGateway, "upstream_error", msg)
}
