package wxmock

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// login gets a code from /wxmock/login with the given query.
func login(t *testing.T, h *Handler, query string) string {
	t.Helper()
	m := object(t, serve(t, h, "GET", "/wxmock/login?"+query, ""))
	code, _ := m["code"].(string)
	if code == "" {
		t.Fatalf("no code in %v", m)
	}
	return code
}

// exchange calls jscode2session with the right appid and secret.
func exchange(t *testing.T, h *Handler, code string) map[string]any {
	t.Helper()
	return object(t, serve(t, h, "GET", code2SessionURL(h.AppID, testSecret, code), ""))
}

func code2SessionURL(appID, secret, code string) string {
	return "/sns/jscode2session?" + url.Values{
		"appid": {appID}, "secret": {secret}, "js_code": {code}, "grant_type": {"authorization_code"},
	}.Encode()
}

// fakeClock makes h's state use a clock the test moves.
func fakeClock(h *Handler) *time.Time {
	now := time.Unix(1700000000, 0)
	h.state.now = func() time.Time { return now }
	return &now
}

func TestCode2Session(t *testing.T) {
	h := newHandler(t, "wxc2s", testSecret)

	rec := serve(t, h, "GET", code2SessionURL("wxc2s", testSecret, login(t, h, "user=alice")), "")
	if ct := rec.Header().Get("Content-Type"); ct != "text/plain" {
		t.Errorf("Content-Type %q, want text/plain as WeChat sends", ct)
	}
	first := object(t, rec)
	second := exchange(t, h, login(t, h, "user=alice"))
	for _, m := range []map[string]any{first, second} {
		if errcode(t, m) != 0 {
			t.Fatalf("login failed: %v", m)
		}
		if m["openid"] != openID("wxc2s", "alice") || len(m["openid"].(string)) != 28 {
			t.Errorf("openid %v, want the stable one", m["openid"])
		}
		if m["unionid"] != unionID("alice") {
			t.Errorf("unionid %v, want the stable one", m["unionid"])
		}
		if !validSessionKey(m["session_key"].(string)) {
			t.Errorf("session_key %v is not base64 of 16 bytes", m["session_key"])
		}
	}
	if first["session_key"] == second["session_key"] {
		t.Error("two logins gave the same session_key")
	}
	if u, _ := h.state.userByName("alice"); u.sessionKey != second["session_key"] {
		t.Error("the newest login's session_key is not the current one")
	}
	if bob := exchange(t, h, login(t, h, "user=bob")); bob["openid"] == first["openid"] {
		t.Error("two users got the same openid")
	}
	if demo := exchange(t, h, login(t, h, "")); demo["openid"] != openID("wxc2s", "demo") {
		t.Errorf("default user is not demo: %v", demo)
	}

	key := "tiihtNczf5v6AKRyjwEUhQ=="
	m := exchange(t, h, login(t, h, "user=carol&unionid=0&session_key="+url.QueryEscape(key)))
	if m["session_key"] != key {
		t.Errorf("session_key %v, want the one given to /wxmock/login", m["session_key"])
	}
	if _, ok := m["unionid"]; ok {
		t.Errorf("unionid present for a code made with unionid=0: %v", m)
	}

	// Codes work once, unknown ones never, and none after 5 minutes.
	code := login(t, h, "user=dave")
	exchange(t, h, code)
	if got := errcode(t, exchange(t, h, code)); got != 40163 {
		t.Errorf("reused code: errcode %d, want 40163", got)
	}
	if got := errcode(t, exchange(t, h, "no-such-code")); got != 40029 {
		t.Errorf("unknown code: errcode %d, want 40029", got)
	}
	now := fakeClock(h)
	code = login(t, h, "user=dave")
	*now = now.Add(codeTTL + time.Second)
	if got := errcode(t, exchange(t, h, code)); got != 40029 {
		t.Errorf("expired code: errcode %d, want 40029", got)
	}
}

func TestCode2SessionChecksAppAndParams(t *testing.T) {
	h := newHandler(t, "wxapp", testSecret)
	code := login(t, h, "user=eve")
	tests := []struct {
		name string
		q    url.Values
		want int
	}{
		{"no appid", url.Values{"secret": {testSecret}, "js_code": {code}, "grant_type": {"authorization_code"}}, 41002},
		{"no secret", url.Values{"appid": {"wxapp"}, "js_code": {code}, "grant_type": {"authorization_code"}}, 41004},
		{"no code", url.Values{"appid": {"wxapp"}, "secret": {testSecret}, "grant_type": {"authorization_code"}}, 41008},
		{"bad grant_type", url.Values{"appid": {"wxapp"}, "secret": {testSecret}, "js_code": {code}, "grant_type": {"password"}}, 40002},
		{"other appid", url.Values{"appid": {"wxelse"}, "secret": {testSecret}, "js_code": {code}, "grant_type": {"authorization_code"}}, 40013},
		{"wrong secret", url.Values{"appid": {"wxapp"}, "secret": {"guess"}, "js_code": {code}, "grant_type": {"authorization_code"}}, 40125},
	}
	for _, tt := range tests {
		m := object(t, serve(t, h, "GET", "/sns/jscode2session?"+tt.q.Encode(), ""))
		if got := errcode(t, m); got != tt.want || m["errmsg"] != errMsgs[tt.want] {
			t.Errorf("%s: %v, want errcode %d", tt.name, m, tt.want)
		}
	}
	// None of the failures used the code up.
	if m := exchange(t, h, code); errcode(t, m) != 0 {
		t.Errorf("code unusable after failed calls: %v", m)
	}

	// Without app_id and app_secret any app is accepted, with openids of that app.
	open := newHandler(t, "", "")
	m := object(t, serve(t, open, "GET", code2SessionURL("wxany", "whatever", login(t, open, "user=eve")), ""))
	if m["openid"] != openID("wxany", "eve") {
		t.Errorf("unconfigured mock: %v", m)
	}
}

func TestSpecialCodes(t *testing.T) {
	h := newHandler(t, "wxspecial", testSecret)
	for code, want := range map[string]int{"invalid": 40029, "used": 40163, "risky": 40226, "busy": -1, "limit": 45011} {
		m := exchange(t, h, code)
		if got := errcode(t, m); got != want || m["errmsg"] != errMsgs[want] {
			t.Errorf("%s: %v, want errcode %d", code, m, want)
		}
	}
	// The appid and secret are still checked first.
	if got := errcode(t, object(t, serve(t, h, "GET", code2SessionURL("wxspecial", "nope", "risky"), ""))); got != 40125 {
		t.Errorf("risky with a wrong secret: errcode %d, want 40125", got)
	}

	rec := serve(t, h, "GET", code2SessionURL("wxspecial", testSecret, "html"), "")
	if rec.Code != http.StatusBadGateway || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") ||
		!strings.Contains(rec.Body.String(), "<html>") {
		t.Errorf("html: %d %q %q", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}

	// busyonce fails, then logs in, then fails again: one retry always helps.
	for i, want := range []int{-1, 0, -1, 0} {
		m := exchange(t, h, "busyonce")
		if got := errcode(t, m); got != want {
			t.Fatalf("busyonce call %d: %v, want errcode %d", i+1, m, want)
		}
		if want == 0 && m["openid"] != openID("wxspecial", "busyonce") {
			t.Errorf("busyonce logged in %v", m["openid"])
		}
	}

	// slow waits until the caller gives up. start is read before the
	// deadline is set, so the wait measured is never shorter than it.
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req := httptest.NewRequest("GET", code2SessionURL("wxspecial", testSecret, "slow"), nil).WithContext(ctx)
	rec = httptest.NewRecorder()
	if err := h.ServeHTTP(rec, req, next); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 50*time.Millisecond || d > 5*time.Second {
		t.Errorf("slow answered after %v, want when the request ended", d)
	}
	if got := errcode(t, object(t, rec)); got != 40029 {
		t.Errorf("slow: errcode %d, want 40029", got)
	}
}

func TestResetCodeHangsUp(t *testing.T) {
	h := newHandler(t, "wxreset", testSecret)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = h.ServeHTTP(w, r, next)
	}))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + code2SessionURL("wxreset", testSecret, "reset"))
	if err == nil {
		resp.Body.Close()
		t.Fatalf("got an answer (%d), want the connection closed", resp.StatusCode)
	}
	// The server still answers other calls.
	resp, err = srv.Client().Get(srv.URL + code2SessionURL("wxreset", testSecret, "busy"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	// Without a connection to take over, the response is aborted.
	defer func() {
		if r := recover(); r != http.ErrAbortHandler {
			t.Errorf("recorder: recovered %v, want http.ErrAbortHandler", r)
		}
	}()
	serve(t, h, "GET", code2SessionURL("wxreset", testSecret, "reset"), "")
}

// stableToken asks for an access_token.
func stableToken(t *testing.T, h *Handler, force bool) map[string]any {
	t.Helper()
	body := fmt.Sprintf(`{"grant_type":"client_credential","appid":%q,"secret":%q,"force_refresh":%v}`, h.AppID, testSecret, force)
	return object(t, serve(t, h, "POST", "/cgi-bin/stable_token", body))
}

// tokenErrcode reports how getuserphonenumber judges tok: 40029 (a bad
// phone code) means the token itself passed.
func tokenErrcode(t *testing.T, h *Handler, tok string) int {
	t.Helper()
	return errcode(t, object(t, serve(t, h, "POST", "/wxa/business/getuserphonenumber?access_token="+url.QueryEscape(tok), `{"code":"nope"}`)))
}

func TestStableToken(t *testing.T) {
	h := newHandler(t, "wxtoken", testSecret)
	h.AccessTokenTTL = 3600 * 1e9
	now := fakeClock(h)

	first := stableToken(t, h, false)
	tok, _ := first["access_token"].(string)
	if tok == "" || first["expires_in"] != json.Number("3600") {
		t.Fatalf("stable_token: %v", first)
	}
	*now = now.Add(10 * time.Second)
	again := stableToken(t, h, false)
	if again["access_token"] != tok || again["expires_in"] != json.Number("3590") {
		t.Errorf("second call: %v, want the same token with its remaining lifetime", again)
	}

	fresh := stableToken(t, h, true)
	newTok, _ := fresh["access_token"].(string)
	if newTok == "" || newTok == tok || fresh["expires_in"] != json.Number("3600") {
		t.Fatalf("force_refresh: %v", fresh)
	}
	if got := stableToken(t, h, false)["access_token"]; got != newTok {
		t.Errorf("after force_refresh the current token is %v", got)
	}
	if got := tokenErrcode(t, h, tok); got != 40029 {
		t.Errorf("previous token right after force_refresh: errcode %d, want it still valid", got)
	}
	*now = now.Add(supersededGrace + time.Second)
	if got := tokenErrcode(t, h, tok); got != 40001 {
		t.Errorf("previous token after the grace period: errcode %d, want 40001", got)
	}
	if got := tokenErrcode(t, h, newTok); got != 40029 {
		t.Errorf("current token: errcode %d, want it valid", got)
	}

	// At the end of its lifetime a token expires and a new one is issued.
	*now = now.Add(time.Hour)
	if got := tokenErrcode(t, h, newTok); got != 42001 {
		t.Errorf("token past its lifetime: errcode %d, want 42001", got)
	}
	if got := stableToken(t, h, false)["access_token"]; got == newTok || got == "" {
		t.Errorf("no new token after expiry: %v", got)
	}

	bad := []struct {
		name, method, body string
		want               int
	}{
		{"GET", "GET", "", 43002},
		{"not JSON", "POST", "grant_type=client_credential", 47001},
		{"grant_type", "POST", `{"grant_type":"authorization_code","appid":"wxtoken","secret":"` + testSecret + `"}`, 40002},
		{"appid", "POST", `{"grant_type":"client_credential","appid":"wxelse","secret":"` + testSecret + `"}`, 40013},
		{"secret", "POST", `{"grant_type":"client_credential","appid":"wxtoken","secret":"guess"}`, 40125},
		{"no secret", "POST", `{"grant_type":"client_credential","appid":"wxtoken"}`, 41004},
	}
	for _, tt := range bad {
		if got := errcode(t, object(t, serve(t, h, tt.method, "/cgi-bin/stable_token", tt.body))); got != tt.want {
			t.Errorf("%s: errcode %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestPhoneNumber(t *testing.T) {
	h := newHandler(t, "wxphone", testSecret)
	tok := stableToken(t, h, false)["access_token"].(string)
	phone := func(tok, code string) map[string]any {
		return object(t, serve(t, h, "POST", "/wxa/business/getuserphonenumber?access_token="+url.QueryEscape(tok),
			fmt.Sprintf(`{"code":%q}`, code)))
	}
	phoneCode := func(query string) string {
		return object(t, serve(t, h, "GET", "/wxmock/phonecode?"+query, ""))["code"].(string)
	}

	code := phoneCode("")
	for _, bad := range []string{"", "forged"} {
		if m := phone(bad, code); errcode(t, m) != 40001 || m["errmsg"] != errMsgs[40001] {
			t.Errorf("access_token %q: %v, want 40001", bad, m)
		}
	}
	m := phone(tok, code)
	if errcode(t, m) != 0 || m["errmsg"] != "ok" {
		t.Fatalf("phone: %v", m)
	}
	info, _ := m["phone_info"].(map[string]any)
	wm, _ := info["watermark"].(map[string]any)
	if info["phoneNumber"] != "13800138000" || info["purePhoneNumber"] != "13800138000" ||
		info["countryCode"] != "86" || wm["appid"] != "wxphone" {
		t.Errorf("phone_info: %v", info)
	}
	if ts, err := wm["timestamp"].(json.Number).Int64(); err != nil || time.Since(time.Unix(ts, 0)).Abs() > time.Minute {
		t.Errorf("watermark timestamp %v", wm["timestamp"])
	}
	if got := errcode(t, phone(tok, code)); got != 40029 {
		t.Errorf("phone code used twice: errcode %d, want 40029", got)
	}
	if got := errcode(t, phone(tok, "unknown")); got != 40029 {
		t.Errorf("unknown phone code: errcode %d, want 40029", got)
	}

	// A code made for a user is refused when the caller names another openid.
	alice := exchange(t, h, login(t, h, "user=alice"))["openid"].(string)
	bound := func(openid string) int {
		body := fmt.Sprintf(`{"code":%q,"openid":%q}`, phoneCode("user=alice"), openid)
		return errcode(t, object(t, serve(t, h, "POST", "/wxa/business/getuserphonenumber?access_token="+url.QueryEscape(tok), body)))
	}
	if got := bound("o-someone-else"); got != 40029 {
		t.Errorf("another user's code: errcode %d, want 40029", got)
	}
	if got := bound(alice); got != 0 {
		t.Errorf("the user's own code: errcode %d, want 0", got)
	}
	if rec := serve(t, h, "GET", "/wxmock/phonecode?user=nobody", ""); rec.Code != 404 {
		t.Errorf("a code for a user who never logged in: %d, want 404", rec.Code)
	}

	info = phone(tok, phoneCode("phone=13900001111&cc=num"))["phone_info"].(map[string]any)
	if info["phoneNumber"] != "13900001111" || info["countryCode"] != json.Number("86") {
		t.Errorf("cc=num: %v, want countryCode as the number 86", info)
	}

	now := fakeClock(h)
	code = phoneCode("")
	*now = now.Add(codeTTL + time.Second)
	// The token is long-lived; only the phone code has expired.
	h.state.mu.Lock()
	h.state.tokens[tok].expires = now.Add(time.Hour)
	h.state.mu.Unlock()
	if got := errcode(t, phone(tok, code)); got != 40029 {
		t.Errorf("expired phone code: errcode %d, want 40029", got)
	}
	if got := errcode(t, object(t, serve(t, h, "GET", "/wxa/business/getuserphonenumber?access_token="+url.QueryEscape(tok), ""))); got != 43002 {
		t.Errorf("GET: errcode %d, want 43002", got)
	}
}

func TestExpireTokens(t *testing.T) {
	h := newHandler(t, "wxexpire", testSecret)
	old := stableToken(t, h, false)["access_token"].(string)
	older := stableToken(t, h, true)["access_token"].(string)
	openid := exchange(t, h, login(t, h, "user=alice"))["openid"].(string)

	if rec := serve(t, h, "POST", "/wxmock/expire_tokens", ""); rec.Code != http.StatusNoContent {
		t.Fatalf("expire_tokens: %d", rec.Code)
	}
	for _, tok := range []string{old, older} {
		if m := object(t, serve(t, h, "POST", "/wxa/business/getuserphonenumber?access_token="+tok, `{"code":"x"}`)); errcode(t, m) != 42001 || m["errmsg"] != "access_token expired" {
			t.Errorf("getuserphonenumber with an expired token: %v", m)
		}
		if got := errcode(t, object(t, serve(t, h, "GET", "/wxa/checksession?sig_method=hmac_sha256&openid="+openid+"&access_token="+tok, ""))); got != 42001 {
			t.Errorf("checksession with an expired token: errcode %d, want 42001", got)
		}
	}
	// Even without force_refresh the next stable_token call gives a working token.
	tok := stableToken(t, h, false)["access_token"].(string)
	if tok == old || tok == older || tokenErrcode(t, h, tok) != 40029 {
		t.Errorf("token after expire_tokens does not work")
	}
}

func TestCheckSession(t *testing.T) {
	h := newHandler(t, "wxcheck", testSecret)
	tok := stableToken(t, h, false)["access_token"].(string)
	first := exchange(t, h, login(t, h, "user=alice"))
	openid := first["openid"].(string)
	check := func(tok, openid, sig, method string) map[string]any {
		q := url.Values{"access_token": {tok}, "openid": {openid}, "signature": {sig}, "sig_method": {method}}
		return object(t, serve(t, h, "GET", "/wxa/checksession?"+q.Encode(), ""))
	}

	sig := loginSignature(first["session_key"].(string), "")
	if m := check(tok, openid, sig, "hmac_sha256"); errcode(t, m) != 0 || m["errmsg"] != "ok" {
		t.Errorf("valid signature: %v", m)
	}
	if m := check(tok, openid, strings.ToUpper(sig), "hmac_sha256"); errcode(t, m) != 0 {
		t.Errorf("upper-case hex signature: %v", m)
	}
	if got := errcode(t, check("forged", openid, sig, "hmac_sha256")); got != 40001 {
		t.Errorf("bad token: errcode %d, want 40001", got)
	}
	for name, args := range map[string][2]string{
		"unknown openid": {openID("wxcheck", "nobody"), sig},
		"bad signature":  {openid, loginSignature("AAAAAAAAAAAAAAAAAAAAAA==", "")},
		"no signature":   {openid, ""},
	} {
		if m := check(tok, args[0], args[1], "hmac_sha256"); errcode(t, m) != 87009 || m["errmsg"] != "invalid signature" {
			t.Errorf("%s: %v, want 87009", name, m)
		}
	}
	if got := errcode(t, check(tok, openid, sig, "md5")); got != 87009 {
		t.Errorf("other sig_method: errcode %d, want 87009", got)
	}

	// A new wx.login replaces the session_key: the old signature stops working.
	second := exchange(t, h, login(t, h, "user=alice"))
	if got := errcode(t, check(tok, openid, sig, "hmac_sha256")); got != 87009 {
		t.Errorf("signature of the replaced session_key: errcode %d, want 87009", got)
	}
	if got := errcode(t, check(tok, openid, loginSignature(second["session_key"].(string), ""), "hmac_sha256")); got != 0 {
		t.Errorf("signature of the current session_key: errcode %d", got)
	}
}

func TestStatsAndReset(t *testing.T) {
	h := newHandler(t, "wxstats", testSecret)
	code := login(t, h, "user=alice")
	exchange(t, h, code)
	exchange(t, h, "invalid")
	tok := stableToken(t, h, false)["access_token"].(string)
	tokenErrcode(t, h, tok)
	serve(t, h, "GET", "/wxa/checksession?access_token=x", "")
	serve(t, h, "GET", "/wxa/checksession?access_token=y", "")
	serve(t, h, "GET", "/wxa/checksession?access_token=z", "")

	stats := func() map[string]any { return object(t, serve(t, h, "GET", "/wxmock/stats", "")) }
	want := map[string]json.Number{"jscode2session": "2", "stable_token": "1", "getuserphonenumber": "1", "checksession": "3", "subscribe_send": "0",
		"sns_oauth2_access_token": "0", "sns_oauth2_refresh_token": "0", "sns_userinfo": "0"}
	got := stats()
	if len(got) != len(want) {
		t.Errorf("stats: %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("stats[%s] = %v, want %v", k, got[k], v)
		}
	}

	pending := login(t, h, "user=bob")
	if rec := serve(t, h, "POST", "/wxmock/reset", ""); rec.Code != http.StatusNoContent {
		t.Fatalf("reset: %d", rec.Code)
	}
	for k, v := range stats() {
		if v != json.Number("0") {
			t.Errorf("after reset stats[%s] = %v", k, v)
		}
	}
	if got := errcode(t, exchange(t, h, pending)); got != 40029 {
		t.Errorf("code from before the reset: errcode %d, want 40029", got)
	}
	if got := tokenErrcode(t, h, tok); got != 40001 {
		t.Errorf("token from before the reset: errcode %d, want 40001", got)
	}
}

// devToolsCode is a code as WeChat DevTools' wx.login gives one with a
// tourist appid: 32 random characters wxmock never issued.
func devToolsCode(t *testing.T) string {
	t.Helper()
	const chars = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	b := []byte(randomToken(32))[:32]
	for i := range b {
		b[i] = chars[int(b[i])%len(chars)]
	}
	return string(b)
}

func newAnyCodeHandler(t *testing.T, appID, user string) *Handler {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	h := &Handler{AppID: appID, AppSecret: testSecret, AnyCode: user}
	if err := h.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.Validate(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Cleanup() })
	return h
}

func TestAnyCode(t *testing.T) {
	h := newAnyCodeHandler(t, "wxany", "devtools")

	// Codes as DevTools gives them log in as the any_code user, with the
	// stable ids /wxmock/login?user=devtools would give.
	code := devToolsCode(t)
	first := exchange(t, h, code)
	if errcode(t, first) != 0 || first["openid"] != openID("wxany", "devtools") || first["unionid"] != unionID("devtools") {
		t.Fatalf("DevTools code: %v", first)
	}
	if !validSessionKey(first["session_key"].(string)) {
		t.Errorf("session_key %v is not base64 of 16 bytes", first["session_key"])
	}
	second := exchange(t, h, devToolsCode(t))
	if errcode(t, second) != 0 || second["openid"] != first["openid"] {
		t.Fatalf("second DevTools code: %v, want the same openid", second)
	}
	if second["session_key"] == first["session_key"] {
		t.Error("two codes gave the same session_key")
	}
	if u, _ := h.state.userByName("devtools"); u.sessionKey != second["session_key"] {
		t.Error("the newest login's session_key is not the current one")
	}
	// The user is a user like the others: /wxmock/userinfo knows it.
	if rec := serve(t, h, "GET", "/wxmock/userinfo?user=devtools", ""); rec.Code != http.StatusOK {
		t.Errorf("userinfo of the any_code user: %d %s", rec.Code, rec.Body)
	}

	// A code works once: again it is used, as at WeChat.
	if got := errcode(t, exchange(t, h, code)); got != 40163 {
		t.Errorf("reused DevTools code: errcode %d, want 40163", got)
	}

	// Codes wxmock issued keep their user, and work once too.
	issued := login(t, h, "user=alice")
	if m := exchange(t, h, issued); errcode(t, m) != 0 || m["openid"] != openID("wxany", "alice") {
		t.Errorf("issued code: %v, want alice", m)
	}
	if got := errcode(t, exchange(t, h, issued)); got != 40163 {
		t.Errorf("reused issued code: errcode %d, want 40163", got)
	}

	// The special codes keep their meaning.
	for code, want := range map[string]int{"invalid": 40029, "used": 40163, "risky": 40226, "busy": -1, "limit": 45011} {
		if got := errcode(t, exchange(t, h, code)); got != want {
			t.Errorf("%s: errcode %d, want %d", code, got, want)
		}
	}
	if m := exchange(t, h, "busyonce"); errcode(t, m) != -1 {
		t.Errorf("busyonce: %v, want errcode -1 first", m)
	}

	// The appid and secret are still checked.
	if got := errcode(t, object(t, serve(t, h, "GET", code2SessionURL("wxany", "guess", devToolsCode(t)), ""))); got != 40125 {
		t.Errorf("wrong secret: errcode %d, want 40125", got)
	}

	// Expired codes stay refused, issued ones and DevTools ones alike, and
	// so do codes pending when /wxmock/reset forgot them.
	now := fakeClock(h)
	old, pending := devToolsCode(t), login(t, h, "user=bob")
	exchange(t, h, old)
	*now = now.Add(codeTTL + time.Second)
	login(t, h, "user=carol") // prunes the expired codes
	for _, c := range []string{old, pending} {
		if got := errcode(t, exchange(t, h, c)); got != 40029 {
			t.Errorf("expired code: errcode %d, want 40029", got)
		}
	}
	unused := login(t, h, "user=dave")
	if rec := serve(t, h, "POST", "/wxmock/reset", ""); rec.Code != http.StatusNoContent {
		t.Fatalf("reset: %d", rec.Code)
	}
	if got := errcode(t, exchange(t, h, unused)); got != 40029 {
		t.Errorf("code issued before a reset: errcode %d, want 40029", got)
	}

	// Another any_code user name is another user.
	other := newAnyCodeHandler(t, "wxany2", "tester")
	m := exchange(t, other, devToolsCode(t))
	if errcode(t, m) != 0 || m["openid"] != openID("wxany2", "tester") || m["openid"] == openID("wxany2", "devtools") {
		t.Errorf("any_code tester: %v", m)
	}

	// Without any_code, unknown codes are invalid, as before.
	plain := newHandler(t, "wxnoany", testSecret)
	if got := errcode(t, exchange(t, plain, devToolsCode(t))); got != 40029 {
		t.Errorf("DevTools code without any_code: errcode %d, want 40029", got)
	}
}

func TestSpentCodesBounded(t *testing.T) {
	var sc spentCodes
	for i := range maxSpent + 10 {
		sc.add(fmt.Sprint(i))
	}
	if len(sc.set) != maxSpent || len(sc.ring) != maxSpent {
		t.Fatalf("%d codes kept, want %d", len(sc.set), maxSpent)
	}
	if sc.has("0") || sc.has("9") || !sc.has("10") || !sc.has(fmt.Sprint(maxSpent+9)) {
		t.Error("not the oldest codes were forgotten")
	}
}

func TestSubscribeSend(t *testing.T) {
	h := newHandler(t, "wxsub", testSecret)
	now := fakeClock(h)
	openid := exchange(t, h, login(t, h, "user=alice"))["openid"].(string)
	tok := stableToken(t, h, false)["access_token"].(string)
	send := func(tok, body string) int {
		t.Helper()
		return errcode(t, object(t, serve(t, h, "POST", "/cgi-bin/message/subscribe/send?access_token="+url.QueryEscape(tok), body)))
	}
	msg := `{"touser":"` + openid + `","template_id":"tmpl","data":{"thing1":{"value":"hi"}}}`
	if got := send(tok, msg); got != 0 {
		t.Fatalf("valid send: errcode %d", got)
	}
	for _, tt := range []struct {
		name, tok, body string
		want            int
	}{
		{"unknown token", "nope", msg, 40001},
		{"unknown user", tok, `{"touser":"oNobody","template_id":"tmpl"}`, 40003},
		{"no template", tok, `{"touser":"` + openid + `"}`, 40037},
		{"not JSON", tok, `touser=x`, 47001},
	} {
		if got := send(tt.tok, tt.body); got != tt.want {
			t.Errorf("%s: errcode %d, want %d", tt.name, got, tt.want)
		}
	}

	// A token superseded by force_refresh works for 30 s, then answers 40001.
	fresh := stableToken(t, h, true)["access_token"].(string)
	*now = now.Add(supersededGrace + time.Second)
	if got := send(tok, msg); got != 40001 {
		t.Errorf("superseded token: errcode %d, want 40001", got)
	}
	if got := send(fresh, msg); got != 0 {
		t.Errorf("current token: errcode %d", got)
	}
	if n := object(t, serve(t, h, "GET", "/wxmock/stats", ""))["subscribe_send"]; n != json.Number("7") {
		t.Errorf("stats subscribe_send %v, want 7", n)
	}
}
