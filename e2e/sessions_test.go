package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRefreshAndLogout(t *testing.T) {
	h := start(t, "")
	login := h.login("lena")
	tok := login.str("token")

	r := h.do(http.MethodPost, appURL+"/wx/refresh", nil, bearer(tok)...)
	if r.status != 200 || r.str("token") == "" || r.str("token") == tok || r.str("openid") != login.str("openid") || r.str("token_type") != "Bearer" {
		t.Fatalf("refresh: %d %s", r.status, r.body)
	}
	fresh := r.str("token")
	if sid(t, fresh) != sid(t, tok) {
		t.Fatal("refresh started a new session")
	}
	expectError(t, h.do(http.MethodGet, appURL+"/wx/refresh", nil, bearer(tok)...), 405, "method_not_allowed")
	expectError(t, h.do(http.MethodPost, appURL+"/wx/refresh", nil), 401, "missing_token")

	other := h.token("lena") // another session of the same user survives the logout
	if r := h.do(http.MethodPost, appURL+"/wx/logout", nil, bearer(tok)...); r.status != 204 {
		t.Fatalf("logout: %d %s", r.status, r.body)
	}
	for _, tk := range []string{tok, fresh} {
		expectError(t, h.do(http.MethodGet, appURL+"/x", nil, bearer(tk)...), 401, "invalid_token")
		expectError(t, h.do(http.MethodPost, appURL+"/wx/refresh", nil, bearer(tk)...), 401, "invalid_token")
	}
	if r := h.do(http.MethodGet, appURL+"/x", nil, bearer(other)...); r.status != 200 {
		t.Fatalf("the user's other session ended too: %d", r.status)
	}
}

// sid reads the session id claim of a token without verifying it.
func sid(t *testing.T, tok string) string {
	return claim(t, tok, 1, "sid")
}

func claim(t *testing.T, tok string, part int, name string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[part])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	s, _ := m[name].(string)
	return s
}

func TestSigningKeysAndRotation(t *testing.T) {
	const key2 = "c2Vjb25kLXNpZ25pbmcta2V5LTAxMjM0NTY3ODlhYmNkZWY="
	h := start(t, "signing_key "+testKey+" old")
	old := h.token("olga")
	if claim(t, old, 0, "kid") != "old" {
		t.Fatalf("kid = %q", claim(t, old, 0, "kid"))
	}
	// A new first key signs; the old one still verifies.
	h = start(t, "signing_key "+key2+" new\n signing_key "+testKey+" old")
	fresh := h.token("olga")
	if claim(t, fresh, 0, "kid") != "new" {
		t.Fatalf("kid = %q", claim(t, fresh, 0, "kid"))
	}
	for _, tk := range []string{old, fresh} {
		if r := h.do(http.MethodGet, appURL+"/x", nil, bearer(tk)...); r.status != 200 {
			t.Fatalf("token refused after adding a key: %d %s", r.status, r.body)
		}
	}
	// Dropping the old key ends its tokens.
	h = start(t, "signing_key "+key2+" new")
	expectError(t, h.do(http.MethodGet, appURL+"/x", nil, bearer(old)...), 401, "invalid_token")

	// Generated keys rotate and carry their period in kid.
	h = start(t, "key_rotation 15s\n token_ttl 1m")
	a := h.token("olga")
	rotated := eventually(t, 18*time.Second, func() bool {
		return claim(t, h.token("olga"), 0, "kid") != claim(t, a, 0, "kid")
	})
	if !rotated || claim(t, a, 0, "kid") == "" {
		t.Fatalf("keys did not rotate from %q", claim(t, a, 0, "kid"))
	}
	if r := h.do(http.MethodGet, appURL+"/x", nil, bearer(a)...); r.status != 200 {
		t.Fatalf("token of the previous key refused: %d %s", r.status, r.body)
	}
}

func TestJWKSInterop(t *testing.T) {
	h := start(t, "signing_alg EdDSA\n jwks_path /.well-known/jwks.json")
	tok := h.token("paul")
	if claim(t, tok, 0, "alg") != "EdDSA" {
		t.Fatalf("alg = %q", claim(t, tok, 0, "alg"))
	}
	r := h.do(http.MethodGet, appURL+"/.well-known/jwks.json", nil)
	keys, _ := r.json["keys"].([]any)
	if r.status != 200 || len(keys) == 0 || strings.Contains(string(r.body), `"d"`) {
		t.Fatalf("jwks: %d %s", r.status, r.body)
	}
	// An independent JWT implementation (jose, on Node) verifies the token
	// with nothing but the JWKS URL.
	dir, _ := filepath.Abs(repoPath("internal", "interop"))
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "jose")); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("internal/interop/node_modules missing; scripts/test.sh runs npm ci there")
		}
		t.Skip("run `npm ci` in internal/interop for the jose interop test")
	}
	out, err := exec.Command("node", filepath.Join(dir, "verify.mjs"), appURL+"/.well-known/jwks.json", tok, testApp).CombinedOutput()
	if err != nil {
		t.Fatalf("jose refused the token: %v\n%s", err, out)
	}
	var payload map[string]any
	if err := json.Unmarshal(out, &payload); err != nil || payload["sub"] != h.do(http.MethodGet, appURL+"/x", nil, bearer(tok)...).str("openid") {
		t.Fatalf("jose payload: %s", out)
	}
}

// Two wxauth handlers of one app in one config: a logout through one is
// refused by the other at once.
func TestTwoHandlersOneApp(t *testing.T) {
	wx := fmt.Sprintf("wxauth {\n\t\t\tapp_id %s\n\t\t\tapp_secret test-secret\n\t\t\tapi_base %s\n\t\t}", testApp, mockURL)
	cfg := strings.Replace(config(""), "\thandle {\n\t\twxauth", "\thandle_path /a/* {\n\t\t"+wx+"\n\t\trespond \"a {http.auth.user.id}\"\n\t}\n\thandle {\n\t\twxauth", 1)
	h := startConfig(t, cfg)
	tok := h.token("ben")
	if r := h.do(http.MethodGet, appURL+"/a/x", nil, bearer(tok)...); r.status != 200 || !strings.HasPrefix(string(r.body), "a o") {
		t.Fatalf("second handler: %d %s", r.status, r.body)
	}
	if r := h.do(http.MethodPost, appURL+"/wx/logout", nil, bearer(tok)...); r.status != 204 {
		t.Fatalf("logout: %d", r.status)
	}
	expectError(t, h.do(http.MethodGet, appURL+"/a/x", nil, bearer(tok)...), 401, "invalid_token")
}
