package wxauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"time"

	"github.com/wxauth/caddy-wxauth/internal/apierr"

	"github.com/caddyserver/caddy/v2"
)

// Events the app hook can receive.
const (
	hookLogin   = "login"
	hookPhone   = "phone"
	hookDecrypt = "decrypt"
	hookLogout  = "logout"
)

// hookAnswerMax bounds the app's answer.
const hookAnswerMax = 64 << 10

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

	secret string // Secret with its placeholders replaced
	key    webhookKey
	client *http.Client
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
	if ah.key, err = parseWebhookSecret(ah.secret); err != nil {
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
		if checkClaims(map[string]any{claim: true}) != nil {
			return fmt.Errorf("wxauth: app_hook claim_header: claim %q cannot be mapped", claim)
		}
		if !isPlainName(header) || protectedHeaders[textproto.CanonicalMIMEHeaderKey(header)] {
			return fmt.Errorf("wxauth: app_hook claim_header: %q cannot carry a claim", header)
		}
	}
	ah.client = &http.Client{
		Timeout: time.Duration(ah.Timeout),
		// The app answers; it does not send events elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return nil
}

// wants reports whether the app asked for event.
func (ah *AppHook) wants(event string) bool {
	return ah != nil && slices.Contains(ah.Events, event)
}

// hookEvent is the body of an event. It never holds a secret, session_key
// or token.
type hookEvent struct {
	ID         string         `json:"id"`
	Event      string         `json:"event"`
	Time       int64          `json:"time"`
	AppID      string         `json:"app_id"`
	OpenID     string         `json:"openid"`
	UnionID    string         `json:"unionid,omitempty"`
	SID        string         `json:"sid"`
	FirstLogin *bool          `json:"first_login,omitempty"`
	Claims     map[string]any `json:"claims"`
	Phone      any            `json:"phone,omitempty"`
	Data       any            `json:"data,omitempty"`
}

var errHook = errors.New("app hook failed")

// send posts ev and returns the claims change the app answered (nil for
// none). Any answer but 2xx with nothing, or one JSON object of valid
// claims, each named once, is an error.
func (ah *AppHook) send(ctx context.Context, ev *hookEvent) (map[string]any, error) {
	body, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errHook, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ah.URL, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errHook, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "caddy-wxauth")
	req.Header.Set("X-Wxauth-Event", ev.Event)
	ah.key.setHeaders(req.Header, ev.ID, ev.Time, body)
	resp, err := ah.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL may carry credentials; keep it out of logs
		}
		return nil, fmt.Errorf("%w: %v", errHook, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, hookAnswerMax+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading the answer: %v", errHook, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, fmt.Errorf("%w: status %d", errHook, resp.StatusCode)
	}
	if len(raw) > hookAnswerMax {
		return nil, fmt.Errorf("%w: the answer is over %d bytes", errHook, hookAnswerMax)
	}
	if resp.StatusCode == http.StatusNoContent || len(bytes.TrimSpace(raw)) == 0 {
		return nil, nil
	}
	var claims map[string]any
	if err := decodeStrict(raw, &claims); err != nil {
		return nil, fmt.Errorf("%w: the answer: %v", errHook, err)
	}
	if err := checkClaims(claims); err != nil {
		return nil, fmt.Errorf("%w: %v", errHook, err)
	}
	return claims, nil
}

func hookFailed() *apierr.Error {
	return apierr.New(http.StatusBadGateway, "hook_failed", "the app did not accept this event; nothing was handed out, try again")
}
