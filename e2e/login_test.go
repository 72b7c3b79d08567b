package e2e

import (
	"bytes"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"
	"github.com/golang-jwt/jwt/v5"

	"github.com/wxauth/caddy-wxauth/token"
)

func TestLoginAndProtectedCall(t *testing.T) {
	h := start(t, "")
	r := h.login("alice")
	if r.str("token_type") != "Bearer" || r.str("token") == "" || r.str("openid") == "" || r.str("unionid") == "" {
		t.Fatalf("login reply: %s", r.body)
	}
	if ttl, _ := r.json["expires_in"].(float64); ttl < 7190 || ttl > 7200 {
		t.Fatalf("expires_in = %v, want 7200", r.json["expires_in"])
	}
	if strings.Contains(strings.ToLower(string(r.body)), "session_key") {
		t.Fatalf("login reply leaks the session_key: %s", r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Fatalf("Content-Type = %q", ct)
	}

	// The same user keeps the same openid across logins.
	again := h.login("alice")
	if again.str("openid") != r.str("openid") || again.str("token") == r.str("token") {
		t.Fatalf("second login: %s", again.body)
	}

	p := h.do(http.MethodGet, appURL+"/api/orders", nil, bearer(r.str("token"))...)
	if p.status != 200 {
		t.Fatalf("protected call: %d %s", p.status, p.body)
	}
	want := map[string]string{
		"hdr_openid": r.str("openid"), "hdr_unionid": r.str("unionid"),
		"hdr_platform": "wechat", "hdr_surface": "mp", "hdr_appid": testApp, "hdr_anonymous": "",
		"id": r.str("openid"), "openid": r.str("openid"), "unionid": r.str("unionid"),
		"path": "/api/orders",
	}
	for k, v := range want {
		if p.str(k) != v {
			t.Errorf("upstream %s = %q, want %q (%s)", k, p.str(k), v, p.body)
		}
	}

	// Multipart forms work too.
	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	_ = mw.WriteField("code", h.code("bob"))
	_ = mw.Close()
	if m := h.do(http.MethodPost, appURL+"/wx/login", &mp, "Content-Type", mw.FormDataContentType()); m.status != 200 || m.str("openid") == "" {
		t.Fatalf("multipart login: %d %s", m.status, m.body)
	}

	// Form-encoded login works too.
	f := h.do(http.MethodPost, appURL+"/wx/login", strings.NewReader("code="+url.QueryEscape(h.code("bob"))),
		"Content-Type", "application/x-www-form-urlencoded")
	if f.status != 200 || f.str("openid") == "" || f.str("openid") == r.str("openid") {
		t.Fatalf("form login: %d %s", f.status, f.body)
	}
}

func TestNoUnionID(t *testing.T) {
	h := start(t, "")
	r := h.login("carol", "&unionid=0")
	if _, ok := r.json["unionid"]; ok {
		t.Fatalf("unionid present without one from WeChat: %s", r.body)
	}
	p := h.do(http.MethodGet, appURL+"/x", nil, append(bearer(r.str("token")), "X-Wx-Unionid", "spoofed")...)
	if p.status != 200 || p.str("hdr_unionid") != "" || p.str("unionid") != "" {
		t.Fatalf("upstream got a unionid: %s", p.body)
	}
}

func TestSpoofedIdentityHeadersAreStripped(t *testing.T) {
	h := start(t, "")
	tok := h.token("dave")
	p := h.do(http.MethodGet, appURL+"/x", nil, append(bearer(tok),
		"X-Wx-Openid", "attacker", "x-wx-unionid", "attacker", "X-Wx-Uid", "1")...)
	if p.status != 200 || p.str("hdr_openid") == "attacker" || p.str("hdr_unionid") == "attacker" || p.str("hdr_uid") != "" {
		t.Fatalf("spoofed headers reached upstream: %s", p.body)
	}
	// Without a token the request is refused, and in optional mode it passes
	// anonymously with the headers still removed.
	expectError(t, h.do(http.MethodGet, appURL+"/x", nil, "X-Wx-Openid", "attacker"), 401, "missing_token")
	h = start(t, "optional")
	a := h.do(http.MethodGet, appURL+"/x", nil, "X-Wx-Openid", "attacker")
	if a.status != 200 || a.str("hdr_openid") != "" || a.str("id") != "" {
		t.Fatalf("optional anonymous request: %d %s", a.status, a.body)
	}
	ok := h.do(http.MethodGet, appURL+"/x", nil, append(bearer(h.token("dave")), "X-Wx-Openid", "attacker")...)
	if ok.status != 200 || ok.str("hdr_openid") == "attacker" || ok.str("hdr_openid") == "" {
		t.Fatalf("optional with token: %s", ok.body)
	}
	expectError(t, h.do(http.MethodGet, appURL+"/x", nil, bearer("junk")...), 401, "invalid_token")
}

func TestTokenErrors(t *testing.T) {
	h := start(t, "signing_key "+testKey)
	good := h.token("erin")

	r := h.do(http.MethodGet, appURL+"/x", nil)
	expectError(t, r, 401, "missing_token")
	if got := r.header.Get("WWW-Authenticate"); got != `Bearer realm="wxauth"` {
		t.Fatalf("WWW-Authenticate = %q", got)
	}

	secret, err := token.ParseSecret(testKey)
	if err != nil {
		t.Fatal(err)
	}
	sign := func(c jwt.MapClaims, method jwt.SigningMethod, key any) string {
		tk := jwt.NewWithClaims(method, c)
		tk.Header["kid"] = "k1"
		s, err := tk.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	now := time.Now()
	claims := func(mod func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"iss": "wxauth", "aud": testApp, "sub": "o123", "sid": "s123",
			"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
		mod(c)
		return c
	}
	bad := map[string]string{
		"garbage":        "not-a-token",
		"tampered":       good[:len(good)-4] + "AAAA",
		"expired":        sign(claims(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Hour).Unix() }), jwt.SigningMethodHS256, secret),
		"foreign app_id": sign(claims(func(c jwt.MapClaims) { c["aud"] = "wxother" }), jwt.SigningMethodHS256, secret),
		"other key":      sign(claims(func(c jwt.MapClaims) {}), jwt.SigningMethodHS256, []byte(strings.Repeat("x", 32))),
		"no exp":         sign(claims(func(c jwt.MapClaims) { delete(c, "exp") }), jwt.SigningMethodHS256, secret),
		"alg none":       sign(claims(func(c jwt.MapClaims) {}), jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType),
		"unknown sid":    sign(claims(func(c jwt.MapClaims) {}), jwt.SigningMethodHS256, secret),
		"huge":           strings.Repeat("A", 8000),
	}
	for name, tok := range bad {
		r := h.do(http.MethodGet, appURL+"/x", nil, bearer(tok)...)
		expectError(t, r, 401, "invalid_token")
		if !strings.Contains(r.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("%s: WWW-Authenticate = %q", name, r.header.Get("WWW-Authenticate"))
		}
		if strings.Contains(string(r.body), tok) {
			t.Errorf("%s: the error echoes the token", name)
		}
	}
	// Other schemes are not tokens.
	expectError(t, h.do(http.MethodGet, appURL+"/x", nil, "Authorization", "Basic "+good), 401, "missing_token")
	// A bare token, without the scheme, is missing too, and the answer says
	// how to send it.
	r = h.do(http.MethodGet, appURL+"/x", nil, "Authorization", good)
	expectError(t, r, 401, "missing_token")
	if !strings.Contains(r.str("message"), "send it as Authorization: Bearer <token>") {
		t.Errorf("bare token: message %q", r.str("message"))
	}
	if r := h.do(http.MethodGet, appURL+"/x", nil, "Authorization", "bearer "+good); r.status != 200 {
		t.Fatalf("lower-case scheme refused: %d", r.status)
	}
}

func TestLoginErrors(t *testing.T) {
	h := start(t, "wechat_timeout 1s")
	login := appURL + "/wx/login"
	cases := []struct {
		code    string
		status  int
		err     string
		errcode float64
	}{
		{"invalid", 401, "invalid_code", 40029},
		{"used", 401, "invalid_code", 40163},
		{"risky", 403, "risky_user", 40226},
		{"limit", 429, "rate_limited", 45011},
		{"busy", 502, "upstream_error", -1},
		{"html", 502, "upstream_error", 0},
		{"reset", 502, "upstream_error", 0},
	}
	for _, c := range cases {
		r := h.postJSON(login, map[string]string{"code": c.code})
		expectError(t, r, c.status, c.err)
		if got, _ := r.json["errcode"].(float64); got != c.errcode {
			t.Errorf("%s: errcode = %v, want %v", c.code, r.json["errcode"], c.errcode)
		}
		if c.status == 429 && r.header.Get("Retry-After") == "" {
			t.Errorf("429 without Retry-After")
		}
	}
	// A slow WeChat is cut off by wechat_timeout, not by the client.
	began := time.Now()
	r := h.postJSON(login, map[string]string{"code": "slow"})
	if r.status != 502 || r.str("error") != "upstream_error" {
		t.Fatalf("slow WeChat: %d %s", r.status, r.body)
	}
	if d := time.Since(began); d > 4*time.Second {
		t.Fatalf("slow WeChat took %v", d)
	}
	// A code is used once. A retry of the same code soon after gets a token
	// for the same session only with the same nonce: without one, or with
	// another, it is a stolen code's replay.
	code := h.code("frank")
	const nonce = "client-nonce-0123456789"
	first := h.postJSON(login, map[string]string{"code": code, "nonce": nonce})
	second := h.postJSON(login, map[string]string{"code": code, "nonce": nonce})
	if first.status != 200 || second.status != 200 || sid(t, first.str("token")) != sid(t, second.str("token")) {
		t.Fatalf("retried code: %d %s / %d %s", first.status, first.body, second.status, second.body)
	}
	// Refused here without asking WeChat: no errcode, since WeChat sent none.
	for _, replay := range []reply{
		h.postJSON(login, map[string]string{"code": code}),
		h.postJSON(login, map[string]string{"code": code, "nonce": "another-nonce-0123456789"}),
	} {
		expectError(t, replay, 401, "invalid_code")
		if _, ok := replay.json["errcode"]; ok {
			t.Errorf("a replay refused without calling WeChat has an errcode: %s", replay.body)
		}
	}
	bare := h.code("frank")
	if r := h.postJSON(login, map[string]string{"code": bare}); r.status != 200 {
		t.Fatalf("login without a nonce: %d %s", r.status, r.body)
	}
	expectError(t, h.postJSON(login, map[string]string{"code": bare}), 401, "invalid_code")
	expectError(t, h.postJSON(login, map[string]string{"code": h.code("frank"), "nonce": "short"}), 400, "invalid_request")

	expectError(t, h.do(http.MethodGet, login, nil), 405, "method_not_allowed")
	if r := h.do(http.MethodGet, login, nil); r.header.Get("Allow") != "POST" {
		t.Fatalf("Allow = %q", r.header.Get("Allow"))
	}
	expectError(t, h.do(http.MethodPost, login, nil, "Content-Type", "application/json"), 400, "invalid_request")
	expectError(t, h.do(http.MethodPost, login, strings.NewReader("{"), "Content-Type", "application/json"), 400, "invalid_request")
	expectError(t, h.do(http.MethodPost, login, strings.NewReader(`["code"]`), "Content-Type", "application/json"), 400, "invalid_request")
	expectError(t, h.postJSON(login, map[string]any{"code": 42}), 400, "invalid_request")
	expectError(t, h.postJSON(login, map[string]any{"code": ""}), 400, "invalid_request")
	expectError(t, h.postJSON(login, map[string]any{"code": "a b"}), 400, "invalid_request")
	expectError(t, h.postJSON(login, map[string]any{"code": strings.Repeat("x", 70<<10)}), 413, "request_too_large")
}

func TestTokenSources(t *testing.T) {
	// A mini-program that sends the bare token in a custom header (seed 003),
	// one that uses a cookie, and one that uses the query, in that order.
	h := start(t, `token_from header authentication
			token_from cookie wxtoken
			token_from query access_token`)
	tok := h.token("gina")
	for name, hdr := range map[string][]string{
		"header": {"Authentication", tok},
		"cookie": {"Cookie", "wxtoken=" + tok},
	} {
		if r := h.do(http.MethodGet, appURL+"/x", nil, hdr...); r.status != 200 || r.str("openid") == "" {
			t.Fatalf("%s: %d %s", name, r.status, r.body)
		}
	}
	if r := h.do(http.MethodGet, appURL+"/x?access_token="+tok, nil); r.status != 200 {
		t.Fatalf("query: %d %s", r.status, r.body)
	}
	// The default Authorization header is not a source any more.
	expectError(t, h.do(http.MethodGet, appURL+"/x", nil, bearer(tok)...), 401, "missing_token")
}

func TestPublicPathsStayOpen(t *testing.T) {
	h := start(t, "")
	r := h.do(http.MethodGet, appURL+"/public/x", nil, "X-Wx-Openid", "attacker")
	if r.status != 200 || !strings.HasPrefix(string(r.body), "public") {
		t.Fatalf("public path: %d %s", r.status, r.body)
	}
}

func TestInvalidConfigs(t *testing.T) {
	base := globalOptions("") + appURL + ` {
	wxauth {
		%s
	}
}`
	// WeChat's shapes, since api_base is WeChat's API.
	const realID, realSecret = "wx0123456789abcdef", "0123456789abcdef0123456789abcdef"
	cases := map[string]string{
		"app_id is required":        "app_secret " + realSecret,
		"app_secret is required":    "app_id " + realID,
		"unrecognized subdirective": "app_id " + realID + "\n app_secret " + realSecret + "\n x y",
		"bad duration":              "app_id " + realID + "\n app_secret " + realSecret + "\n token_ttl soon",
		"api_base":                  "app_id " + realID + "\n app_secret " + realSecret + "\n api_base ftp://x",
		"store must be":             "app_id " + realID + "\n app_secret " + realSecret + "\n store disk",
		"signing_key":               "app_id " + realID + "\n app_secret " + realSecret + "\n signing_key c2hvcnQ=",
		"takes no options":          "app_id " + realID + "\n app_secret " + realSecret + "\n store memory {\n pool_size 5\n }",
		"login_limit":               "app_id " + realID + "\n app_secret " + realSecret + "\n login_limit many 1m",
		"must be letters":           "app_id ../wx1\n app_secret " + realSecret,
		"cannot carry a claim":      "app_id " + realID + "\n app_secret " + realSecret + "\n app_hook http://127.0.0.1:1 {\n secret " + hookSecret + "\n claim_header uid Authorization\n }",
		"carries the token":         "app_id " + realID + "\n app_secret " + realSecret + "\n token_from header Authentication\n app_hook http://127.0.0.1:1 {\n secret " + hookSecret + "\n claim_header uid authentication\n }",
		"needs a secret":            "app_id " + realID + "\n app_secret " + realSecret + "\n app_hook http://127.0.0.1:1",
		"secret is empty after replacing placeholders": "app_id " + realID + "\n app_secret " + realSecret + "\n app_hook http://127.0.0.1:1 {\n secret {env.WXAUTH_TEST_UNSET}\n }",
		"whsec_":                             "app_id " + realID + "\n app_secret " + realSecret + "\n app_hook http://127.0.0.1:1 {\n secret hunter2\n }",
		"unknown event":                      "app_id " + realID + "\n app_secret " + realSecret + "\n app_hook http://127.0.0.1:1 {\n secret " + hookSecret + "\n events login payment\n }",
		"the official account's original id": "app_id gh_0123456789ab\n app_secret " + realSecret,
		"app_api needs app_hook":             "app_id " + realID + "\n app_secret " + realSecret + "\n app_api /wx/app",
	}
	for want, body := range cases {
		caddytest.AssertLoadError(t, strings.Replace(base, "%s", body, 1), "caddyfile", want)
	}
}

// A handler after wxauth that edits header values in place (a
// request_header replace) must not change the identity of later requests.
func TestIdentityHeadersEditedDownstream(t *testing.T) {
	h := startConfig(t, strings.Replace(config(""), "\t\theader Content-Type application/json",
		"\t\trequest_header X-Wx-Openid o oo\n\t\theader Content-Type application/json", 1))
	login := h.login("walt")
	want := strings.ReplaceAll(login.str("openid"), "o", "oo")
	for i := 0; i < 3; i++ {
		r := h.do(http.MethodGet, appURL+"/x", nil, bearer(login.str("token"))...)
		if r.str("hdr_openid") != want || r.str("openid") != login.str("openid") {
			t.Fatalf("request %d: upstream got %q / %q, want %q / %q", i, r.str("hdr_openid"), r.str("openid"), want, login.str("openid"))
		}
	}
}

// A wrong app_secret is the server's config, not the user's code: 502
// wechat_config with WeChat's errcode and what to fix, counted in
// wxauth_wechat_config_errors_total; the phone endpoint's access_token
// fetch says the same.
func TestWrongSecret(t *testing.T) {
	cfg := config("")
	const ours = "app_secret test-secret\n\t\t\tapi_base"
	if strings.Count(cfg, ours) != 1 {
		t.Fatalf("the config has no wxauth app_secret to replace:\n%s", cfg)
	}
	h := startConfig(t, strings.Replace(cfg, ours, "app_secret wrong-secret\n\t\t\tapi_base", 1))
	before := h.metrics()
	r := h.postJSON(appURL+"/wx/login", map[string]string{"code": h.code("wendy")})
	expectError(t, r, 502, "wechat_config")
	if got, _ := r.json["errcode"].(float64); got != 40125 || !strings.Contains(r.str("message"), "app_secret") ||
		strings.Contains(string(r.body), "wrong-secret") || strings.Contains(string(r.body), "test-secret") {
		t.Fatalf("wrong secret: %s", r.body)
	}
	after := h.metrics()
	for series, want := range map[string]float64{
		`wxauth_wechat_config_errors_total{errcode="40125"}`:                            1,
		`wxauth_logins_total{errcode="40125",platform="wechat",result="wechat_config"}`: 1,
	} {
		if got := after[series] - before[series]; got != want {
			t.Errorf("%s went up by %v, want %v", series, got, want)
		}
	}
}
