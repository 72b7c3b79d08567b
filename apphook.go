package wxauth

import (
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"time"

	"github.com/wxauth/caddy-wxauth/internal/apierr"
	"github.com/wxauth/caddy-wxauth/internal/hook"
	"github.com/wxauth/caddy-wxauth/internal/users"

	"github.com/caddyserver/caddy/v2"
)

// Events the app hook can receive.
const (
	hookLogin   = "login"
	hookPhone   = "phone"
	hookDecrypt = "decrypt"
	hookLogout  = "logout"
)

// AppHook sends the app behind Caddy what only wxauth can verify: logins,
// phone numbers, decrypted data and logouts, signed the Standard Webhooks
// way. The app's JSON answer to login, phone and decrypt sets claims on
// the user (every session of the openid); a null value removes one.
type AppHook struct {
	// URL the events are POSTed to.
	URL string `json:"url"`
	// The signing secret, "whsec_<base64>" (Standard Webhooks form).
	// Required; {env.*} and {file.*} placeholders work. The same secret
	// signs the app's calls to app_api.
	Secret string `json:"secret"`
	// Events to send: any of login, phone, decrypt, logout. Default: login.
	Events []string `json:"events,omitempty"`
	// How long to wait for the app on each event. Default 3s.
	Timeout caddy.Duration `json:"timeout,omitempty"`
	// Header names for claims, e.g. {"uid": "X-User-Id"}. A claim without
	// an entry reaches upstream as X-Wx-<Claim>. Client copies of every
	// mapped header are removed like the X-Wx-* ones.
	ClaimHeaders map[string]string `json:"claim_headers,omitempty"`

	secret string   // Secret with its placeholders replaced
	key    hook.Key // checks the app's calls to app_api
	client *hook.Client
}

// protectedHeaders cannot carry claims: wxauth's own identity headers and
// headers the request needs (the client's copies are removed).
var protectedHeaders = map[string]bool{
	"X-Wx-Openid": true, "X-Wx-Unionid": true, "Authorization": true, "Cookie": true, "Host": true,
	"Content-Type": true, "Content-Length": true, "Transfer-Encoding": true, "Connection": true,
}

func (ah *AppHook) provision() error {
	u, err := url.Parse(ah.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("wxauth: app_hook %q is not an http(s) URL", ah.URL)
	}
	if ah.Secret == "" {
		return fmt.Errorf("wxauth: app_hook needs a secret (whsec_...), so the app can tell wxauth's events from forged ones")
	}
	if ah.key, err = hook.ParseSecret(ah.secret); err != nil {
		return fmt.Errorf("wxauth: app_hook secret: %v", err)
	}
	if len(ah.Events) == 0 {
		ah.Events = []string{hookLogin}
	}
	for _, e := range ah.Events {
		switch e {
		case hookLogin, hookPhone, hookDecrypt, hookLogout:
		default:
			return fmt.Errorf("wxauth: app_hook events: unknown event %q (want login, phone, decrypt or logout)", e)
		}
	}
	if ah.Timeout == 0 {
		ah.Timeout = caddy.Duration(3 * time.Second)
	}
	if ah.Timeout < 0 {
		return fmt.Errorf("wxauth: app_hook timeout must not be negative")
	}
	for claim, header := range ah.ClaimHeaders {
		if users.CheckClaims(map[string]any{claim: true}) != nil {
			return fmt.Errorf("wxauth: app_hook claim_header: claim %q cannot be mapped", claim)
		}
		if !users.PlainName(header) || protectedHeaders[textproto.CanonicalMIMEHeaderKey(header)] {
			return fmt.Errorf("wxauth: app_hook claim_header: %q cannot carry a claim", header)
		}
	}
	ah.client = hook.New(hook.Config{URL: ah.URL, Key: ah.key, Timeout: time.Duration(ah.Timeout), CheckClaims: users.CheckClaims})
	return nil
}

// wants reports whether the app asked for event.
func (ah *AppHook) wants(event string) bool {
	return ah != nil && slices.Contains(ah.Events, event)
}

func hookFailed() *apierr.Error {
	return apierr.New(http.StatusBadGateway, "hook_failed", "the app did not accept this event; nothing was handed out, try again")
}
