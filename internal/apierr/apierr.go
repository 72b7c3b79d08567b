// Package apierr is the contract's errors: immutable values answered to the
// client as one JSON shape, {"error", "message", "errcode"?, "refused_by"?}, with the
// status and the one header (Allow, Retry-After, WWW-Authenticate) each
// needs. Values are shared freely: every With* returns a copy.
package apierr

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
)

// Error is an error answered to the client as the contract's JSON body.
type Error struct {
	// Status is the HTTP status answered.
	Status int `json:"-"`
	// Code is the contract's error name (invalid_token, store_unavailable, ...).
	Code string `json:"error"`
	// Message says what went wrong and what to do, without any secret.
	Message string `json:"message"`
	// ErrCode is the upstream platform's own code, only where it sent one:
	// an int for most platforms, a string where the platform's code is
	// text (Alipay's sub_code, Baidu's error).
	ErrCode any `json:"errcode,omitempty"`
	// Platform names the platform whose answer this is, for errors that
	// say a platform's app is misconfigured (platform_config).
	Platform string `json:"platform,omitempty"`
	// RefusedBy names who refused on purpose ("app": the app hook), only
	// for such a refusal.
	RefusedBy string `json:"refused_by,omitempty"`

	header [2]string
}

// New returns an error with no header and no errcode.
func New(status int, code, message string) *Error {
	return &Error{Status: status, Code: code, Message: message}
}

// Error returns the code and message, for logs.
func (e *Error) Error() string { return e.Code + ": " + e.Message }

// WithHeader returns a copy of e answered with the header name: value.
func (e *Error) WithHeader(name, value string) *Error {
	c := *e
	c.header = [2]string{name, value}
	return &c
}

// WithErrCode returns a copy of e that reports the platform's code.
func (e *Error) WithErrCode(code int) *Error {
	c := *e
	c.ErrCode = code
	return &c
}

// WithErrCodeText returns a copy of e that reports a platform's code that
// is text, not a number.
func (e *Error) WithErrCodeText(code string) *Error {
	c := *e
	c.ErrCode = code
	return &c
}

// ErrCodeString is the platform's code as text ("" when none), for metric
// labels and logs.
func (e *Error) ErrCodeString() string {
	switch c := e.ErrCode.(type) {
	case int:
		return strconv.Itoa(c)
	case string:
		return c
	}
	return ""
}

// WithRefusedBy returns a copy of e that says who refused on purpose.
func (e *Error) WithRefusedBy(who string) *Error {
	c := *e
	c.RefusedBy = who
	return &c
}

// WithMessage returns a copy of e with another message.
func (e *Error) WithMessage(message string) *Error {
	c := *e
	c.Message = message
	return &c
}

// Header returns the header e is answered with, if any.
func (e *Error) Header() (name, value string) { return e.header[0], e.header[1] }

// The contract's errors that need no argument.
var (
	MissingToken = New(http.StatusUnauthorized, "missing_token", "this request needs a token from the login endpoint").
			WithHeader("WWW-Authenticate", `Bearer realm="wxauth"`)
	BodyTooLarge     = New(http.StatusRequestEntityTooLarge, "request_too_large", "request body is over the limit")
	StoreUnavailable = New(http.StatusServiceUnavailable, "store_unavailable", "the session store is not reachable; try again shortly").
				WithHeader("Retry-After", "1")
	Internal = New(http.StatusInternalServerError, "internal_error", "internal error")
)

// InvalidToken refuses a token, saying why.
func InvalidToken(reason string) *Error {
	return New(http.StatusUnauthorized, "invalid_token", reason).
		WithHeader("WWW-Authenticate", `Bearer realm="wxauth", error="invalid_token"`)
}

// InvalidRequest refuses a malformed request, saying what is wrong.
func InvalidRequest(msg string) *Error {
	return New(http.StatusBadRequest, "invalid_request", msg)
}

// PlatformConfig answers a platform's refusal that means the server's app
// on that platform is misconfigured (wrong app id, secret or key): the
// operator must fix it, the user can do nothing.
func PlatformConfig(platform, msg string) *Error {
	e := New(http.StatusBadGateway, "platform_config", msg)
	e.Platform = platform
	return e
}

// Unsupported refuses an operation the caller's platform does not have
// (Alipay has no session key to decrypt with).
func Unsupported(msg string) *Error {
	return New(http.StatusBadRequest, "unsupported", msg)
}

// Forbidden refuses a request the caller may not make, such as a browser
// logout sent from another site.
func Forbidden(msg string) *Error {
	return New(http.StatusForbidden, "forbidden", msg)
}

// MethodNotAllowed refuses a method, listing the allowed ones in Allow.
func MethodNotAllowed(allow string) *Error {
	return New(http.StatusMethodNotAllowed, "method_not_allowed", "use "+allow+" on this endpoint").WithHeader("Allow", allow)
}

// RateLimited refuses a request over a limit, with Retry-After in whole
// seconds (at least 1).
func RateLimited(msg string, retryAfterSecs int64) *Error {
	return New(http.StatusTooManyRequests, "rate_limited", msg).
		WithHeader("Retry-After", strconv.FormatInt(max(retryAfterSecs, 1), 10))
}

// As returns err as an *Error, or Internal for any other error: a bug,
// answered without details.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return Internal
}

// WriteJSON answers v as the contract's JSON, never cached.
func WriteJSON(w http.ResponseWriter, status int, v any) error {
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

// Write answers err as the contract's JSON error (see As).
func Write(w http.ResponseWriter, err error) error {
	e := As(err)
	if name, value := e.Header(); name != "" {
		w.Header().Set(name, value)
	}
	return WriteJSON(w, e.Status, e)
}
