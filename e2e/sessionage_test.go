package e2e

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// tokenTimes returns a token's iat and exp, read from its payload.
func tokenTimes(t *testing.T, tok string) (iat, exp int64) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct{ Iat, Exp int64 }
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c.Iat, c.Exp
}

// expiresIn checks that a login or refresh reply's expires_in is its
// token's lifetime, and returns it.
func expiresIn(t *testing.T, r reply) int64 {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	n, ok := r.json["expires_in"].(float64)
	iat, exp := tokenTimes(t, r.str("token"))
	if !ok || int64(n) != exp-iat {
		t.Fatalf("expires_in = %v, the token's exp - iat = %d", r.json["expires_in"], exp-iat)
	}
	return int64(n)
}

// expires_in is the token's own lifetime, the same figure every time.
func TestExpiresInIsTheTokensLifetime(t *testing.T) {
	h := start(t, "")
	// Early and late in a second: a rounded lifetime would differ.
	for i, frac := range []time.Duration{100 * time.Millisecond, 700 * time.Millisecond, 100 * time.Millisecond, 700 * time.Millisecond} {
		if !eventually(t, 3*time.Second, func() bool {
			f := time.Duration(time.Now().Nanosecond())
			return f >= frac && f < frac+200*time.Millisecond
		}) {
			t.Fatal("the clock did not reach the moment")
		}
		r := h.login("quin")
		if n := expiresIn(t, r); n != 7200 {
			t.Fatalf("login %d: expires_in = %d, want 7200", i, n)
		}
		if n := expiresIn(t, h.do(http.MethodPost, appURL+"/wx/refresh", nil, bearer(r.str("token"))...)); n != 7200 {
			t.Fatalf("refresh %d: expires_in = %d, want 7200", i, n)
		}
	}
}

// No refresh carries a session past login + session_max_age, and any
// unexpired token of the session may refresh.
func TestSessionMaxAgeCapsRefresh(t *testing.T) {
	h := start(t, "token_ttl 1m\n\t\t\tsession_max_age 1m")
	first := h.login("rosa")
	expiresIn(t, first)
	tok := first.str("token")
	iat, limit := tokenTimes(t, tok)
	// A refresh in a later second would carry the session past the limit.
	if !eventually(t, 3*time.Second, func() bool { return time.Now().Unix() > iat }) {
		t.Fatal("the clock did not move")
	}
	var last string
	for i := range 2 {
		r := h.do(http.MethodPost, appURL+"/wx/refresh", nil, bearer(tok)...) // the first token each time
		n := expiresIn(t, r)
		riat, rexp := tokenTimes(t, r.str("token"))
		if rexp > limit || riat <= iat || n >= 60 {
			t.Fatalf("refresh %d: iat %d exp %d (expires_in %d); the session ends at %d", i, riat, rexp, n, limit)
		}
		last = r.str("token")
	}
	// The refreshed token works, and refreshes, within the same limit.
	if r := h.do(http.MethodGet, appURL+"/x", nil, bearer(last)...); r.status != 200 {
		t.Fatalf("refreshed token: %d %s", r.status, r.body)
	}
	r := h.do(http.MethodPost, appURL+"/wx/refresh", nil, bearer(last)...)
	expiresIn(t, r)
	if _, rexp := tokenTimes(t, r.str("token")); rexp > limit {
		t.Fatalf("refresh of a refreshed token: exp %d past %d", rexp, limit)
	}
	s := h.do(http.MethodGet, appURL+"/wx/session", nil, bearer(last)...)
	if at, _ := s.json["expires_at"].(float64); int64(at) > limit {
		t.Fatalf("session expires_at %v past %d", s.json["expires_at"], limit)
	}
}
