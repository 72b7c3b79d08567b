package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The demo logs in users of all six platforms on one machine, as the
// README's quick start shows: example.Caddyfile run from the repository
// (its Alipay keys are files read relative to it), each platform's code
// from its wxmock stand-in, and the app reached with the token.
func TestDemoEveryPlatform(t *testing.T) {
	config, ports := demoConfig(t)
	var out bytes.Buffer
	cmd := exec.Command(caddyBinary(t), "run", "--config", config, "--adapter", "caddyfile")
	cmd.Dir = repoPath() // as scripts/demo.sh runs it
	cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+t.TempDir(), "XDG_CONFIG_HOME="+t.TempDir())
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	mock := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	app := fmt.Sprintf("http://127.0.0.1:%d", ports[2])
	if !eventually(t, 30*time.Second, func() bool { return answers(app + "/healthz") }) {
		t.Fatalf("the demo did not start:\n%s", out.String())
	}

	for _, p := range []struct{ name, codeField string }{
		{"wechat", "code"}, {"qq", "code"}, {"douyin", "code"}, {"alipay", "authCode"}, {"baidu", "code"}, {"kuaishou", "code"},
	} {
		prefix := "/" + p.name
		if p.name == "wechat" {
			prefix = ""
		}
		code := demoJSON(t, http.MethodGet, mock+prefix+"/wxmock/login?user=alice", "", "")[p.codeField]
		login := demoJSON(t, http.MethodPost, app+"/wx/login", fmt.Sprintf(`{"code":%q,"platform":%q}`, code, p.name), "")
		tok, _ := login["token"].(string)
		if who := demoJSON(t, http.MethodGet, app+"/api/whoami", "", tok); tok == "" || who["openid"] != login["openid"] {
			t.Fatalf("%s: login %v, whoami %v", p.name, login, who)
		}
		if p.name == "alipay" {
			// Alipay's phone number, sealed with the demo's key files.
			raw := demoBody(t, http.MethodGet, mock+"/alipay/wxmock/phone?phone=13800138000", "", "")
			if ph := demoJSON(t, http.MethodPost, app+"/wx/phone", raw, tok); ph["pure_phone_number"] != "13800138000" {
				t.Fatalf("alipay phone: %v", ph)
			}
		}
	}
	// A Douyin guest, by anonymous_code alone.
	anon := demoJSON(t, http.MethodGet, mock+"/douyin/wxmock/login?user=phone1&anonymous=1", "", "")["anonymous_code"]
	if guest := demoJSON(t, http.MethodPost, app+"/wx/login", fmt.Sprintf(`{"anonymous_code":%q,"platform":"douyin"}`, anon), ""); guest["token"] == nil {
		t.Fatalf("douyin guest: %v", guest)
	}
}

// demoBody sends a request (JSON body, bearer token when given) and returns
// the answer's body, which must come with 200.
func demoBody(t *testing.T, method, url, body, token string) string {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %d %s", method, url, resp.StatusCode, b)
	}
	return string(b)
}

// demoJSON is demoBody's answer as a JSON object.
func demoJSON(t *testing.T, method, url, body, token string) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal([]byte(demoBody(t, method, url, body, token)), &v); err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return v
}
