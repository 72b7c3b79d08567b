package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/wxauth/caddy-wxauth/internal/apierr"
	wx "github.com/wxauth/caddy-wxauth/wechat"
)

// webFixes says, for each WeChat errcode that means a web app is
// misconfigured, what to fix. Each is a format of two strings: the block's
// name and the console where its app is managed (see console).
var webFixes = map[int]string{
	40013: "WeChat refused the AppID of web_login %s (errcode 40013, invalid appid): set its app_id to the AppID shown in %s",
	40125: "WeChat refused the AppSecret of web_login %s (errcode 40125, invalid secret): set its app_secret to the current AppSecret " +
		"shown in %s (a reset ends the old one; look for a stray space or newline)",
	40164: "WeChat refused the server's IP address for web_login %s (errcode 40164, IP not whitelisted): " +
		"add the server's public egress address to the IP whitelist in %s",
	41002: "WeChat got no AppID from web_login %s (errcode 41002, appid missing): set its app_id (see %s)",
	41004: "WeChat got no AppSecret from web_login %s (errcode 41004, secret missing): set its app_secret (see %s)",
	48001: "WeChat refused this API to web_login %s (errcode 48001, api unauthorized): check in %s that app_id is an app " +
		"of the mode's kind with this scope's permission (oa: a verified service account with web authorization; qr: a website app)",
	89501: "WeChat holds calls from the server's IP address for web_login %s until an administrator confirms it (errcode 89501): " +
		"have an administrator confirm it, or add the address to the IP whitelist in %s",
	89503: "WeChat wants an administrator to confirm calls from the server's IP address for web_login %s (errcode 89503): " +
		"have an administrator confirm it, or add the address to the IP whitelist in %s",
	89506: "an administrator refused the server's IP address twice within 24 hours, so WeChat blocks web_login %s for 24 hours " +
		"(errcode 89506): add the address to the IP whitelist in %s, or call from another one",
	89507: "an administrator refused the server's IP address, so WeChat blocks web_login %s for 1 hour (errcode 89507): " +
		"add the address to the IP whitelist in %s, or call from another one",
}

// console names where the web app of a is managed, for the fix messages.
func console(a *App) string {
	if a.Mode == ModeQR {
		return "the website app's page of the open platform (open.weixin.qq.com, 管理中心 → 网站应用)"
	}
	return "the official account's settings (mp.weixin.qq.com, 设置与开发 → 基本配置)"
}

// mapError maps an error of a web login's WeChat calls to the contract's
// table, and reports whether it says the web app is misconfigured. The
// errcode is WeChat's own, only where WeChat sent one.
func mapError(a *App, err error) (*apierr.Error, bool) {
	var we *wx.Error
	if !errors.As(err, &we) {
		var ue *wx.UpstreamError
		if errors.As(err, &ue) && ue.Timeout || errors.Is(err, context.DeadlineExceeded) {
			return apierr.New(http.StatusBadGateway, "upstream_error", "WeChat did not answer in time; log in again"), false
		}
		return apierr.New(http.StatusBadGateway, "upstream_error", "WeChat could not be reached or gave an unusable answer; log in again"), false
	}
	if fix, ok := webFixes[we.Code]; ok {
		return apierr.New(http.StatusBadGateway, "wechat_config", fmt.Sprintf(fix, a.Name, console(a))).WithErrCode(we.Code), true
	}
	var e *apierr.Error
	switch {
	case wx.IsInvalidCode(err):
		e = apierr.New(http.StatusUnauthorized, "invalid_code", "the WeChat login code is invalid, expired or was already used; log in again")
	case wx.IsRateLimited(err):
		e = apierr.RateLimited("WeChat's rate limit was reached; try again later", 60)
	default:
		// WeChat's errmsg stays in the log: it can name the server's IP.
		e = apierr.New(http.StatusBadGateway, "upstream_error", "WeChat refused the login with errcode "+strconv.Itoa(we.Code))
	}
	return e.WithErrCode(we.Code), false
}
