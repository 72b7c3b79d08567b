//go:build e2e

// End to end: this app behind a real Caddy that runs ../Caddyfile (wxauth with
// app_hook and app_api, wxmock standing in for WeChat). Logs in, binds a phone number,
// decrypts user info, changes a role and bans through app_api, sends a
// subscribe message with wxauth's access_token, logs out, and checks that
// the app's store holds exactly what wxmock said.
//
// Caddy is $CADDY_BIN when set, else built from the repository's ./cmd/caddy.
// Every port is picked at run time.
//
//	go test -tags e2e -run E2E -count=1 .

package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// proc is a started process whose output is kept for error messages.
type proc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.out.String()
	if len(s) > 8000 {
		s = s[len(s)-8000:]
	}
	return s
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func startProc(t *testing.T, dir string, env []string, name string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(name, args...), done: make(chan struct{})}
	p.cmd.Dir = dir
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// eventually polls f until it is true, for at most d.
func eventually(t *testing.T, what string, d time.Duration, p *proc, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !f() {
		if p != nil && p.exited() {
			t.Fatalf("%s: process exited (%v):\n%s", what, p.cmd.ProcessState, p.output())
		}
		if time.Now().After(deadline) {
			msg := ""
			if p != nil {
				msg = ":\n" + p.output()
			}
			t.Fatalf("%s: not within %s%s", what, d, msg)
		}
		time.Sleep(100 * time.Millisecond) // the poll's interval
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func goBuild(t *testing.T, dir, out, pkg string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = dir
	cmd.Env = append([]string{"GOTOOLCHAIN=local"}, os.Environ()...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
}

type httpReply struct {
	Status int
	Body   map[string]any
}

func call(t *testing.T, method, url string, body any, token string) httpReply {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	r := httpReply{Status: res.StatusCode}
	if len(b) > 0 {
		if err := json.Unmarshal(b, &r.Body); err != nil {
			t.Fatalf("%s %s: %d %s", method, url, res.StatusCode, b)
		}
	}
	return r
}

func sidOf(t *testing.T, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", token)
	}
	b, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var c struct {
		SID string `json:"sid"`
	}
	_ = json.Unmarshal(b, &c)
	if c.SID == "" {
		t.Fatal("the token names no session")
	}
	return c.SID
}

// timesIn replaces every event time in v by "T" after checking that it lies
// between from and to (unix seconds); decrypted data is left as it is.
func timesIn(t *testing.T, v any, from, to int64) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	out := map[string]any{}
	for k, x := range m {
		switch n, isNum := x.(float64); {
		case isNum && (k == "time" || k == "login" || k == "logout" || k == "last_login"):
			if int64(n) < from || int64(n) > to {
				t.Errorf("%s %v not within %d..%d", k, n, from, to)
			}
			out[k] = "T"
		case k == "data":
			out[k] = x
		default:
			out[k] = timesIn(t, x, from, to)
		}
	}
	return out
}

func TestE2E(t *testing.T) {
	tmp := t.TempDir()
	secretKey := make([]byte, 32)
	_, _ = rand.Read(secretKey)
	secret := "whsec_" + base64.StdEncoding.EncodeToString(secretKey)
	storeFile := filepath.Join(tmp, "users.json")

	caddyfile, err := filepath.Abs(filepath.Join("..", "Caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	appBin := filepath.Join(tmp, "app")
	goBuild(t, ".", appBin, ".")
	appEnv := []string{"WXAUTH_SECRET=" + secret, "STORE=" + storeFile}
	app := startProc(t, tmp, append(appEnv, "PORT=0"), appBin)
	var appPort string
	listening := regexp.MustCompile(`listening on http://127\.0\.0\.1:(\d+)`)
	eventually(t, "the app prints its port", 10*time.Second, app, func() bool {
		if m := listening.FindStringSubmatch(app.output()); m != nil {
			appPort = m[1]
		}
		return appPort != ""
	})

	caddyBin := os.Getenv("CADDY_BIN")
	if caddyBin == "" {
		caddyBin = filepath.Join(tmp, "caddy")
		goBuild(t, filepath.Join("..", "..", ".."), caddyBin, "./cmd/caddy")
	}
	mockPort, sitePort := freePort(t), freePort(t)
	site := fmt.Sprintf("http://127.0.0.1:%d", sitePort)
	mock := fmt.Sprintf("http://127.0.0.1:%d", mockPort)
	caddy := startProc(t, tmp, []string{
		fmt.Sprint("ADMIN_PORT=", freePort(t)), fmt.Sprint("MOCK_PORT=", mockPort), fmt.Sprint("SITE_PORT=", sitePort),
		"APP_PORT=" + appPort, "WXAUTH_SECRET=" + secret,
		"XDG_DATA_HOME=" + filepath.Join(tmp, "data"), "XDG_CONFIG_HOME=" + filepath.Join(tmp, "config"),
	}, caddyBin, "run", "--config", caddyfile, "--adapter", "caddyfile")
	eventually(t, "caddy answers /healthz", 60*time.Second, caddy, func() bool {
		res, err := http.Get(site + "/healthz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == 200
	})

	mockGet := func(path string) map[string]any {
		r := call(t, "GET", mock+path, nil, "")
		if r.Status != 200 {
			t.Fatalf("%s: %+v", path, r)
		}
		return r.Body
	}
	login := func(user string) httpReply {
		code := mockGet("/wxmock/login?user=" + user)["code"]
		return call(t, "POST", site+"/wx/login", map[string]any{"code": code}, "")
	}
	runAdmin := func(args ...string) {
		cmd := exec.Command(appBin, args...)
		cmd.Env = append(os.Environ(), append(appEnv, "WXAUTH_API="+site+"/wx/app", "WECHAT_API="+mock)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("app %v: %v\n%s", args, err, out)
		}
	}
	whoami := func(token string) httpReply { return call(t, "GET", site+"/api/whoami", nil, token) }
	from := time.Now().Unix()

	// Log in: the hook registers the user and its claims reach the upstream.
	a := login("alice")
	if a.Status != 200 {
		t.Fatalf("login: %+v", a)
	}
	aliceOpenID, _ := a.Body["openid"].(string)
	aliceToken, _ := a.Body["token"].(string)
	sidA := sidOf(t, aliceToken)
	if r := whoami(aliceToken); !reflect.DeepEqual(r, httpReply{200, map[string]any{"openid": aliceOpenID, "uid": "1", "role": "member"}}) {
		t.Fatalf("whoami: %+v", r)
	}

	// Bind a phone number; the hook runs before the client gets the answer.
	phoneCode := mockGet("/wxmock/phonecode?phone=13912345678&cc=num")["code"]
	ph := call(t, "POST", site+"/wx/phone", map[string]any{"code": phoneCode}, aliceToken)
	if ph.Status != 200 || ph.Body["purePhoneNumber"] != "13912345678" {
		t.Fatalf("phone: %+v", ph)
	}

	// Decrypt the user info that wx.getUserInfo would give.
	dec := call(t, "POST", site+"/wx/decrypt", mockGet("/wxmock/userinfo?user=alice"), aliceToken)
	if dec.Status != 200 || dec.Body["nickName"] != "alice" || dec.Body["watermark"] == nil {
		t.Fatalf("decrypt: %+v", dec)
	}
	// wxmock's own word for alice's ids, inside the encrypted data.
	if dec.Body["openId"] != aliceOpenID || dec.Body["unionId"] != a.Body["unionid"] {
		t.Fatalf("decrypted ids %v %v, login said %v %v", dec.Body["openId"], dec.Body["unionId"], aliceOpenID, a.Body["unionid"])
	}
	profile := map[string]any{}
	for k, v := range dec.Body {
		if k != "watermark" {
			profile[k] = v
		}
	}

	// A new role through app_api reaches the same token's requests.
	runAdmin("role", aliceOpenID, "admin")
	eventually(t, "the role claim follows", 10*time.Second, nil, func() bool {
		r := whoami(aliceToken)
		return r.Status == 200 && r.Body["role"] == "admin"
	})

	// Ban: app_api end_sessions refuses the token; the hook refuses the next login.
	runAdmin("ban", aliceOpenID)
	eventually(t, "the banned token is refused", 10*time.Second, nil, func() bool {
		r := whoami(aliceToken)
		return r.Status == 401 && r.Body["error"] == "invalid_token"
	})
	if r := login("alice"); r.Status != 502 || r.Body["error"] != "hook_failed" || r.Body["token"] != nil {
		t.Fatalf("banned login: %+v", r)
	}

	// Another user logs in and out; the logout event is best effort, after the fact.
	b := login("bob")
	if b.Status != 200 {
		t.Fatalf("bob's login: %+v", b)
	}
	bobOpenID, _ := b.Body["openid"].(string)
	bobToken, _ := b.Body["token"].(string)
	sidB := sidOf(t, bobToken)

	// A subscribe message with wxauth's access_token; after WeChat expired
	// every token, the app reports its token stale and sends again.
	runAdmin("notify", bobOpenID, "tmpl-welcome", "welcome")
	runAdmin("notify", bobOpenID, "tmpl-welcome", "welcome")
	if n := mockGet("/wxmock/stats")["subscribe_send"]; n != float64(2) {
		t.Fatalf("subscribe_send calls: %v, want 2", n)
	}
	call(t, "POST", mock+"/wxmock/expire_tokens", nil, "")
	runAdmin("notify", bobOpenID, "tmpl-welcome", "welcome again")
	if n := mockGet("/wxmock/stats")["subscribe_send"]; n != float64(4) {
		t.Fatalf("subscribe_send calls after the tokens expired: %v, want 4 (refused, then sent)", n)
	}
	if r := call(t, "POST", site+"/wx/logout", nil, bobToken); r.Status != 204 {
		t.Fatalf("logout: %+v", r)
	}
	eventually(t, "the logout event is stored", 10*time.Second, app, func() bool {
		db, err := ReadStore(storeFile)
		if err != nil || db.Users[bobOpenID] == nil {
			return false
		}
		s := db.Users[bobOpenID].Sessions[sidB]
		return s != nil && s.Logout != 0
	})

	to := time.Now().Unix()
	raw, err := os.ReadFile(storeFile)
	if err != nil {
		t.Fatal(err)
	}
	var db struct {
		Users map[string]any `json:"users"`
	}
	if err := json.Unmarshal(raw, &db); err != nil {
		t.Fatal(err)
	}
	withUnionID := func(u map[string]any, body map[string]any) map[string]any {
		if id, _ := body["unionid"].(string); id != "" {
			u["unionid"] = id
		}
		return u
	}
	want := map[string]any{
		aliceOpenID: withUnionID(map[string]any{
			"uid": "1", "openid": aliceOpenID, "role": "admin", "banned": true, "logins": float64(1), "last_login": "T",
			"sessions": map[string]any{sidA: map[string]any{"login": "T"}},
			"phone": map[string]any{
				"phoneNumber": ph.Body["phoneNumber"], "purePhoneNumber": "13912345678", "countryCode": "86", "sid": sidA, "time": "T",
			},
			"profile": map[string]any{"data": profile, "sid": sidA, "time": "T"},
		}, a.Body),
		bobOpenID: withUnionID(map[string]any{
			"uid": "2", "openid": bobOpenID, "role": "member", "banned": false, "logins": float64(1), "last_login": "T",
			"sessions": map[string]any{sidB: map[string]any{"login": "T", "logout": "T"}},
		}, b.Body),
	}
	if got := timesIn(t, db.Users, from, to); !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", "  ")
		w, _ := json.MarshalIndent(want, "", "  ")
		t.Errorf("store:\n%s\nwant:\n%s", g, w)
	}
}
