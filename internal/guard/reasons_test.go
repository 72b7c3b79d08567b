package guard

import (
	"strings"
	"testing"
	"time"

	"github.com/wxauth/caddy-wxauth/token"
)

// TestTokenReason gives each kind of refused token its own message, from
// real Verify errors, and never quotes the token.
func TestTokenReason(t *testing.T) {
	const app = "wxreason00000001"
	newTokens := func(cfg token.Config, kid string) *token.Tokens {
		t.Helper()
		k, err := token.GenerateKey(token.HS256, kid)
		if err != nil {
			t.Fatal(err)
		}
		r, err := token.NewKeyring(k)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Audience == "" {
			cfg.Audience = app
		}
		tk, err := token.New(cfg, r)
		if err != nil {
			t.Fatal(err)
		}
		return tk
	}
	issue := func(tk *token.Tokens, at time.Time) string {
		t.Helper()
		s, _, err := tk.Issue("o-reason-openid", "", "sid-reason", nil, at)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	verifier := newTokens(token.Config{}, "k1")
	// sameKey signs with the verifier's key under another config.
	sameKey := func(cfg token.Config) *token.Tokens {
		t.Helper()
		tk, err := token.New(cfg, verifier.Keyring())
		if err != nil {
			t.Fatal(err)
		}
		return tk
	}
	now := time.Now()
	valid := issue(verifier, now)
	tests := []struct {
		name, token, want string
	}{
		{"expired", issue(verifier, now.Add(-3*time.Hour)), "the token has expired"},
		{"malformed", "not-a-token", "not a well-formed token"},
		{"malformed parts", "a.b.c", "not a well-formed token"},
		{"unknown key", issue(newTokens(token.Config{}, "k9"), now), "a key this server does not hold"},
		{"bad signature", issue(newTokens(token.Config{}, "k1"), now), "bad signature"},
		{"tampered", valid[:strings.LastIndexByte(valid, '.')+1] + "AAAA" + valid[strings.LastIndexByte(valid, '.')+5:], "bad signature"},
		{"other app", issue(sameKey(token.Config{Audience: "wxother000000001"}), now), "issued for another app"},
		{"other issuer", issue(sameKey(token.Config{Audience: app, Issuer: "someone"}), now), "missing or bad claims"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := verifier.Verify(tt.token)
			if err == nil {
				t.Fatal("token accepted")
			}
			got := tokenReason(err)
			if !strings.Contains(got, tt.want) {
				t.Fatalf("tokenReason(%v) = %q, want it to say %q", err, got, tt.want)
			}
			if strings.Contains(got, tt.token) {
				t.Fatalf("reason %q quotes the token", got)
			}
		})
	}
}
