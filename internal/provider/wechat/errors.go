package wechat

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/wxauth/caddy-wxauth/internal/apierr"
	wx "github.com/wxauth/caddy-wxauth/wechat"
)

// configFixes says, for each WeChat errcode that means the server is
// misconfigured, what to fix. None holds a secret.
var configFixes = map[int]string{
	40013: "WeChat refused the AppID (errcode 40013, invalid appid): set app_id to the mini-program's AppID, as shown on mp.weixin.qq.com under 开发管理 → 开发设置",
	40125: "WeChat refused the AppSecret (errcode 40125, invalid secret): set app_secret to the mini-program's current AppSecret (a reset ends the old one; look for a stray space or newline)",
	40164: "WeChat refused the server's IP address (errcode 40164, IP not whitelisted): add the server's public egress address to the IP whitelist (开发管理 → 开发设置 → IP白名单)",
	41002: "WeChat got no AppID (errcode 41002, appid missing): set app_id",
	41004: "WeChat got no AppSecret (errcode 41004, secret missing): set app_secret",
	48001: "WeChat refused this API to the app (errcode 48001, api unauthorized): check that app_id is a mini-program's AppID and that the mini-program has this API's permission",
	89501: "WeChat holds calls from the server's IP address until an administrator confirms it (errcode 89501): have an administrator of the mini-program confirm it, or add the address to the IP whitelist",
	89503: "WeChat wants an administrator to confirm calls from the server's IP address (errcode 89503): have an administrator of the mini-program confirm it, or add the address to the IP whitelist",
	89506: "an administrator refused calls from the server's IP address twice within 24 hours, so WeChat blocks it for 24 hours (errcode 89506): add the address to the IP whitelist, or call from another one",
	89507: "an administrator refused calls from the server's IP address, so WeChat blocks it for 1 hour (errcode 89507): add the address to the IP whitelist, or call from another one",
}

// configErrcode returns WeChat's errcode when err says the server is
// misconfigured (see configFixes).
func configErrcode(err error) (int, bool) {
	var we *wx.Error
	if !errors.As(err, &we) {
		return 0, false
	}
	_, ok := configFixes[we.Code]
	return we.Code, ok
}

// mapError maps an error from the WeChat client to the contract's table.
func mapError(err error) *apierr.Error {
	var we *wx.Error
	if errors.As(err, &we) {
		var e *apierr.Error
		fix, misconfigured := configFixes[we.Code]
		switch {
		case misconfigured:
			e = apierr.New(http.StatusBadGateway, "wechat_config", fix)
		case wx.IsInvalidCode(err) && we.API == "getuserphonenumber":
			e = apierr.New(http.StatusUnauthorized, "invalid_code", "the phone number code is invalid or was already used; ask the user to tap the getPhoneNumber button again")
		case wx.IsInvalidCode(err):
			e = apierr.New(http.StatusUnauthorized, "invalid_code", "the code is invalid or was already used; call wx.login again")
		case wx.IsRisky(err):
			e = apierr.New(http.StatusForbidden, "risky_user", "WeChat refused this user as high risk")
		case wx.IsRateLimited(err):
			e = apierr.RateLimited("WeChat's rate limit was reached; try again later", 60)
		default:
			// WeChat's errmsg stays in the log: it can name the server's IP.
			e = apierr.New(http.StatusBadGateway, "upstream_error", "WeChat refused the call with errcode "+strconv.Itoa(we.Code))
		}
		return e.WithErrCode(we.Code)
	}
	var ue *wx.UpstreamError
	if errors.As(err, &ue) && ue.Timeout || errors.Is(err, context.DeadlineExceeded) {
		// 502 as the contract says for a timeout, not 504.
		return apierr.New(http.StatusBadGateway, "upstream_error", "WeChat did not answer in time")
	}
	return apierr.New(http.StatusBadGateway, "upstream_error", "WeChat could not be reached or gave an unusable answer")
}

// decryptReason tells the client why its encryptedData did not decrypt,
// from the kind of the decrypt error; it never echoes the data or a key.
func decryptReason(err error) string {
	const stale = "; if the data came before the latest wx.login, fetch it again"
	switch {
	case errors.Is(err, wx.ErrBadIV):
		return `"iv" is not base64 of 16 bytes`
	case errors.Is(err, wx.ErrBadData):
		return `"encryptedData" is not base64 of whole 16-byte blocks`
	case errors.Is(err, wx.ErrBadPadding), errors.Is(err, wx.ErrNotJSON):
		return "the data does not decrypt with the user's newest session_key" + stale
	case errors.Is(err, wx.ErrWatermark):
		return "the data's watermark is missing or names another mini-program"
	case errors.Is(err, wx.ErrBadKey):
		return "the kept session_key is not usable; call wx.login and log in again"
	}
	return "the data does not decrypt" + stale
}
