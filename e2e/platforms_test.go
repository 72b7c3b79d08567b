package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// otherPlatforms are the platforms served besides WeChat, with their app ids
// in the tests.
var otherPlatforms = []struct{ name, appID string }{
	{"qq", "1101000001"}, {"douyin", "tt0123456789abcdef"}, {"alipay", "2021000000000001"},
	{"baidu", "BaiduAppKey01"}, {"kuaishou", "ks0123456789"},
}

// platformsConfig is config with every platform's stand-in in wxmock and a
// wxauth serving WeChat and all five; body goes inside wxauth.
func platformsConfig(t *testing.T, body string) string {
	t.Helper()
	mock, auth := platformBlocks(t, mockURL)
	cfg := config(auth + body)
	return strings.Replace(cfg, "\twxmock {\n", "\twxmock {\n"+mock, 1)
}

// platformBlocks are the platform blocks of wxmock and of a wxauth whose
// api_base for each platform is the wxmock site at mockURL.
func platformBlocks(t *testing.T, mockURL string) (mockBlocks, authBlocks string) {
	t.Helper()
	keys, err := filepath.Abs(repoPath("examples", "keys"))
	if err != nil {
		t.Fatal(err)
	}
	var mock, auth strings.Builder
	for _, p := range otherPlatforms {
		if p.name == "alipay" {
			fmt.Fprintf(&mock, "\t\tplatform alipay {\n\t\t\tapp_id %s\n\t\t\tapp_public_key {file.%s/alipay-app-public.pem}\n\t\t\tplatform_private_key {file.%s/alipay-platform-private.pem}\n\t\t\taes_key {file.%s/alipay-aes.key}\n\t\t}\n", p.appID, keys, keys, keys)
			fmt.Fprintf(&auth, "\t\t\tplatform alipay {\n\t\t\t\tapp_id %s\n\t\t\t\tprivate_key {file.%s/alipay-app-private.pem}\n\t\t\t\talipay_public_key {file.%s/alipay-platform-public.pem}\n\t\t\t\taes_key {file.%s/alipay-aes.key}\n\t\t\t\tapi_base %s/alipay/gateway.do\n\t\t\t}\n", p.appID, keys, keys, keys, mockURL)
			continue
		}
		fmt.Fprintf(&mock, "\t\tplatform %s {\n\t\t\tapp_id %s\n\t\t\tapp_secret %s-secret\n\t\t}\n", p.name, p.appID, p.name)
		fmt.Fprintf(&auth, "\t\t\tplatform %s {\n\t\t\t\tapp_id %s\n\t\t\t\tapp_secret %s-secret\n\t\t\t\tapi_base %s/%s\n\t\t\t}\n", p.name, p.appID, p.name, mockURL, p.name)
	}
	return mock.String(), auth.String()
}

// platformCode is a login code of user on platform, as its login call gives.
func (h *harness) platformCode(platform, user string, extra ...string) string {
	h.t.Helper()
	r := h.mock(http.MethodGet, "/"+platform+"/wxmock/login?user="+url.QueryEscape(user)+strings.Join(extra, ""))
	for _, k := range []string{"code", "authCode", "anonymous_code"} {
		if c := r.str(k); c != "" {
			return c
		}
	}
	h.t.Fatalf("%s wxmock login: %s", platform, r.body)
	return ""
}

// Every platform logs in, decrypts and gets a phone number where it can,
// and logs out, on one handler that serves all six.
func TestEveryPlatform(t *testing.T) {
	h := startConfig(t, platformsConfig(t, ""))
	for _, p := range otherPlatforms {
		t.Run(p.name, func(t *testing.T) {
			h := &harness{t: t, tc: h.tc}
			r := h.postJSON(appURL+"/wx/login", map[string]string{"code": h.platformCode(p.name, "alice"), "platform": p.name})
			if r.status != 200 || r.str("token") == "" || r.str("openid") == "" {
				t.Fatalf("login: %d %s", r.status, r.body)
			}
			tok := r.str("token")
			up := h.do(http.MethodGet, appURL+"/api/me", nil, bearer(tok)...)
			if up.status != 200 || up.str("hdr_platform") != p.name || up.str("hdr_appid") != p.appID ||
				up.str("hdr_surface") != "mp" || up.str("hdr_openid") != r.str("openid") {
				t.Fatalf("upstream: %d %s", up.status, up.body)
			}
			// The same person logs in as the same openid again.
			if again := h.postJSON(appURL+"/wx/login", map[string]string{"code": h.platformCode(p.name, "alice"), "platform": p.name}); again.str("openid") != r.str("openid") {
				t.Fatalf("second login: %s", again.body)
			}
			tok = h.postJSON(appURL+"/wx/login", map[string]string{"code": h.platformCode(p.name, "alice"), "platform": p.name}).str("token")

			// User data, sealed with the session key the platform holds;
			// Alipay gives none, so it has no user data to open.
			if p.name == "alipay" {
				d := h.postJSON(appURL+"/wx/decrypt", map[string]string{"encryptedData": "AAAA", "iv": "AAAA"}, bearer(tok)...)
				expectError(t, d, 400, "unsupported")
			} else {
				info := h.mock(http.MethodGet, "/"+p.name+"/wxmock/userinfo?user=alice")
				d := h.do(http.MethodPost, appURL+"/wx/decrypt", strings.NewReader(string(info.body)), append(bearer(tok), "Content-Type", "application/json")...)
				if d.status != 200 || len(d.json) == 0 {
					t.Fatalf("decrypt: %d %s", d.status, d.body)
				}
			}
			phone := h.do(http.MethodGet, mockURL+"/"+p.name+"/wxmock/phone?user=alice&phone=13800138000", nil)
			if phone.status != 200 {
				t.Fatalf("wxmock phone: %d %s", phone.status, phone.body)
			}
			ph := h.do(http.MethodPost, appURL+"/wx/phone", strings.NewReader(string(phone.body)), append(bearer(tok), "Content-Type", "application/json")...)
			if ph.status != 200 || ph.str("pure_phone_number") != "13800138000" {
				t.Fatalf("phone: %d %s", ph.status, ph.body)
			}
			if strings.Contains(string(ph.body), "session_key") {
				t.Fatalf("phone answer names the session key: %s", ph.body)
			}

			// A bad code is the user's, with the platform's own code.
			bad := h.postJSON(appURL+"/wx/login", map[string]string{"code": "invalid", "platform": p.name})
			expectError(t, bad, 401, "invalid_code")
			if _, ok := bad.json["errcode"]; !ok {
				t.Errorf("bad code without the platform's errcode: %s", bad.body)
			}

			if lo := h.do(http.MethodPost, appURL+"/wx/logout", nil, bearer(tok)...); lo.status != 204 {
				t.Fatalf("logout: %d %s", lo.status, lo.body)
			}
			expectError(t, h.do(http.MethodGet, appURL+"/api/me", nil, bearer(tok)...), 401, "invalid_token")
		})
	}
}

// A Douyin guest logs in by anonymous_code alone as a device; with a code
// too, the openid wins.
func TestDouyinGuest(t *testing.T) {
	h := startConfig(t, platformsConfig(t, ""))
	anon := h.platformCode("douyin", "guest1", "&anonymous=1")
	r := h.postJSON(appURL+"/wx/login", map[string]string{"anonymous_code": anon, "platform": "douyin"})
	if r.status != 200 {
		t.Fatalf("guest login: %d %s", r.status, r.body)
	}
	up := h.do(http.MethodGet, appURL+"/api/me", nil, bearer(r.str("token"))...)
	if up.str("hdr_anonymous") != "1" || up.str("hdr_openid") != r.str("openid") || up.str("hdr_platform") != "douyin" {
		t.Fatalf("guest upstream: %s", up.body)
	}
	// A guest has no session key: no user data, no phone number.
	expectError(t, h.postJSON(appURL+"/wx/decrypt", map[string]string{"encryptedData": "AAAA", "iv": "AAAA"}, bearer(r.str("token"))...), 400, "unsupported")
	expectError(t, h.postJSON(appURL+"/wx/phone", map[string]string{"encryptedData": "AAAA", "iv": "AAAA"}, bearer(r.str("token"))...), 400, "unsupported")
	both := h.postJSON(appURL+"/wx/login", map[string]string{
		"code": h.platformCode("douyin", "dora"), "anonymous_code": h.platformCode("douyin", "guest2", "&anonymous=1"), "platform": "douyin"})
	if both.status != 200 || both.str("openid") == r.str("openid") {
		t.Fatalf("login with both codes: %d %s", both.status, both.body)
	}
	if up := h.do(http.MethodGet, appURL+"/api/me", nil, bearer(both.str("token"))...); up.str("hdr_anonymous") != "" {
		t.Fatalf("a user's login says anonymous: %s", up.body)
	}
	// anonymous_code is Douyin's alone.
	expectError(t, h.postJSON(appURL+"/wx/login", map[string]string{"anonymous_code": anon, "platform": "qq"}), 400, "invalid_request")
	expectError(t, h.postJSON(appURL+"/wx/login", map[string]string{"code": "x", "platform": "myspace"}), 400, "invalid_request")
}

// A handler refuses tokens of a platform it does not serve, even signed
// with its own key; a handler of other platforms only needs no WeChat app.
func TestTokensOfUnservedPlatforms(t *testing.T) {
	cfg := platformsConfig(t, "signing_key "+testKey)
	cfg = strings.Replace(cfg, "\thandle {\n", fmt.Sprintf(`	handle /wechat-only/* {
		wxauth {
			app_id %s
			app_secret test-secret
			api_base %s
			signing_key %s
		}
		respond "ok {http.request.header.X-Wx-Platform}"
	}
	handle /douyin-only/* {
		wxauth {
			platform douyin {
				app_id tt0123456789abcdef
				app_secret douyin-secret
				api_base %s/douyin
			}
			signing_key %s
			login_path /douyin-only/login
		}
		respond "ok {http.request.header.X-Wx-Platform}"
	}
	handle {
`, testApp, mockURL, testKey, mockURL, testKey), 1)
	h := startConfig(t, cfg)
	dy := h.postJSON(appURL+"/wx/login", map[string]string{"code": h.platformCode("douyin", "alice"), "platform": "douyin"}).str("token")
	wx := h.token("alice")
	if r := h.do(http.MethodGet, appURL+"/wechat-only/x", nil, bearer(wx)...); r.status != 200 || string(r.body) != "ok wechat" {
		t.Fatalf("WeChat token on the WeChat handler: %d %s", r.status, r.body)
	}
	expectError(t, h.do(http.MethodGet, appURL+"/wechat-only/x", nil, bearer(dy)...), 401, "invalid_token")
	// The Douyin-only handler logs in Douyin users, and no WeChat ones.
	own := h.postJSON(appURL+"/douyin-only/login", map[string]string{"code": h.platformCode("douyin", "bob"), "platform": "douyin"})
	if own.status != 200 {
		t.Fatalf("login on the Douyin-only handler: %d %s", own.status, own.body)
	}
	if r := h.do(http.MethodGet, appURL+"/douyin-only/x", nil, bearer(own.str("token"))...); r.status != 200 || string(r.body) != "ok douyin" {
		t.Fatalf("Douyin token on the Douyin handler: %d %s", r.status, r.body)
	}
	expectError(t, h.do(http.MethodGet, appURL+"/douyin-only/x", nil, bearer(wx)...), 401, "invalid_token")
	expectError(t, h.postJSON(appURL+"/douyin-only/login", map[string]string{"code": h.code("bob")}), 400, "invalid_request")
}

// A wrong secret is the operator's to fix: 502 platform_config naming the
// platform, counted by platform and code, and the secret in no log.
func TestPlatformWrongSecret(t *testing.T) {
	cfg := platformsConfig(t, "")
	cfg = strings.Replace(cfg, "app_secret kuaishou-secret\n\t\t\t\tapi_base", "app_secret wrong-kuaishou-secret\n\t\t\t\tapi_base", 1)
	h := startConfig(t, cfg)
	before := h.metrics()
	r := h.postJSON(appURL+"/wx/login", map[string]string{"code": h.platformCode("kuaishou", "alice"), "platform": "kuaishou"})
	expectError(t, r, 502, "platform_config")
	if r.str("platform") != "kuaishou" {
		t.Fatalf("platform_config without its platform: %s", r.body)
	}
	after := h.metrics()
	if got := after[`wxauth_platform_config_errors_total{errcode="100200101",platform="kuaishou"}`] - before[`wxauth_platform_config_errors_total{errcode="100200101",platform="kuaishou"}`]; got != 1 {
		t.Errorf("platform_config_errors went up by %v, want 1", got)
	}
	// The call itself was answered, and measured.
	const calls = `wxauth_platform_request_duration_seconds_count{outcome="ok",platform="kuaishou"}`
	if got := after[calls] - before[calls]; got != 1 {
		t.Errorf("%s went up by %v, want 1", calls, got)
	}
}

// No platform secret or key, session key, login code or token reaches a
// log line, DEBUG included: through logins, user data, phone numbers, bad
// codes and an app whose secret is wrong.
func TestPlatformLogsHoldNoSecret(t *testing.T) {
	mock := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	app := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	mockBlocks, authBlocks := platformBlocks(t, mock)
	cfg := fmt.Sprintf(`%s {
	wxmock {
%s	}
}
%s {
	handle /wrong/* {
		wxauth {
			platform kuaishou {
				app_id ks0123456789
				app_secret wrong-kuaishou-secret
				api_base %s/kuaishou
			}
			login_path /wrong/login
		}
		respond "ok"
	}
	handle {
		wxauth {
%s		}
		respond "ok"
	}
}
`, mock, mockBlocks, app, mock, authBlocks)
	in := newInstance(t, "platform-logs", "debug", cfg, mock+"/wxmock/stats")

	// What must never be logged.
	secrets := []string{"qq-secret", "douyin-secret", "baidu-secret", "kuaishou-secret"}
	for _, f := range []string{"alipay-app-private.pem", "alipay-aes.key"} {
		b, err := os.ReadFile(repoPath("examples", "keys", f))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		secrets = append(secrets, strings.TrimSpace(lines[len(lines)/2]))
	}
	call := func(method, u, body, tok string) map[string]any {
		t.Helper()
		req, err := http.NewRequest(method, u, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return m
	}
	str := func(m map[string]any, k string) string { s, _ := m[k].(string); return s }
	keyOf := map[string]string{ // chosen session keys, to look for
		"qq": "MDEyMzQ1Njc4OWFiY2RlZg==", "douyin": "ZmVkY2JhOTg3NjU0MzIxMA==",
		"kuaishou": "a3MtMTYtYnl0ZS1rZXkhIQ==", "baidu": "YmFpZHUtMjQtYnl0ZS1zZXNzaW9uLWt5",
	}
	for _, p := range otherPlatforms {
		q := "/" + p.name + "/wxmock/login?user=alice"
		if k := keyOf[p.name]; k != "" {
			q += "&session_key=" + url.QueryEscape(k)
			secrets = append(secrets, k)
		}
		got := call(http.MethodGet, mock+q, "", "")
		code := str(got, "code") + str(got, "authCode")
		secrets = append(secrets, code)
		login := call(http.MethodPost, app+"/wx/login", fmt.Sprintf(`{"code":%q,"platform":%q}`, code, p.name), "")
		tok := str(login, "token")
		if tok == "" {
			t.Fatalf("%s login: %v", p.name, login)
		}
		secrets = append(secrets, tok)
		if p.name != "alipay" {
			info := call(http.MethodGet, mock+"/"+p.name+"/wxmock/userinfo?user=alice", "", "")
			body, _ := json.Marshal(info)
			if d := call(http.MethodPost, app+"/wx/decrypt", string(body), tok); d["error"] != nil {
				t.Fatalf("%s decrypt: %v", p.name, d)
			}
		}
		req, _ := http.NewRequest(http.MethodGet, mock+"/"+p.name+"/wxmock/phone?user=alice&phone=13800138000", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		phone, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if ph := call(http.MethodPost, app+"/wx/phone", string(phone), tok); str(ph, "pure_phone_number") != "13800138000" {
			t.Fatalf("%s phone: %v", p.name, ph)
		}
		if bad := call(http.MethodPost, app+"/wx/login", fmt.Sprintf(`{"code":"invalid","platform":%q}`, p.name), ""); str(bad, "error") != "invalid_code" {
			t.Fatalf("%s bad code: %v", p.name, bad)
		}
	}
	code := str(call(http.MethodGet, mock+"/kuaishou/wxmock/login?user=bob", "", ""), "code")
	secrets = append(secrets, code, "wrong-kuaishou-secret")
	if r := call(http.MethodPost, app+"/wrong/login", fmt.Sprintf(`{"code":%q,"platform":"kuaishou"}`, code), ""); str(r, "error") != "platform_config" {
		t.Fatalf("wrong secret: %v", r)
	}

	in.stop()
	logs := in.out.String()
	if !strings.Contains(logs, `"level":"debug"`) || !strings.Contains(logs, "platform_config") && !strings.Contains(logs, "misconfigured") {
		t.Fatalf("the logs are not what this test reads: %.2000s", logs)
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(logs, s) {
			t.Errorf("a log line holds %.12s...", s)
		}
	}
}
