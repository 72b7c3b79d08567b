package wechat

import (
	"errors"
	"fmt"
)

// WeChat errcodes the callers of this package react to.
const (
	codeSystemBusy        = -1
	codeInvalidCredential = 40001 // access_token invalid or not the latest
	codeInvalidToken      = 40014 // access_token malformed
	codeInvalidCode       = 40029
	codeCodeUsed          = 40163
	codeRiskyUser         = 40226
	codeTokenExpired      = 42001
	codeOAuthCodeExpired  = 42003 // a web login code past its 5 minutes
	codeRateLimited       = 45011
	codeSessionKeyInvalid = 87009
)

// Error is a reply of the WeChat API that carried a non-zero errcode.
type Error struct {
	// API names the call, e.g. "jscode2session".
	API string
	// Code is WeChat's errcode; -1 means WeChat was busy (after retries).
	Code int
	// Msg is WeChat's errmsg.
	Msg string
}

// Error implements error.
func (e *Error) Error() string {
	return fmt.Sprintf("wechat %s: errcode %d: %s", e.API, e.Code, e.Msg)
}

// UpstreamError means WeChat could not be reached or did not answer with
// WeChat JSON: transport failures, timeouts, HTTP status not 2xx, empty,
// oversized, HTML or otherwise non-JSON bodies, replies missing required
// fields. Its message never contains the request URL or its query.
type UpstreamError struct {
	// API names the call, e.g. "jscode2session".
	API string
	// Timeout reports whether the call ran out of time.
	Timeout bool
	// Err is the cause, already stripped of URLs and secrets.
	Err error
}

// Error implements error.
func (e *UpstreamError) Error() string {
	if e.Timeout {
		return fmt.Sprintf("wechat %s: upstream timeout: %v", e.API, e.Err)
	}
	return fmt.Sprintf("wechat %s: upstream error: %v", e.API, e.Err)
}

// Unwrap returns the cause, so errors.Is(err, context.Canceled) works.
func (e *UpstreamError) Unwrap() error { return e.Err }

// errcodeIn reports whether err is an *Error with one of codes.
func errcodeIn(err error, codes ...int) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	for _, c := range codes {
		if e.Code == c {
			return true
		}
	}
	return false
}

// IsInvalidCode reports whether WeChat refused a login code as invalid
// (40029), already used (40163) or, for a web login code, expired (42003).
func IsInvalidCode(err error) bool {
	return errcodeIn(err, codeInvalidCode, codeCodeUsed, codeOAuthCodeExpired)
}

// IsRisky reports whether WeChat blocked a high-risk user (40226).
func IsRisky(err error) bool { return errcodeIn(err, codeRiskyUser) }

// IsRateLimited reports whether WeChat rate-limited the call (45011).
func IsRateLimited(err error) bool { return errcodeIn(err, codeRateLimited) }

// IsTokenInvalid reports whether WeChat refused the access_token as
// invalid, malformed or expired (40001, 40014, 42001); a fresh token helps.
func IsTokenInvalid(err error) bool {
	return errcodeIn(err, codeInvalidCredential, codeInvalidToken, codeTokenExpired)
}

// IsSessionKeyInvalid reports whether WeChat said the session_key is no
// longer valid (87009).
func IsSessionKeyInvalid(err error) bool { return errcodeIn(err, codeSessionKeyInvalid) }
