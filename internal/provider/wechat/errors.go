package wechat

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/wxauth/caddy-wxauth/internal/apierr"
	wx "github.com/wxauth/caddy-wxauth/wechat"
)

// mapError maps an error from the WeChat client to the contract's table.
func mapError(err error) *apierr.Error {
	var we *wx.Error
	if errors.As(err, &we) {
		var e *apierr.Error
		switch {
		case wx.IsInvalidCode(err) && we.API == "getuserphonenumber":
			e = apierr.New(http.StatusUnauthorized, "invalid_code", "the phone number code is invalid or was already used; ask the user to tap the getPhoneNumber button again")
		case wx.IsInvalidCode(err):
			e = apierr.New(http.StatusUnauthorized, "invalid_code", "the code is invalid or was already used; call wx.login again")
		case wx.IsRisky(err):
			e = apierr.New(http.StatusForbidden, "risky_user", "WeChat refused this user as high risk")
		case wx.IsRateLimited(err):
			e = apierr.New(http.StatusTooManyRequests, "rate_limited", "WeChat's rate limit was reached; try again later").WithHeader("Retry-After", "60")
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
