package guard

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/net/http/httpguts"

	"github.com/wxauth/caddy-wxauth/internal/users"
	"github.com/wxauth/caddy-wxauth/token"
)

// A claim stored before values were checked is left out of the headers,
// with a warning naming it; the others still go.
func TestNewViewSkipsBadStoredClaims(t *testing.T) {
	core, logs := observer.New(zapcore.WarnLevel)
	claims := map[string]any{
		"uid": json.Number("7"), "vip": true, "tier": "gold",
		"note": "a\r\nX-Admin: 1", "roles": []any{"buyer", "vip"}, "addr": map[string]any{"city": "x"},
		"bio": strings.Repeat("x", 2000),
	}
	v := newView(faceID{openid: "o1", unionid: "u1", platform: "wechat", surface: "oa", appID: "wxapp"}, claims, map[string]string{"tier": "X-Member-Tier"}, zap.New(core))
	want := []headerValue{
		{"X-Wx-Openid", "o1"}, {"X-Wx-Platform", "wechat"}, {"X-Wx-Surface", "oa"}, {"X-Wx-Appid", "wxapp"}, {"X-Wx-Unionid", "u1"},
		{"X-Member-Tier", "gold"}, {"X-Wx-Uid", "7"}, {"X-Wx-Vip", "true"},
	}
	if len(v.headers) != len(want) {
		t.Fatalf("headers %v, want %v", v.headers, want)
	}
	for i := range want {
		if v.headers[i] != want[i] {
			t.Fatalf("headers %v, want %v", v.headers, want)
		}
	}
	for _, k := range []string{"note", "roles", "addr", "bio"} {
		if _, ok := v.lookup("http.auth.user." + k); ok {
			t.Errorf("placeholder of the bad claim %s is set", k)
		}
	}
	entries := logs.All()
	if len(entries) != 1 || entries[0].Level != zapcore.WarnLevel {
		t.Fatalf("want one warning, got %v", entries)
	}
	names, _ := entries[0].ContextMap()["claims"].([]any)
	if got, _ := json.Marshal(names); string(got) != `["addr","bio","note","roles"]` {
		t.Fatalf("warning names %s", got)
	}
	if strings.Contains(entries[0].Message+string(mustJSON(t, entries[0].ContextMap())), "X-Admin") {
		t.Fatal("the warning holds a claim's value")
	}

	logs.TakeAll()
	newView(faceID{openid: "o1"}, map[string]any{"uid": "7"}, nil, zap.New(core))
	if logs.Len() != 0 {
		t.Fatalf("a warning for good claims: %v", logs.All())
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A new token's ext carries only claims fit for a header.
func TestTokenClaims(t *testing.T) {
	good := map[string]any{"uid": json.Number("7"), "tier": "gold"}
	if got := TokenClaims(good); len(got) != 2 {
		t.Fatalf("good claims changed: %v", got)
	}
	mixed := map[string]any{"uid": json.Number("7"), "note": "a\nb", "roles": []any{"x"}}
	if got := TokenClaims(mixed); len(got) != 1 || got["uid"] != json.Number("7") {
		t.Fatalf("TokenClaims(mixed) = %v", got)
	}
	if len(mixed) != 3 {
		t.Fatal("the user's claims were changed in place")
	}
	if got := TokenClaims(map[string]any{"roles": []any{"x"}}); got != nil {
		t.Fatalf("only bad claims: %v, want nil", got)
	}
	if got := TokenClaims(nil); got != nil {
		t.Fatalf("TokenClaims(nil) = %v", got)
	}
	// Stored before the name was reserved: never handed on in a token.
	if got := TokenClaims(map[string]any{"uid": "7", "platform": "qq", "surface": "oa"}); len(got) != 1 || got["uid"] != "7" {
		t.Fatalf("reserved names in a token: %v", got)
	}
}

// FuzzClaimValue: any value the app may send is either refused or gives a
// valid header value of at most 1 KiB, and building the view never panics.
func FuzzClaimValue(f *testing.F) {
	for _, s := range []string{`"gold"`, `42`, `true`, `null`, `"a\r\nb"`, `["a"]`, `{"a":1}`, `"\u007f"`, `1e999`, `"` + strings.Repeat("x", 1024) + `"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		var claims map[string]any
		dec := json.NewDecoder(strings.NewReader(`{"c":` + value + `}`))
		dec.UseNumber() // as the app's calls and answers are read
		if dec.Decode(&claims) != nil || claims == nil {
			claims = map[string]any{"c": value} // not JSON: try it as a string
		}
		accepted := users.CheckClaims(claims) == nil
		v := newView(faceID{openid: "o1"}, claims, nil, zap.NewNop())
		for _, h := range v.headers {
			if !httpguts.ValidHeaderFieldValue(h.value) || len(h.value) > users.ClaimValueMax {
				t.Fatalf("header %s: %q is not a valid value", h.name, h.value)
			}
		}
		// Openid, Platform, Surface and Appid, then the claim's.
		const base = 4
		if accepted && claims["c"] != nil && len(v.headers) != base+1 {
			t.Fatalf("accepted %q, but it is not a header: %v", value, v.headers)
		}
		if !accepted && len(v.headers) != base {
			t.Fatalf("refused %q, but it became a header: %v", value, v.headers)
		}
	})
}

// A stored claim that cannot be a header costs the user nothing: the
// request goes through without it, whether the claims come from the store
// or, with the store down, from the token's ext.
func TestGuardSkipsBadStoredClaims(t *testing.T) {
	bad := map[string]any{"uid": "7", "note": "a\r\nb", "roles": []any{"x", "y"}}
	for _, storeDown := range []bool{false, true} {
		core, logs := observer.New(zapcore.WarnLevel)
		f := newGuardFixture(t, func(c *Config) {
			c.Logger = zap.New(core)
			verify := c.Verify
			c.Verify = func(tok string) (*token.Claims, time.Duration, error) {
				cl, leeway, err := verify(tok)
				if cl != nil {
					cl.Extra = bad
				}
				return cl, leeway, err
			}
		})
		tok := f.login("s1", "alice", bad)
		if storeDown {
			// Confirmed by a config of this process before a reload: the
			// only token accepted with the store down, from its own claims.
			f.ended.confirm("s1", f.clock.Now().Add(time.Hour).UnixNano())
			f.store.set(func(s *fakeSessions) { s.err = errors.New("store down") })
		}
		r := serveGuard(t, f.g, tok)
		if r.Header.Get("X-Wx-Uid") != "7" || r.Header.Get("X-Wx-Openid") != "alice" {
			t.Fatalf("store down %v: headers %v", storeDown, r.Header)
		}
		for k, vs := range r.Header {
			for _, v := range vs {
				if !httpguts.ValidHeaderFieldValue(v) {
					t.Fatalf("store down %v: header %s = %q", storeDown, k, v)
				}
			}
		}
		if r.Header.Get("X-Wx-Note") != "" || r.Header.Get("X-Wx-Roles") != "" {
			t.Fatalf("store down %v: a bad claim went upstream: %v", storeDown, r.Header)
		}
		if logs.FilterMessageSnippet("claims left out").Len() != 1 {
			t.Fatalf("store down %v: want one warning, got %v", storeDown, logs.All())
		}
	}
}

// A claim stored before its name was reserved never stands for wxauth's
// own identity headers or placeholders.
func TestStoredReservedClaimsNotHandedOn(t *testing.T) {
	v := newView(faceID{openid: "o1", platform: "wechat", surface: "qr", appID: "wxweb"},
		map[string]any{"surface": "mp", "platform": "qq", "app_id": "x", "uid": "7"}, nil, zap.NewNop())
	got := map[string]string{}
	for _, h := range v.headers {
		if _, dup := got[h.name]; dup {
			t.Fatalf("header %s twice: %v", h.name, v.headers)
		}
		got[h.name] = h.value
	}
	if got["X-Wx-Surface"] != "qr" || got["X-Wx-Platform"] != "wechat" || got["X-Wx-Uid"] != "7" {
		t.Fatalf("headers %v", got)
	}
	if val, _ := v.lookup("http.auth.user.app_id"); val != "wxweb" {
		t.Fatalf("app_id placeholder %v", val)
	}
}
