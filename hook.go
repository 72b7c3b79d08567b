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
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// LoginHook calls the app's backend on every login, before the token is
// issued, so the app can register the user (its "registOrUpdate") and add
// claims such as uid or roles to the token.
type LoginHook struct {
	// URL the hook POSTs {"openid","unionid","app_id","first_login"} to.
	// Its JSON object answer becomes extra token claims; 204 or an empty
	// body adds none. Any other answer fails the login with 502.
	URL string `json:"url"`
	// How long to wait for the hook. Default 3s.
	Timeout caddy.Duration `json:"timeout,omitempty"`
	// Header names for claims, e.g. {"uid": "X-User-Id"}. A claim without
	// an entry reaches upstream as X-Wx-<Claim>. Client copies of every
	// mapped header are removed like the X-Wx-* ones.
	ClaimHeaders map[string]string `json:"claim_headers,omitempty"`

	client *http.Client
}

// protectedHeaders cannot carry hook claims: wxauth's own identity headers
// and headers the request needs (the client's copies are removed).
var protectedHeaders = map[string]bool{
	"X-Wx-Openid": true, "X-Wx-Unionid": true, "Authorization": true, "Cookie": true, "Host": true,
	"Content-Type": true, "Content-Length": true, "Transfer-Encoding": true, "Connection": true,
}

// reservedClaims cannot be set by the hook: they carry wxauth's own identity.
var reservedClaims = map[string]bool{
	"iss": true, "sub": true, "aud": true, "exp": true, "nbf": true, "iat": true, "jti": true,
	"sid": true, "openid": true, "unionid": true, "id": true, "ext": true,
}

func (lh *LoginHook) provision() error {
	u, err := url.Parse(lh.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("wxauth: login_hook %q is not an http(s) URL", lh.URL)
	}
	if lh.Timeout == 0 {
		lh.Timeout = caddy.Duration(3 * time.Second)
	}
	for claim, header := range lh.ClaimHeaders {
		if !isPlainName(claim) || reservedClaims[strings.ToLower(claim)] {
			return fmt.Errorf("wxauth: login_hook claim_header: claim %q cannot be mapped", claim)
		}
		if !isPlainName(header) || protectedHeaders[textproto.CanonicalMIMEHeaderKey(header)] {
			return fmt.Errorf("wxauth: login_hook claim_header: %q cannot carry a claim", header)
		}
	}
	lh.client = &http.Client{
		Timeout: time.Duration(lh.Timeout),
		// The hook answers; it does not send the login elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return nil
}

// hookRequest is what the hook receives; it never holds a secret or session_key.
type hookRequest struct {
	OpenID     string `json:"openid"`
	UnionID    string `json:"unionid,omitempty"`
	AppID      string `json:"app_id"`
	FirstLogin bool   `json:"first_login"`
}

var errHook = errors.New("login hook failed")

// call runs the hook and returns the claims it added.
func (lh *LoginHook) call(ctx context.Context, req hookRequest) (map[string]any, error) {
	body, _ := json.Marshal(req)
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, lh.URL, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errHook, err)
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("User-Agent", "caddy-wxauth")
	resp, err := lh.client.Do(hr)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL may carry credentials; keep it out of logs
		}
		return nil, fmt.Errorf("%w: %v", errHook, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("%w: reading the answer: %v", errHook, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, fmt.Errorf("%w: status %d", errHook, resp.StatusCode)
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, nil
	}
	var claims map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&claims); err != nil || claims == nil {
		return nil, fmt.Errorf("%w: the answer is not a JSON object", errHook)
	}
	for k := range claims {
		// Lower-cased: header names are case-insensitive, so "Openid" would
		// otherwise become X-Wx-Openid.
		if reservedClaims[strings.ToLower(k)] || !isPlainName(k) {
			return nil, fmt.Errorf("%w: claim %q is reserved or not a valid name", errHook, k)
		}
	}
	return claims, nil
}

func hookFailed() *apiError {
	return newError(http.StatusBadGateway, "login_hook_failed", "the app's login hook did not accept this login; no session was made")
}
