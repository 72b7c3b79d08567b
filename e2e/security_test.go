package e2e

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestConcurrentLoginsWithOneCodeMakeOneCall(t *testing.T) {
	h := start(t, "")
	h.mock(http.MethodPost, "/wxmock/reset")
	code := h.code("rita")
	var wg sync.WaitGroup
	tokens := make([]string, 8)
	for i := range tokens {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r := h.postJSON(appURL+"/wx/login", map[string]string{"code": code, "nonce": "rita-nonce-0123456789"})
			if r.status != 200 {
				t.Errorf("login %d: %d %s", i, r.status, r.body)
			}
			tokens[i] = r.str("token")
		}(i)
	}
	wg.Wait()
	for _, tk := range tokens {
		if tk == "" || sid(t, tk) != sid(t, tokens[0]) {
			t.Fatal("merged logins got different sessions")
		}
	}
	if n := h.stats("jscode2session"); n != 1 {
		t.Fatalf("%d code2Session calls for one code, want 1", n)
	}
}

func TestLoginLimit(t *testing.T) {
	h := start(t, "login_limit 3 1m")
	var tok string
	for i := 0; i < 3; i++ {
		tok = h.login("sam").str("token")
	}
	r := h.postJSON(appURL+"/wx/login", map[string]string{"code": h.code("sam")})
	expectError(t, r, 429, "rate_limited")
	if ra := r.header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Fatalf("Retry-After = %q", ra)
	}
	// Protected requests are not limited.
	if r := h.do(http.MethodGet, appURL+"/x", nil, bearer(tok)...); r.status != 200 {
		t.Fatalf("protected request limited: %d", r.status)
	}
}

// TestLogsHoldNoSecrets runs every flow with debug logs and access logs on,
// then scans the log for anything that must never be logged.
func TestLogsHoldNoSecrets(t *testing.T) {
	logFile := filepath.Join(t.TempDir(), "caddy.log")
	const sessionKey = "c2VjcmV0LXNlc3Npb25rZQ=="
	const phone = "13912345678"
	cfg := strings.Replace(config(`app_hook http://127.0.0.1:1/unreachable {
				secret `+hookSecret+`
			}`), globalOptions(""),
		globalOptions("debug\n\tlog {\n\t\toutput file "+logFile+"\n\t\tlevel DEBUG\n\t}"), 1)
	cfg = strings.Replace(cfg, appURL+" {\n", appURL+" {\n\tlog {\n\t\toutput file "+logFile+"\n\t}\n", 1)
	if strings.Count(cfg, "output file "+logFile) != 2 {
		t.Fatalf("the log options did not go into the config:\n%s", cfg)
	}
	h := startConfig(t, cfg)
	// The hook is down: logins fail, which logs errors.
	expectError(t, h.postJSON(appURL+"/wx/login", map[string]string{"code": h.code("vera")}), 502, "hook_failed")

	hook := newAppHook(t)
	h = startConfig(t, strings.Replace(cfg, "http://127.0.0.1:1/unreachable {", hook.url+" {\n\t\t\t\tevents login phone decrypt logout", 1))
	login := h.postJSON(appURL+"/wx/login", map[string]string{"code": h.code("vera", "&session_key="+url.QueryEscape(sessionKey))})
	tok := login.str("token")
	for _, c := range []string{"invalid", "busy", "html", "reset"} {
		h.postJSON(appURL+"/wx/login", map[string]string{"code": c})
	}
	h.do(http.MethodGet, appURL+"/x", nil, bearer(tok)...)
	h.do(http.MethodGet, appURL+"/x", nil, bearer(tok+"x")...)
	data := h.mock(http.MethodGet, "/wxmock/userinfo?user=vera")
	h.postJSON(appURL+"/wx/decrypt", map[string]any{"encryptedData": data.str("encryptedData"), "iv": data.str("iv")}, bearer(tok)...)
	h.postJSON(appURL+"/wx/decrypt", map[string]any{"encryptedData": data.str("encryptedData"), "iv": "AAAA"}, bearer(tok)...)
	pc := h.mock(http.MethodGet, "/wxmock/phonecode?user=vera&phone="+phone).str("code")
	if r := h.postJSON(appURL+"/wx/phone", map[string]string{"code": pc}, bearer(tok)...); r.status != 200 {
		t.Fatalf("phone: %d %s", r.status, r.body)
	}
	h.mock(http.MethodPost, "/wxmock/expire_tokens")
	pc = h.mock(http.MethodGet, "/wxmock/phonecode?user=vera&phone="+phone).str("code")
	h.postJSON(appURL+"/wx/phone", map[string]string{"code": pc}, bearer(tok)...)
	h.do(http.MethodGet, appURL+"/wx/session", nil, bearer(tok)...)
	fresh := h.do(http.MethodPost, appURL+"/wx/refresh", nil, bearer(tok)...).str("token")
	h.do(http.MethodPost, appURL+"/wx/logout", nil, bearer(fresh)...)
	// The access_token wxauth used: wxmock hands out the current one again.
	at := h.postJSON(mockURL+"/cgi-bin/stable_token", map[string]any{"grant_type": "client_credential", "appid": testApp, "secret": "test-secret"}).str("access_token")

	logs, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	if len(logs) < 1000 || !strings.Contains(string(logs), `"level":"debug"`) {
		t.Fatalf("expected debug logs, got %d bytes", len(logs))
	}
	// Endpoint logs carry the request id that the access log shows too.
	for _, line := range strings.Split(string(logs), "\n") {
		if strings.Contains(line, `"msg":"login refused by WeChat"`) && !strings.Contains(line, `"request_id":"`) {
			t.Fatalf("endpoint log without request_id: %s", line)
		}
	}
	if !strings.Contains(string(logs), `"msg":"login refused by WeChat"`) {
		t.Fatal("no log of the refused logins")
	}
	secrets := map[string]string{
		"app secret": "test-secret", "session_key": sessionKey, "session_key (url-encoded)": url.QueryEscape(sessionKey),
		"token": tok, "refreshed token": fresh, "token signature": tok[strings.LastIndex(tok, ".")+1:],
		"access_token": at, "phone number": phone, "app hook secret": hookSecret[len("whsec_"):],
	}
	if n := len(hook.events("phone")); n == 0 {
		t.Fatal("the phone event did not reach the app")
	}
	for what, s := range secrets {
		if s == "" {
			t.Fatalf("no %s to look for", what)
		}
		if strings.Contains(string(logs), s) {
			t.Errorf("the log holds the %s", what)
		}
	}
}

// TestStoreIsSealed: the store holds no session_key, access_token or user
// data in the clear, yet everything works from it.
func TestStoreIsSealed(t *testing.T) {
	const sessionKey = "c3RvcmVkLXNlc3Npb25rZQ=="
	const app = "wxsealed00000001"
	h := startConfig(t, configFor(app, ""))
	login := h.login("xena", "&session_key="+url.QueryEscape(sessionKey))
	tok := login.str("token")
	pc := h.mock(http.MethodGet, "/wxmock/phonecode?user=xena").str("code")
	if r := h.postJSON(appURL+"/wx/phone", map[string]string{"code": pc}, bearer(tok)...); r.status != 200 {
		t.Fatalf("phone: %d %s", r.status, r.body)
	}
	at := h.postJSON(mockURL+"/cgi-bin/stable_token", map[string]any{"grant_type": "client_credential", "appid": app, "secret": "test-secret"}).str("access_token")
	clear := map[string]string{"session_key": sessionKey, "access_token": at, "openid": login.str("openid"), "unionid": login.str("unionid")}

	files := 0
	err := filepath.Walk(storageDir+"/storage/wxauth/"+app, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files++
		for what, v := range clear {
			if v == "" {
				t.Fatalf("no %s to look for", what)
			}
			if strings.Contains(string(b), v) {
				t.Errorf("%s holds the %s in the clear", p, what)
			}
		}
		return nil
	})
	if err != nil || files < 4 { // a session, a session_key, a signing key, the access_token
		t.Fatalf("%d files in the store (%v)", files, err)
	}
	// And everything still works from the sealed store.
	data := h.mock(http.MethodGet, "/wxmock/userinfo?user=xena")
	if r := h.postJSON(appURL+"/wx/decrypt", map[string]any{"encryptedData": data.str("encryptedData"), "iv": data.str("iv")}, bearer(tok)...); r.status != 200 {
		t.Fatalf("decrypt with the sealed key: %d %s", r.status, r.body)
	}
	if r := h.do(http.MethodGet, appURL+"/wx/session", nil, bearer(tok)...); r.json["session_key_valid"] != true {
		t.Fatalf("session: %s", r.body)
	}
}

// Resetting the app secret changes the store key: Caddy still starts,
// the old state no longer opens (old tokens are refused), and logins work.
func TestAppSecretReset(t *testing.T) {
	const app = "wxrotated0000001"
	h := startConfig(t, configFor(app, ""))
	old := h.token("yara")
	h = startConfig(t, strings.ReplaceAll(configFor(app, ""), "test-secret", "reset-secret"))
	expectError(t, h.do(http.MethodGet, appURL+"/x", nil, bearer(old)...), 401, "invalid_token")
	tok := h.token("yara")
	if r := h.do(http.MethodGet, appURL+"/x", nil, bearer(tok)...); r.status != 200 {
		t.Fatalf("after the reset: %d %s", r.status, r.body)
	}
	data := h.mock(http.MethodGet, "/wxmock/userinfo?user=yara")
	if r := h.postJSON(appURL+"/wx/decrypt", map[string]any{"encryptedData": data.str("encryptedData"), "iv": data.str("iv")}, bearer(tok)...); r.status != 200 {
		t.Fatalf("decrypt after the reset: %d %s", r.status, r.body)
	}
}
