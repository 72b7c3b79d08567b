package platform

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/wxauth/caddy-wxauth/internal/apierr"
)

// Kind is what a platform's refusal means for the contract.
type Kind int

// The kinds of refusal.
const (
	// Other is any refusal without a meaning of its own, busy included:
	// upstream_error (502).
	Other Kind = iota
	// BadCode is a login code the platform does not take (invalid,
	// expired or used): invalid_code (401).
	BadCode
	// Misconfigured is the server's app on the platform being set up
	// wrong (app id, secret): platform_config (502), logged and counted.
	Misconfigured
	// Limited is the platform's rate limit: rate_limited (429).
	Limited
	// Risky is a user the platform blocks: risky_user (403).
	Risky
)

// configLogEvery is how often each config errcode is logged at ERROR at
// most: a wrong secret fails every login, the log says so once a minute.
const configLogEvery = time.Minute

// maxPlatformMsg bounds the platform's own message in the log.
const maxPlatformMsg = 256

// Refusal is a platform's answer that refused a call.
type Refusal struct {
	// Kind is what it means.
	Kind Kind
	// Code is the platform's own code: an int, or a string where the
	// platform's code is text; nil when it sent none.
	Code any
	// Fix says what to change for a Misconfigured refusal, naming the
	// platform block's field; it is the client's message.
	Fix string
	// Msg is the platform's own message, for the log only: it can name
	// the server's address.
	Msg string
	// Hide lists values to remove from Msg should the platform echo them
	// (the login codes), besides the app secret, which always is.
	Hide []string
}

// Fail maps a refusal onto the contract's error, carrying the platform's
// code. The refusal is logged at INFO; a Misconfigured one is also told to
// the config's ConfigError every time and logged at ERROR, with its fix, at
// most once a minute per code. api names the call in the log.
func (c *Client) Fail(log *zap.Logger, api string, r Refusal) *apierr.Error {
	code := codeText(r.Code)
	msg := c.scrub(r.Msg, r.Hide)
	if len(msg) > maxPlatformMsg {
		msg = msg[:maxPlatformMsg]
	}
	fields := []zap.Field{zap.String("platform", c.Name), zap.String("api", api),
		zap.String("errcode", code), zap.String("platform_message", msg)}
	if log == nil {
		log = zap.NewNop()
	}
	log.Info(c.Label+" refused the call", fields...)
	var e *apierr.Error
	switch r.Kind {
	case BadCode:
		e = apierr.New(http.StatusUnauthorized, "invalid_code", "the "+c.Label+" login code is invalid or was already used; log in on the mini-program again")
	case Misconfigured:
		if c.configErr != nil {
			c.configErr(code)
		}
		if c.logGate.Due(code) {
			log.Error(c.Label+" says the server's app is misconfigured", append(fields, zap.String("fix", r.Fix))...)
		}
		e = apierr.PlatformConfig(c.Name, r.Fix)
	case Limited:
		e = apierr.RateLimited(c.Label+"'s rate limit was reached; try again later", 60)
	case Risky:
		e = apierr.New(http.StatusForbidden, "risky_user", c.Label+" refused this user as high risk")
	default:
		e = c.Upstream("refused the call")
		if code != "" {
			e = e.WithMessage(c.Label + " refused the call with code " + code)
		}
	}
	switch v := r.Code.(type) {
	case int:
		e = e.WithErrCode(v)
	case string:
		if v != "" {
			e = e.WithErrCodeText(v)
		}
	}
	return e
}

// codeText is a platform code as text, for logs and metric labels.
func codeText(code any) string {
	switch v := code.(type) {
	case int:
		return strconv.Itoa(v)
	case string:
		return v
	}
	return ""
}

// scrub removes the app secret and hide from a platform's message, should
// the platform echo them.
func (c *Client) scrub(s string, hide []string) string {
	for _, v := range append([]string{c.Secret}, hide...) {
		if v != "" {
			s = strings.ReplaceAll(s, v, "[redacted]")
		}
	}
	return s
}
