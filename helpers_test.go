package wxauth_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	_ "github.com/wxauth/caddy-wxauth"
	_ "github.com/wxauth/caddy-wxauth/wxmock" // the WeChat stand-in the configs run
)

// Ports of the in-process Caddy that caddytest runs once per test binary.
const (
	appURL   = "http://127.0.0.1:9080"
	mockURL  = "http://127.0.0.1:9081"
	testApp  = "wxtest0123456789"
	testKey  = "dGVzdC1zaWduaW5nLWtleS0wMTIzNDU2Nzg5YWJjZGVm" // 44 chars, 33 bytes
	adminURL = "http://localhost:2999"
)

var storageDir string

func TestMain(m *testing.M) {
	tmp, err := os.MkdirTemp("", "wxauth-test-")
	if err != nil {
		panic(err)
	}
	storageDir = tmp
	os.Setenv("XDG_DATA_HOME", tmp+"/data")
	os.Setenv("XDG_CONFIG_HOME", tmp+"/config")
	code := m.Run()
	os.RemoveAll(tmp)
	os.Exit(code)
}

// config is a Caddyfile with wxmock on :9081 and an app on :9080 whose
// upstream echoes what wxauth handed it. wxauthBody goes inside wxauth { }.
func config(wxauthBody string) string { return configFor(testApp, wxauthBody) }

// configFor is config for another app_id.
func configFor(appID, wxauthBody string) string {
	return fmt.Sprintf(`{
	admin localhost:2999
	http_port 9080
	https_port 9443
	grace_period 1ns
	auto_https off
	storage file_system %s/storage
}
http://127.0.0.1:9081 {
	wxmock {
		app_id %s
		app_secret test-secret
	}
}
http://127.0.0.1:9080 {
	@public path /public/*
	handle @public {
		respond "public {http.request.header.X-Wx-Openid}"
	}
	handle {
		wxauth {
			app_id %s
			app_secret test-secret
			api_base %s
			%s
		}
		header Content-Type application/json
		respond `+"`"+`{"hdr_openid":"{http.request.header.X-Wx-Openid}","hdr_unionid":"{http.request.header.X-Wx-Unionid}","hdr_uid":"{http.request.header.X-Wx-Uid}","id":"{http.auth.user.id}","openid":"{http.auth.user.openid}","unionid":"{http.auth.user.unionid}","path":"{http.request.uri.path}"}`+"`"+`
	}
}
`, storageDir, appID, appID, mockURL, wxauthBody)
}

// harness wraps caddytest with the calls a mini-program makes.
type harness struct {
	t  *testing.T
	tc *caddytest.Tester
}

func start(t *testing.T, wxauthBody string) *harness {
	t.Helper()
	return startConfig(t, config(wxauthBody))
}

func startConfig(t *testing.T, cfg string) *harness {
	t.Helper()
	tc := caddytest.NewTester(t)
	tc.InitServer(cfg, "caddyfile")
	if t.Failed() {
		t.FailNow()
	}
	return &harness{t: t, tc: tc}
}

// reply is a decoded HTTP answer.
type reply struct {
	status int
	header http.Header
	body   []byte
	json   map[string]any
}

func (r reply) str(k string) string {
	s, _ := r.json[k].(string)
	return s
}

func (h *harness) do(method, u string, body io.Reader, headers ...string) reply {
	h.t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		h.t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := h.tc.Client.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, header: resp.Header, body: b}
	_ = json.Unmarshal(b, &r.json)
	return r
}

func (h *harness) postJSON(u string, v any, headers ...string) reply {
	h.t.Helper()
	b, _ := json.Marshal(v)
	return h.do(http.MethodPost, u, bytes.NewReader(b), append([]string{"Content-Type", "application/json"}, headers...)...)
}

// code asks wxmock for a wx.login code of user; extra is a raw query suffix.
func (h *harness) code(user string, extra ...string) string {
	h.t.Helper()
	r := h.do(http.MethodGet, mockURL+"/wxmock/login?user="+url.QueryEscape(user)+strings.Join(extra, ""), nil)
	if r.status != 200 || r.str("code") == "" {
		h.t.Fatalf("wxmock login: %d %s", r.status, r.body)
	}
	return r.str("code")
}

// login runs the whole wx.login + /wx/login flow and returns the reply.
func (h *harness) login(user string, extra ...string) reply {
	h.t.Helper()
	r := h.postJSON(appURL+"/wx/login", map[string]string{"code": h.code(user, extra...)})
	if r.status != 200 {
		h.t.Fatalf("login %s: %d %s", user, r.status, r.body)
	}
	return r
}

func (h *harness) token(user string) string {
	h.t.Helper()
	return h.login(user).str("token")
}

func bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

// expectError asserts a contract error reply.
func expectError(t *testing.T, r reply, status int, code string) {
	t.Helper()
	if r.status != status || r.str("error") != code {
		t.Fatalf("want %d %s, got %d %s", status, code, r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Fatalf("error Content-Type = %q", ct)
	}
	if r.str("message") == "" {
		t.Fatalf("error without message: %s", r.body)
	}
}

// mock calls a wxmock developer endpoint and decodes its JSON answer.
func (h *harness) mock(method, pathAndQuery string) reply {
	h.t.Helper()
	r := h.do(method, mockURL+pathAndQuery, nil)
	if r.status/100 != 2 {
		h.t.Fatalf("wxmock %s: %d %s", pathAndQuery, r.status, r.body)
	}
	return r
}

// stats returns wxmock's count of calls to one WeChat API.
func (h *harness) stats(api string) int {
	h.t.Helper()
	n, _ := h.mock(http.MethodGet, "/wxmock/stats").json[api].(float64)
	return int(n)
}

// eventually polls f until it returns true or d passes.
func eventually(t *testing.T, d time.Duration, f func() bool) bool {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if f() {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return f()
}
