package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	_ "github.com/wxauth/caddy-wxauth"
	_ "github.com/wxauth/caddy-wxauth/wxmock" // the WeChat stand-in the configs run
)

const (
	testApp = "wxtest0123456789"
	testKey = "dGVzdC1zaWduaW5nLWtleS0wMTIzNDU2Nzg5YWJjZGVm" // 44 chars, 33 bytes
)

// Addresses of the in-process Caddy that caddytest runs once per test
// binary. TestMain picks the ports free at run time, so that runs sharing a
// machine (two clones, a demo) never reach each other's Caddy.
var (
	adminPort, appPort, mockPort, httpsPort int
	appURL, mockURL, adminURL               string
)

// storageDir is this run's own folder: Caddy's storage and data, built
// binaries.
var storageDir string

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "wxauth-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	storageDir = tmp
	os.Setenv("XDG_DATA_HOME", tmp+"/data")
	os.Setenv("XDG_CONFIG_HOME", tmp+"/config")

	ports, err := freePorts(4)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	adminPort, appPort, mockPort, httpsPort = ports[0], ports[1], ports[2], ports[3]
	// caddytest starts its Caddy on this admin port, and reuses whatever
	// answers there: with its default (2999) two runs would share one Caddy.
	caddytest.Default.AdminPort = adminPort
	appURL = fmt.Sprintf("http://127.0.0.1:%d", appPort)
	mockURL = fmt.Sprintf("http://127.0.0.1:%d", mockPort)
	adminURL = fmt.Sprintf("http://localhost:%d", adminPort)
	return m.Run()
}

// repoPath is a path in the repository, from this package's folder, where
// go test runs the tests: repoPath("docs", "x.md") is ../docs/x.md.
func repoPath(elem ...string) string {
	return filepath.Join(append([]string{".."}, elem...)...)
}

// freePorts returns n distinct ports for Caddy, reserved for this run (see
// reservePort): two runs on one machine never share one.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		p, err := reservePort()
		if err != nil {
			return nil, err
		}
		ports = append(ports, p)
	}
	return ports, nil
}

// freePort returns a port for Caddy, reserved for this run.
func freePort(t *testing.T) int {
	t.Helper()
	p, err := freePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	return p[0]
}

// serverPort returns a loopback port that was free a moment ago, for a
// server that does not share ports (redis-server): a reserved one would
// refuse it. redistest retries when another process took it meanwhile.
func serverPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// globalOptions is the global block of the caddytest Caddy; extra goes
// inside it.
func globalOptions(extra string) string {
	return fmt.Sprintf(`{
	admin localhost:%d
	http_port %d
	https_port %d
	grace_period 1ns
	auto_https off
	storage file_system %s/storage
	%s
}
`, adminPort, appPort, httpsPort, storageDir, extra)
}

// config is a Caddyfile with wxmock on mockURL and an app on appURL whose
// upstream echoes what wxauth handed it. wxauthBody goes inside wxauth { }.
func config(wxauthBody string) string { return configFor(testApp, wxauthBody) }

// configFor is config for another app_id.
func configFor(appID, wxauthBody string) string {
	return globalOptions("") + fmt.Sprintf(`%s {
	wxmock {
		app_id %s
		app_secret test-secret
	}
}
%s {
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
		respond `+"`"+`{"hdr_openid":"{http.request.header.X-Wx-Openid}","hdr_unionid":"{http.request.header.X-Wx-Unionid}","hdr_uid":"{http.request.header.X-Wx-Uid}","hdr_platform":"{http.request.header.X-Wx-Platform}","hdr_surface":"{http.request.header.X-Wx-Surface}","hdr_appid":"{http.request.header.X-Wx-Appid}","hdr_anonymous":"{http.request.header.X-Wx-Anonymous}","id":"{http.auth.user.id}","openid":"{http.auth.user.openid}","unionid":"{http.auth.user.unionid}","path":"{http.request.uri.path}"}`+"`"+`
	}
}
`, mockURL, appID, appURL, appID, mockURL, wxauthBody)
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

// loads numbers the configs startConfig loads.
var loads atomic.Int64

// startConfig loads cfg (a config or configFor, maybe edited) into the
// caddytest Caddy and returns once the new config answers. Each load gets a
// route that answers its own number, so even an unchanged config is really
// reloaded, and the wait ends on a fact: this load's number comes back.
func startConfig(t *testing.T, cfg string) *harness {
	t.Helper()
	site := appURL + " {\n"
	if !strings.Contains(cfg, site) {
		t.Fatalf("config has no site %s", appURL)
	}
	id := strconv.FormatInt(loads.Add(1), 10)
	cfg = strings.Replace(cfg, site, site+"\thandle "+loadedPath+" {\n\t\trespond \""+id+"\"\n\t}\n", 1)
	tc := caddytest.NewTester(t)
	tc.InitServer(cfg, "caddyfile")
	if t.Failed() {
		t.FailNow()
	}
	h := &harness{t: t, tc: tc}
	var last string
	if !eventually(t, 10*time.Second, func() bool {
		last = h.try(http.MethodGet, appURL+loadedPath)
		return last == "200 "+id
	}) {
		t.Fatalf("config %s did not answer: last reply %q", id, last)
	}
	return h
}

// loadedPath is the route of the app site that answers the config's number.
const loadedPath = "/wxtest/loaded"

// try makes a request and returns "status body", or the error.
func (h *harness) try(method, u string) string {
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		return err.Error()
	}
	resp, err := h.tc.Client.Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strconv.Itoa(resp.StatusCode) + " " + string(b)
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
	// Right after a config load, a server of the config before may still
	// accept a connection on the shared listener and close it as it stops:
	// a request without a body is sent again, until a deadline, on a fresh
	// connection.
	for deadline := time.Now().Add(5 * time.Second); err != nil && body == nil && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond) // polling for a fact, with a deadline
		h.tc.Client.CloseIdleConnections()
		resp, err = h.tc.Client.Do(req)
	}
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

// eventually polls f until it returns true or d passes: every wait in these
// tests is for a fact, with a deadline.
func eventually(t *testing.T, d time.Duration, f func() bool) bool {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if f() {
			return true
		}
		time.Sleep(50 * time.Millisecond) // the poll's interval
	}
	return f()
}
