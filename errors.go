package wxauth

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/wxauth/caddy-wxauth/internal/apierr"
	"github.com/wxauth/caddy-wxauth/wechat"
)

// wechatError maps an error from the WeChat client to the contract's table.
func wechatError(err error) *apierr.Error {
	var we *wechat.Error
	if errors.As(err, &we) {
		var e *apierr.Error
		switch {
		case wechat.IsInvalidCode(err) && we.API == "getuserphonenumber":
			e = apierr.New(http.StatusUnauthorized, "invalid_code", "the phone number code is invalid or was already used; ask the user to tap the getPhoneNumber button again")
		case wechat.IsInvalidCode(err):
			e = apierr.New(http.StatusUnauthorized, "invalid_code", "the code is invalid or was already used; call wx.login again")
		case wechat.IsRisky(err):
			e = apierr.New(http.StatusForbidden, "risky_user", "WeChat refused this user as high risk")
		case wechat.IsRateLimited(err):
			e = apierr.New(http.StatusTooManyRequests, "rate_limited", "WeChat's rate limit was reached; try again later").WithHeader("Retry-After", "60")
		default:
			// WeChat's errmsg stays in the log: it can name the server's IP.
			e = apierr.New(http.StatusBadGateway, "upstream_error", "WeChat refused the call with errcode "+strconv.Itoa(we.Code))
		}
		return e.WithErrCode(we.Code)
	}
	var ue *wechat.UpstreamError
	if errors.As(err, &ue) && ue.Timeout || errors.Is(err, context.DeadlineExceeded) {
		// 502 as the contract says for a timeout, not 504.
		return apierr.New(http.StatusBadGateway, "upstream_error", "WeChat did not answer in time")
	}
	return apierr.New(http.StatusBadGateway, "upstream_error", "WeChat could not be reached or gave an unusable answer")
}
