package wxauth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/wxauth/caddy-wxauth/wechat"
)

// apiError is an error answered to the client as the contract's JSON body:
// {"error": code, "message": text, "errcode": WeChat's errcode when it gave one}.
type apiError struct {
	Status  int    `json:"-"`
	Code    string `json:"error"`
	Message string `json:"message"`
	ErrCode *int   `json:"errcode,omitempty"`

	// header, when set, is added to the response (Allow, Retry-After, WWW-Authenticate).
	header [2]string
}

// Error returns the code and message, for logs.
func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func newError(status int, code, message string) *apiError {
	return &apiError{Status: status, Code: code, Message: message}
}

func (e *apiError) with(name, value string) *apiError {
	e.header = [2]string{name, value}
	return e
}

func (e *apiError) withErrCode(code int) *apiError {
	e.ErrCode = &code
	return e
}

var (
	errMissingToken = newError(http.StatusUnauthorized, "missing_token", "this request needs a token from the login endpoint").
			with("WWW-Authenticate", `Bearer realm="wxauth"`)
	errBodyTooLarge = newError(http.StatusRequestEntityTooLarge, "request_too_large", "request body is over the limit")
)

func invalidToken(reason string) *apiError {
	return newError(http.StatusUnauthorized, "invalid_token", reason).
		with("WWW-Authenticate", `Bearer realm="wxauth", error="invalid_token"`)
}

func invalidRequest(msg string) *apiError {
	return newError(http.StatusBadRequest, "invalid_request", msg)
}

func methodNotAllowed(allow string) *apiError {
	return newError(http.StatusMethodNotAllowed, "method_not_allowed", "use "+allow+" on this endpoint").with("Allow", allow)
}

func storeUnavailable() *apiError {
	metrics.storeEndpoint.Inc()
	return newError(http.StatusServiceUnavailable, "store_unavailable", "the session store is not reachable; try again shortly").
		with("Retry-After", "1")
}

// wechatError maps an error from the WeChat client to the contract's table.
func wechatError(err error) *apiError {
	var we *wechat.Error
	if errors.As(err, &we) {
		var e *apiError
		switch {
		case wechat.IsInvalidCode(err) && we.API == "getuserphonenumber":
			e = newError(http.StatusUnauthorized, "invalid_code", "the phone number code is invalid or was already used; ask the user to tap the getPhoneNumber button again")
		case wechat.IsInvalidCode(err):
			e = newError(http.StatusUnauthorized, "invalid_code", "the code is invalid or was already used; call wx.login again")
		case wechat.IsRisky(err):
			e = newError(http.StatusForbidden, "risky_user", "WeChat refused this user as high risk")
		case wechat.IsRateLimited(err):
			e = newError(http.StatusTooManyRequests, "rate_limited", "WeChat's rate limit was reached; try again later").with("Retry-After", "60")
		default:
			// WeChat's errmsg stays in the log: it can name the server's IP.
			e = newError(http.StatusBadGateway, "upstream_error", "WeChat refused the call with errcode "+strconv.Itoa(we.Code))
		}
		return e.withErrCode(we.Code)
	}
	var ue *wechat.UpstreamError
	if errors.As(err, &ue) && ue.Timeout || errors.Is(err, context.DeadlineExceeded) {
		// 502 as the contract says for a timeout, not 504.
		return newError(http.StatusBadGateway, "upstream_error", "WeChat did not answer in time")
	}
	return newError(http.StatusBadGateway, "upstream_error", "WeChat could not be reached or gave an unusable answer")
}

// writeJSON answers v as the contract's JSON.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, err = w.Write(body)
	return err
}

// writeError answers an apiError; any other error becomes a 500 without details.
func writeError(w http.ResponseWriter, err error) error {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = newError(http.StatusInternalServerError, "internal_error", "internal error")
	}
	if ae.header[0] != "" {
		w.Header().Set(ae.header[0], ae.header[1])
	}
	return writeJSON(w, ae.Status, ae)
}
