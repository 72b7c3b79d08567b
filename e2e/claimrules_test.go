package e2e

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/wxauth/caddy-wxauth/session"
)

// callIDs makes each app_api call's webhook-id new.
var callIDs atomic.Int64

func newCallID() string { return fmt.Sprintf("claims-call-%d", callIDs.Add(1)) }

// setClaims calls app_api's set_claims for openid with claims, a raw JSON object.
func setClaims(h *harness, openid, claims string) reply {
	h.t.Helper()
	return signedCall(h, `{"action":"set_claims","openid":"`+openid+`","claims":`+claims+`}`, newCallID(), time.Now(), hookSecret)
}

// claimsUpstream returns what the test app's upstream got for tok: tier|roles|uid.
func claimsUpstream(h *harness, tok string) reply {
	h.t.Helper()
	r := h.do(http.MethodGet, appURL+"/x", nil, bearer(tok)...)
	if r.status != 200 {
		h.t.Fatalf("request with the token: %d %s", r.status, r.body)
	}
	return r
}

// A claim value is a string, number or boolean fit for a header; anything
// else is refused by app_api with 400, and the user's requests go on with
// the claims they had.
func TestSetClaimsValueRules(t *testing.T) {
	a := newAppHook(t)
	a.answer("login", 200, `{"tier": "gold", "roles": "member", "uid": 7}`)
	h := startHooked(t, a, "login")
	login := h.login("vera")
	tok, openid := login.str("token"), login.str("openid")
	if r := claimsUpstream(h, tok); r.str("path") != "gold|member|7" {
		t.Fatalf("before: %s", r.body)
	}

	for name, claims := range map[string]string{
		"CR LF":            `{"tier": "a\r\nb"}`,
		"NUL":              `{"tier": "a\u0000b"}`,
		"DEL":              `{"tier": "a\u007fb"}`,
		"object":           `{"tier": {"a": 1}}`,
		"array":            `{"tier": ["a", "b"]}`,
		"1025-byte string": `{"tier": "` + strings.Repeat("x", 1025) + `"}`,
		"one bad of two":   `{"uid": 8, "tier": "a\nb"}`,
	} {
		r := setClaims(h, openid, claims)
		expectError(t, r, 400, "invalid_request")
		if !strings.Contains(r.str("message"), `"tier"`) {
			t.Errorf("%s: the message does not name the claim: %s", name, r.body)
		}
		if r := claimsUpstream(h, tok); r.str("path") != "gold|member|7" {
			t.Fatalf("%s: a refused call changed the claims: %s", name, r.body)
		}
	}

	long := strings.Repeat("x", 1024)
	if r := setClaims(h, openid, `{"tier": "`+long+`"}`); r.status != 204 {
		t.Fatalf("1024-byte string: %d %s", r.status, r.body)
	}
	if r := claimsUpstream(h, tok); r.str("path") != long+"|member|7" {
		t.Fatalf("after the 1024-byte claim: %.80s", r.body)
	}
	// Numbers and booleans reach the upstream as their JSON text.
	if r := setClaims(h, openid, `{"tier": true, "uid": 42}`); r.status != 204 {
		t.Fatalf("number and bool: %d %s", r.status, r.body)
	}
	if r := claimsUpstream(h, tok); r.str("path") != "true|member|42" || r.str("hdr_uid") != "42" {
		t.Fatalf("number and bool upstream: %s", r.body)
	}
	// null still removes a claim; a new login carries on with the rest.
	if r := setClaims(h, openid, `{"tier": null}`); r.status != 204 {
		t.Fatalf("null: %d %s", r.status, r.body)
	}
	if r := claimsUpstream(h, tok); r.str("path") != "|member|42" {
		t.Fatalf("after null: %s", r.body)
	}
}

// A hook answer with a claim that could not be a header is the app's
// failure: 502 hook_failed, no token, nothing stored.
func TestAppHookClaimValueRules(t *testing.T) {
	a := newAppHook(t)
	a.answer("login", 200, `{"uid": 7, "tier": "gold", "roles": "member"}`)
	h := startHooked(t, a, "login")
	tok := h.token("wren")
	for name, body := range map[string]string{
		"CR LF":            `{"uid": 8, "tier": "a\r\nb"}`,
		"tab":              `{"tier": "a\tb"}`,
		"object":           `{"tier": {"a": 1}}`,
		"array":            `{"roles": ["buyer", "vip"]}`,
		"1025-byte string": `{"tier": "` + strings.Repeat("x", 1025) + `"}`,
	} {
		a.answer("login", 200, body)
		r := h.postJSON(appURL+"/wx/login", map[string]string{"code": h.code("wren")})
		expectError(t, r, 502, "hook_failed")
		if r.str("token") != "" {
			t.Fatalf("%s: a token after a bad answer: %s", name, r.body)
		}
	}
	if r := claimsUpstream(h, tok); r.str("path") != "gold|member|7" {
		t.Fatalf("a bad answer changed the claims: %s", r.body)
	}
	a.answer("login", 200, `{"uid": 9, "tier": false}`)
	if r := claimsUpstream(h, h.token("wren")); r.str("path") != "false|member|9" {
		t.Fatalf("number and bool from the hook: %s", r.body)
	}
}

// unsetRoles is what the upstream echoes for a roles placeholder that is not set.
const unsetRoles = "{http.auth.user.roles}"

// A claim stored before this release that cannot be a header is left out
// of the identity headers; the user's requests still answer 200.
func TestBadStoredClaimIsLeftOut(t *testing.T) {
	a := newAppHook(t)
	h := startHooked(t, a, "login")
	openid := h.login("lena").str("openid")

	// Write the user's record as an older release could have: the store is
	// sealed with the key wxauth derives from the app secret.
	key, err := hkdf.Key(sha256.New, []byte("test-secret"), nil, "caddy-wxauth store "+testApp, 32)
	if err != nil {
		t.Fatal(err)
	}
	store, err := session.Sealed(session.NewCaddyStorage(&certmagic.FileStorage{Path: storageDir + "/storage"}), key)
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := json.Marshal(map[string]any{"seen": true, "claims": map[string]any{
		"uid": 5, "tier": "a\r\nX-Admin: 1", "roles": []string{"buyer", "vip"}, "addr": map[string]any{"city": "x"},
	}})
	if err := store.Set(context.Background(), "wxauth/"+testApp+"/users/"+openid, rec, time.Hour); err != nil {
		t.Fatal(err)
	}

	tok := h.token("lena")
	r := claimsUpstream(h, tok)
	if r.str("path") != "|"+unsetRoles+"|5" || r.str("hdr_uid") != "5" {
		t.Fatalf("with bad stored claims: %s", r.body)
	}
	if r := h.do(http.MethodPost, appURL+"/wx/refresh", nil, bearer(tok)...); r.status != 200 {
		t.Fatalf("refresh with bad stored claims: %d %s", r.status, r.body)
	}
	// The app can overwrite the bad claim with a good one.
	if r := setClaims(h, openid, `{"tier": "silver", "roles": null}`); r.status != 204 {
		t.Fatalf("set_claims over a bad stored claim: %d %s", r.status, r.body)
	}
	if r := claimsUpstream(h, tok); r.str("path") != "silver|"+unsetRoles+"|5" {
		t.Fatalf("after set_claims: %s", r.body)
	}
}

// app_api reads a call strictly: names spelled exactly, each once, none
// unknown; anything else is 400 and changes nothing.
func TestAppAPIStrictFields(t *testing.T) {
	a := newAppHook(t)
	a.answer("login", 200, `{"tier": "gold", "roles": "member", "uid": 7}`)
	h := startHooked(t, a, "login")
	login := h.login("xavi")
	tok, openid := login.str("token"), login.str("openid")
	for name, body := range map[string]string{
		"folded case":    `{"Action":"set_claims","openid":"` + openid + `","claims":{"tier":"hacked"}}`,
		"repeated field": `{"action":"set_claims","openid":"` + openid + `","openid":"` + openid + `","claims":{"tier":"hacked"}}`,
		"unknown field":  `{"action":"set_claims","openid":"` + openid + `","claims":{"tier":"hacked"},"reason":"x"}`,
		"repeated claim": `{"action":"set_claims","openid":"` + openid + `","claims":{"tier":"hacked","tier":"x"}}`,
		"a second value": `{"action":"set_claims","openid":"` + openid + `","claims":{"tier":"hacked"}} {}`,
		"end, folded":    `{"action":"end_sessions","OpenID":"` + openid + `"}`,
	} {
		r := signedCall(h, body, newCallID(), time.Now(), hookSecret)
		expectError(t, r, 400, "invalid_request")
		if name == "folded case" && !strings.Contains(r.str("message"), `"Action"`) {
			t.Errorf("the message does not name the field: %s", r.body)
		}
	}
	if r := claimsUpstream(h, tok); r.str("path") != "gold|member|7" {
		t.Fatalf("a refused call changed the claims or ended the session: %s", r.body)
	}
}

// A hook answer is read as strictly: a claim named twice or anything after
// the object is the app's failure, 502 hook_failed, and no token.
func TestAppHookStrictAnswer(t *testing.T) {
	a := newAppHook(t)
	a.answer("login", 200, `{"uid": 7, "tier": "gold", "roles": "member"}`)
	h := startHooked(t, a, "login")
	tok := h.token("yuki")
	for name, body := range map[string]string{
		"repeated claim":   `{"uid": 8, "uid": 9}`,
		"claims wrapped":   `{"uid": 8, "claims": {"tier": "x"}}`,
		"a second object":  `{"uid": 8} {"uid": 9}`,
		"trailing garbage": `{"uid": 8} x`,
	} {
		a.answer("login", 200, body)
		r := h.postJSON(appURL+"/wx/login", map[string]string{"code": h.code("yuki")})
		expectError(t, r, 502, "hook_failed")
		if r.str("token") != "" {
			t.Fatalf("%s: a token after a bad answer: %s", name, r.body)
		}
	}
	if r := claimsUpstream(h, tok); r.str("path") != "gold|member|7" {
		t.Fatalf("a bad answer changed the claims: %s", r.body)
	}
	// 204 and an empty 200 still change nothing and let the login through.
	for _, status := range []int{204, 200} {
		a.answer("login", status, "")
		if r := claimsUpstream(h, h.token("yuki")); r.str("path") != "gold|member|7" {
			t.Fatalf("empty %d answer: %s", status, r.body)
		}
	}
}
