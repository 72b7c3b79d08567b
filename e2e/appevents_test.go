package e2e

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// hookSecret signs the test app's events.
const hookSecret = "whsec_dGVzdC1ob29rLXNlY3JldC0wMTIzNDU2Nzg5YWJjZGVm"

// appHook is the app behind Caddy: it checks each event's Standard
// Webhooks signature on its own, keeps the events, and answers as told.
type appHook struct {
	t   *testing.T
	url string

	mu      sync.Mutex
	got     []map[string]any
	answers map[string]hookAnswer // by event
}

type hookAnswer struct {
	status int
	body   string
	delay  time.Duration
}

func newAppHook(t *testing.T) *appHook {
	t.Helper()
	a := &appHook{t: t, answers: map[string]hookAnswer{}}
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(hookSecret, "whsec_"))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		id, ts := r.Header.Get("Webhook-Id"), r.Header.Get("Webhook-Timestamp")
		m := hmac.New(sha256.New, key)
		m.Write([]byte(id + "." + ts + "." + string(body)))
		want := "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
		var ev map[string]any
		_ = json.Unmarshal(body, &ev)
		if r.Header.Get("Webhook-Signature") != want || ev == nil || ev["id"] != id ||
			r.Header.Get("X-Wxauth-Event") != ev["event"] || ts != strconv.FormatInt(int64(ev["time"].(float64)), 10) {
			t.Errorf("event with a bad signature or headers: %v %s", r.Header, body)
			w.WriteHeader(400)
			return
		}
		for _, never := range []string{"session_key", "Bearer", "token", "secret"} {
			if strings.Contains(string(body), never) {
				t.Errorf("event holds %q: %s", never, body)
			}
		}
		a.mu.Lock()
		a.got = append(a.got, ev)
		ans, ok := a.answers[ev["event"].(string)]
		a.mu.Unlock()
		if !ok {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if ans.delay > 0 {
			select { // a slow app
			case <-time.After(ans.delay):
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(ans.status)
		_, _ = io.WriteString(w, ans.body)
	}))
	t.Cleanup(srv.Close)
	a.url = srv.URL
	return a
}

func (a *appHook) answer(event string, status int, body string) {
	a.mu.Lock()
	a.answers[event] = hookAnswer{status: status, body: body}
	a.mu.Unlock()
}

func (a *appHook) events(kind string) []map[string]any {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []map[string]any
	for _, ev := range a.got {
		if ev["event"] == kind {
			out = append(out, ev)
		}
	}
	return out
}

func (a *appHook) last(kind string) map[string]any {
	a.t.Helper()
	evs := a.events(kind)
	if len(evs) == 0 {
		a.t.Fatalf("no %s event", kind)
	}
	return evs[len(evs)-1]
}

// hookConfig is the wxauth block of an app with hook a.
func hookConfig(a *appHook, events string, extra ...string) string {
	return `app_hook ` + a.url + ` {
				secret ` + hookSecret + `
				events ` + events + `
				timeout 1s
				claim_header tier X-Member-Tier
			}
			app_api /wx/app
			` + strings.Join(extra, "\n")
}

// startHooked runs the test app with hook a; the upstream echoes the
// claims it gets as headers and placeholders in "path".
func startHooked(t *testing.T, a *appHook, events string) *harness {
	t.Helper()
	return startConfig(t, strings.Replace(config(hookConfig(a, events)), `"path":"{http.request.uri.path}"`,
		`"path":"{http.request.header.X-Member-Tier}|{http.auth.user.roles}|{http.auth.user.uid}"`, 1))
}

func TestAppHookLogin(t *testing.T) {
	a := newAppHook(t)
	a.answer("login", 200, `{"uid": 1001, "roles": "buyer,vip", "tier": "gold"}`)
	h := startHooked(t, a, "login logout")
	first := h.login("mike")
	ev := a.last("login")
	if ev["first_login"] != true || ev["openid"] != first.str("openid") || ev["app_id"] != testApp ||
		ev["sid"] != sid(t, first.str("token")) || ev["unionid"] != first.str("unionid") {
		t.Fatalf("login event: %v", ev)
	}
	if c, _ := ev["claims"].(map[string]any); c == nil || len(c) != 0 {
		t.Fatalf("claims of a new user: %v", ev["claims"])
	}
	if at := int64(ev["time"].(float64)); time.Since(time.Unix(at, 0)).Abs() > time.Minute {
		t.Fatalf("event time %d", at)
	}
	r := h.do(http.MethodGet, appURL+"/x", nil, append(bearer(first.str("token")), "X-Member-Tier", "spoofed")...)
	if r.status != 200 || r.str("hdr_uid") != "1001" || r.str("path") != "gold|buyer,vip|1001" {
		t.Fatalf("claims upstream: %d %s", r.status, r.body)
	}

	// The next login of the user is no first login, and shows the user's claims.
	a.answer("login", 200, `{"tier": null}`) // null removes a claim
	second := h.login("mike")
	ev = a.last("login")
	if ev["first_login"] != false || ev["claims"].(map[string]any)["tier"] != "gold" {
		t.Fatalf("second login event: %v", ev)
	}
	// Claims are the user's: the first session follows, with its old token.
	for _, tok := range []string{first.str("token"), second.str("token")} {
		if r := h.do(http.MethodGet, appURL+"/x", nil, bearer(tok)...); r.str("path") != "|buyer,vip|1001" {
			t.Fatalf("after the claim was removed: %s", r.body)
		}
	}
	// Refresh keeps them.
	ref := h.do(http.MethodPost, appURL+"/wx/refresh", nil, bearer(second.str("token"))...)
	if r := h.do(http.MethodGet, appURL+"/x", nil, bearer(ref.str("token"))...); r.str("path") != "|buyer,vip|1001" {
		t.Fatalf("after refresh: %s", r.body)
	}

	// Logout is told to the app, once, after the session ended.
	if r := h.do(http.MethodPost, appURL+"/wx/logout", nil, bearer(second.str("token"))...); r.status != 204 {
		t.Fatalf("logout: %d", r.status)
	}
	if !eventually(t, 5*time.Second, func() bool { return len(a.events("logout")) == 1 }) {
		t.Fatal("no logout event")
	}
	if ev := a.last("logout"); ev["sid"] != sid(t, second.str("token")) || ev["openid"] != second.str("openid") {
		t.Fatalf("logout event: %v", ev)
	}

	// A failing app fails the login with 502 and makes no session.
	a.answer("login", 500, "db down")
	expectError(t, h.postJSON(appURL+"/wx/login", map[string]string{"code": h.code("nina")}), 502, "hook_failed")
	a.answer("login", 204, "")
	h.login("nina")
	if ev := a.last("login"); ev["first_login"] != true {
		t.Fatalf("a failed first login was remembered: %v", ev)
	}
}

// A bad answer from the app hands the client nothing and changes nothing.
func TestAppHookBadAnswers(t *testing.T) {
	a := newAppHook(t)
	a.answer("login", 200, `{"uid": 7}`)
	h := startHooked(t, a, "login")
	tok := h.token("cleo")
	for _, body := range []string{
		`[1]`, `"x"`, `{`, `{"Openid": "victim"}`, `{"UNIONID": "u"}`, `{"sub": "x"}`, `{"a b": 1}`,
		`{"uid": "` + strings.Repeat("x", 70<<10) + `"}`,
	} {
		a.answer("login", 200, body)
		r := h.postJSON(appURL+"/wx/login", map[string]string{"code": h.code("cleo")})
		expectError(t, r, 502, "hook_failed")
		if r.str("token") != "" {
			t.Fatalf("a token after a bad answer: %s", r.body)
		}
	}
	if r := h.do(http.MethodGet, appURL+"/x", nil, bearer(tok)...); r.str("hdr_uid") != "7" {
		t.Fatalf("a bad answer changed the claims: %s", r.body)
	}
	// A hanging app is cut off by the hook's timeout (1s).
	a.mu.Lock()
	a.answers["login"] = hookAnswer{status: 200, body: `{}`, delay: 30 * time.Second}
	a.mu.Unlock()
	began := time.Now()
	expectError(t, h.postJSON(appURL+"/wx/login", map[string]string{"code": h.code("cleo")}), 502, "hook_failed")
	if d := time.Since(began); d > 3*time.Second {
		t.Fatalf("a hanging hook held the login %v", d)
	}
}

func TestAppHookPhone(t *testing.T) {
	a := newAppHook(t)
	h := startHooked(t, a, "login phone decrypt")
	h.mock(http.MethodPost, "/wxmock/reset")
	tok := h.token("pia")
	code := h.mock(http.MethodGet, "/wxmock/phonecode?user=pia&phone=13700001111").str("code")

	// The app fails: the client gets nothing, and may retry the same code.
	a.answer("phone", 503, "")
	r := h.postJSON(appURL+"/wx/phone", map[string]string{"code": code}, bearer(tok)...)
	expectError(t, r, 502, "hook_failed")
	if strings.Contains(string(r.body), "13700001111") {
		t.Fatal("the number reached the client though the app did not take it")
	}
	first := a.last("phone")
	a.answer("phone", 200, `{"uid": 55}`)
	r = h.postJSON(appURL+"/wx/phone", map[string]string{"code": code}, bearer(tok)...)
	if r.status != 200 || r.str("phoneNumber") != "13700001111" {
		t.Fatalf("retry: %d %s", r.status, r.body)
	}
	ev := a.last("phone")
	phone, _ := ev["phone"].(map[string]any)
	if phone["phoneNumber"] != "13700001111" || phone["purePhoneNumber"] != "13700001111" || ev["sid"] != sid(t, tok) {
		t.Fatalf("phone event: %v", ev)
	}
	if ev["id"] != first["id"] {
		t.Fatalf("a retried event has a new id: %v then %v", first["id"], ev["id"])
	}
	if n := h.stats("getuserphonenumber"); n != 1 {
		t.Fatalf("%d WeChat phone calls for one code, want 1", n)
	}
	// The app's answer reaches upstream with the same token.
	if r := h.do(http.MethodGet, appURL+"/x", nil, bearer(tok)...); r.status != 200 || r.str("hdr_uid") != "55" {
		t.Fatalf("claims after the phone event: %d %s", r.status, r.body)
	}

	// Another user's phone code is refused by WeChat, since wxauth names
	// the caller's openid.
	h.login("bob")
	bobs := h.mock(http.MethodGet, "/wxmock/phonecode?user=bob&phone=13911112222").str("code")
	r = h.postJSON(appURL+"/wx/phone", map[string]string{"code": bobs}, bearer(tok)...)
	if r.status != 401 || strings.Contains(string(r.body), "13911112222") {
		t.Fatalf("someone else's phone code: %d %s", r.status, r.body)
	}

	// Decrypted data reaches the app without its watermark.
	data := h.mock(http.MethodGet, "/wxmock/userinfo?user=pia")
	r = h.postJSON(appURL+"/wx/decrypt", map[string]any{"encryptedData": data.str("encryptedData"), "iv": data.str("iv")}, bearer(tok)...)
	if r.status != 200 {
		t.Fatalf("decrypt: %d %s", r.status, r.body)
	}
	ev = a.last("decrypt")
	d, _ := ev["data"].(map[string]any)
	if d == nil || d["openId"] != r.str("openId") || d["watermark"] != nil {
		t.Fatalf("decrypt event: %v (reply %s)", ev, r.body)
	}
	a.answer("decrypt", 500, "")
	expectError(t, h.postJSON(appURL+"/wx/decrypt", map[string]any{"encryptedData": data.str("encryptedData"), "iv": data.str("iv")}, bearer(tok)...), 502, "hook_failed")
}

// signedCall calls app_api as the app does.
func signedCall(h *harness, body string, id string, at time.Time, secret string) reply {
	h.t.Helper()
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	ts := strconv.FormatInt(at.Unix(), 10)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + ts + "." + body))
	return h.do(http.MethodPost, appURL+"/wx/app", bytes.NewReader([]byte(body)),
		"Content-Type", "application/json", "Webhook-Id", id, "Webhook-Timestamp", ts,
		"Webhook-Signature", "v1,"+base64.StdEncoding.EncodeToString(m.Sum(nil)))
}

func TestAppAPI(t *testing.T) {
	a := newAppHook(t)
	a.answer("login", 200, `{"tier": "gold", "roles": "member"}`)
	h := startHooked(t, a, "login")
	login := h.login("ivan")
	tok, openid := login.str("token"), login.str("openid")
	now := time.Now()

	set := `{"action":"set_claims","openid":"` + openid + `","claims":{"tier":"platinum","uid":42}}`
	if r := signedCall(h, set, "call-1", now, hookSecret); r.status != 204 {
		t.Fatalf("set_claims: %d %s", r.status, r.body)
	}
	if r := h.do(http.MethodGet, appURL+"/x", nil, bearer(tok)...); r.str("path") != "platinum|member|42" {
		t.Fatalf("claims after set_claims, same token: %s", r.body)
	}

	// Refused, and nothing changed: bad signature, stale, repeated id, bad input.
	other := "whsec_b3RoZXItc2VjcmV0LW9mLWFub3RoZXItYXBwLTAxMjM="
	bad := `{"action":"set_claims","openid":"` + openid + `","claims":{"tier":"hacked"}}`
	expectError(t, signedCall(h, bad, "call-2", now, other), 401, "invalid_signature")
	expectError(t, signedCall(h, bad, "call-3", now.Add(-6*time.Minute), hookSecret), 401, "invalid_signature")
	expectError(t, signedCall(h, bad, "call-1", now, hookSecret), 401, "invalid_signature")
	expectError(t, signedCall(h, `{"action":"grant","openid":"`+openid+`"}`, "call-4", now, hookSecret), 400, "invalid_request")
	expectError(t, signedCall(h, `{"action":"end_sessions"}`, "call-5", now, hookSecret), 400, "invalid_request")
	expectError(t, signedCall(h, `{"action":"set_claims","openid":"`+openid+`","claims":{"openid":"x"}}`, "call-6", now, hookSecret), 400, "invalid_request")
	expectError(t, signedCall(h, `not json`, "call-7", now, hookSecret), 400, "invalid_request")
	expectError(t, h.do(http.MethodPost, appURL+"/wx/app", strings.NewReader(bad)), 401, "invalid_signature")
	if r := h.do(http.MethodGet, appURL+"/x", nil, bearer(tok)...); r.str("path") != "platinum|member|42" {
		t.Fatalf("a refused call changed the claims: %s", r.body)
	}

	// end_sessions: every session of the user ends; a later login works.
	second := h.token("ivan")
	if r := signedCall(h, `{"action":"end_sessions","openid":"`+openid+`"}`, "call-8", now, hookSecret); r.status != 204 {
		t.Fatalf("end_sessions: %d %s", r.status, r.body)
	}
	for _, tk := range []string{tok, second} {
		expectError(t, h.do(http.MethodGet, appURL+"/x", nil, bearer(tk)...), 401, "invalid_token")
		expectError(t, h.do(http.MethodPost, appURL+"/wx/refresh", nil, bearer(tk)...), 401, "invalid_token")
	}
	if r := h.do(http.MethodGet, appURL+"/x", nil, bearer(h.token("ivan"))...); r.status != 200 || r.str("path") != "gold|member|42" {
		t.Fatalf("login after end_sessions: %d %s", r.status, r.body)
	}
}

// expectRefusal asserts the app's refusal reached the client as the app
// answered it, with "refused_by": "app", and nothing else.
func expectRefusal(t *testing.T, r reply, name, message string) {
	t.Helper()
	expectError(t, r, 403, name)
	if r.str("message") != message || r.str("refused_by") != "app" || len(r.json) != 3 {
		t.Fatalf("want the app's refusal %s %q with refused_by app, got %s", name, message, r.body)
	}
}

// The app refuses a login, a phone number or decrypted data on purpose
// with 403 {"error", "message"}: the client gets that, with "refused_by":
// "app", and nothing is handed out.
func TestAppHookRefusal(t *testing.T) {
	a := newAppHook(t)
	h := startHooked(t, a, "login phone decrypt")
	h.mock(http.MethodPost, "/wxmock/reset")
	before := h.metrics()

	// login: no token, no session; the first login is given back.
	a.answer("login", 403, `{"error":"banned","message":"this account is closed; write to help@example.com"}`)
	r := h.postJSON(appURL+"/wx/login", map[string]string{"code": h.code("rita")})
	expectRefusal(t, r, "banned", "this account is closed; write to help@example.com")
	if ev := a.last("login"); ev["first_login"] != true {
		t.Fatalf("login event: %v", ev)
	}
	a.answer("login", 204, "")
	tok := h.login("rita").str("token")
	if ev := a.last("login"); ev["first_login"] != true {
		t.Fatalf("a refused first login was remembered: %v", ev)
	}
	after := h.metrics()
	if got := after[`wxauth_logins_total{errcode="",platform="wechat",result="refused_by_app"}`] - before[`wxauth_logins_total{errcode="",platform="wechat",result="refused_by_app"}`]; got != 1 {
		t.Errorf("refused_by_app logins went up by %v, want 1", got)
	}
	if _, ok := after[`wxauth_logins_total{errcode="",platform="wechat",result="banned"}`]; ok {
		t.Error("the app's error name became a metric label")
	}

	// phone: no number, and none kept for a retry.
	code := h.mock(http.MethodGet, "/wxmock/phonecode?user=rita&phone=13700002222").str("code")
	a.answer("phone", 403, `{"error":"phone_taken","message":"这个号码已绑定其他账号"}`)
	r = h.postJSON(appURL+"/wx/phone", map[string]string{"code": code}, bearer(tok)...)
	expectRefusal(t, r, "phone_taken", "这个号码已绑定其他账号")
	a.answer("phone", 204, "")
	r = h.postJSON(appURL+"/wx/phone", map[string]string{"code": code}, bearer(tok)...)
	if r.status == 200 || strings.Contains(string(r.body), "13700002222") {
		t.Fatalf("the refused number was handed out on a retry: %d %s", r.status, r.body)
	}

	// decrypt: no data.
	data := h.mock(http.MethodGet, "/wxmock/userinfo?user=rita")
	a.answer("decrypt", 403, `{"error":"not_allowed","message":""}`)
	r = h.postJSON(appURL+"/wx/decrypt", map[string]any{"encryptedData": data.str("encryptedData"), "iv": data.str("iv")}, bearer(tok)...)
	expectRefusal(t, r, "not_allowed", "the app refused this request")
	if strings.Contains(string(r.body), "openId") {
		t.Fatalf("decrypted data with a refusal: %s", r.body)
	}

	// A 403 that is not exactly a refusal stays 502 hook_failed.
	for _, body := range []string{
		``, `forbidden`, `{"error":"Banned","message":"no"}`, `{"error":"banned"}`,
		`{"error":"banned","message":"no","refused_by":"app"}`,
		`{"error":"banned","message":"` + strings.Repeat("x", 201) + `"}`,
	} {
		a.answer("login", 403, body)
		r := h.postJSON(appURL+"/wx/login", map[string]string{"code": h.code("rita")})
		expectError(t, r, 502, "hook_failed")
		if r.str("refused_by") != "" || r.str("token") != "" {
			t.Fatalf("malformed 403 %q: %s", body, r.body)
		}
	}
}
