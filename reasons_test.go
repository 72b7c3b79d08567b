package wxauth

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/wxauth/caddy-wxauth/token"
	"github.com/wxauth/caddy-wxauth/wechat"
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

// TestDecryptReason gives each kind of decrypt failure its own message,
// from real decrypt errors, and never quotes the data or the key.
func TestDecryptReason(t *testing.T) {
	const app = "wxreason00000001"
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))
	other := base64.StdEncoding.EncodeToString([]byte("fedcba9876543210"))
	seal := func(plain string) (string, string) {
		t.Helper()
		data, iv, err := wechat.Encrypt(key, []byte(plain))
		if err != nil {
			t.Fatal(err)
		}
		return data, iv
	}
	good, iv := seal(`{"watermark":{"appid":"` + app + `"}}`)
	foreign, foreignIV := seal(`{"watermark":{"appid":"wxother000000001"}}`)
	notJSON, notJSONIV := seal("hello")
	tests := []struct {
		name, key, data, iv, want string
	}{
		{"bad iv", key, good, "AAAA", `"iv" is not base64 of 16 bytes`},
		{"bad data", key, "%%%", iv, `"encryptedData" is not base64`},
		{"other session_key", other, good, iv, "does not decrypt with the user's newest session_key; if the data came before the latest wx.login"},
		{"not JSON", key, notJSON, notJSONIV, "does not decrypt with the user's newest session_key"},
		{"foreign watermark", key, foreign, foreignIV, "names another mini-program"},
		{"bad kept key", "short", good, iv, "session_key is not usable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := wechat.DecryptUserData(app, tt.key, tt.data, tt.iv)
			if err == nil {
				t.Fatal("decrypted")
			}
			got := decryptReason(err)
			if !strings.Contains(got, tt.want) {
				t.Fatalf("decryptReason(%v) = %q, want it to say %q", err, got, tt.want)
			}
			for _, secret := range []string{tt.key, tt.data, key, other} {
				if len(secret) > 4 && strings.Contains(got, secret) {
					t.Fatalf("reason %q quotes %q", got, secret)
				}
			}
		})
	}
}
