package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readmePlatforms are the platforms of the README's "every platform"
// example: the variable of each block's app id, the app id it gets here,
// and the field of wxmock's login answer that holds the code.
var readmePlatforms = []struct{ name, idVar, appID, codeField string }{
	{"qq", "QQ_APPID", "1112345678", "code"},
	{"douyin", "DOUYIN_APPID", "ttreadme01234567", "code"},
	{"baidu", "BAIDU_APP_KEY", "ReadmeBaiduAppKey", "code"},
	{"kuaishou", "KUAISHOU_APPID", "ksreadme01234567", "code"},
	{"alipay", "ALIPAY_APPID", "2021000000000777", "authCode"},
}

// The README's Caddyfile for all six platforms, run as written against
// wxmock: a user of each platform logs in and reaches the app as that
// platform's user, the Alipay keys coming from files as the example has
// them.
func TestReadmePlatformsExample(t *testing.T) {
	keys, err := filepath.Abs(repoPath("examples", "keys"))
	if err != nil {
		t.Fatal(err)
	}
	aesKey, err := os.ReadFile(filepath.Join(keys, "alipay-aes.key"))
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range readmes {
		t.Run(filepath.Base(path), func(t *testing.T) {
			up := newUpstream(t)
			cfg, site, mock := runnable(t, markedExample(t, path, "# example: every platform"), up)
			// The example's key files, here the demo's.
			for _, f := range []struct{ example, demo string }{
				{"/etc/caddy/alipay/app-private.pem", "alipay-app-private.pem"},
				{"/etc/caddy/alipay/alipay-public.pem", "alipay-platform-public.pem"},
			} {
				if !strings.Contains(cfg, "{file."+f.example+"}") {
					t.Fatalf("the example reads no %s", f.example)
				}
				cfg = strings.ReplaceAll(cfg, f.example, filepath.Join(keys, f.demo))
			}
			// Each platform's API is its wxmock stand-in.
			for _, p := range readmePlatforms {
				base := mock + "/" + p.name
				if p.name == "alipay" {
					base += "/gateway.do"
				}
				cfg = insertAfter(t, cfg, "platform "+p.name+" {\n", "api_base "+base+"\n")
				t.Setenv(p.idVar, p.appID)
				t.Setenv(strings.TrimSuffix(strings.TrimSuffix(p.idVar, "_APPID"), "_APP_KEY")+"_SECRET", p.name+"-readme-secret")
			}
			t.Setenv("ALIPAY_AES_KEY", strings.TrimSpace(string(aesKey)))
			var mockBlocks strings.Builder
			for _, p := range readmePlatforms {
				if p.name == "alipay" {
					fmt.Fprintf(&mockBlocks, "\t\tplatform alipay {\n\t\t\tapp_id %s\n\t\t\tapp_public_key {file.%s}\n\t\t\tplatform_private_key {file.%s}\n\t\t\taes_key {file.%s}\n\t\t}\n",
						p.appID, filepath.Join(keys, "alipay-app-public.pem"), filepath.Join(keys, "alipay-platform-private.pem"), filepath.Join(keys, "alipay-aes.key"))
					continue
				}
				fmt.Fprintf(&mockBlocks, "\t\tplatform %s {\n\t\t\tapp_id %s\n\t\t\tapp_secret %s-readme-secret\n\t\t}\n", p.name, p.appID, p.name)
			}
			cfg = insertAfter(t, cfg, "\twxmock {\n", mockBlocks.String())
			readmeInstance(t, "readme-platforms", cfg, mock+"/wxmock/stats")

			// WeChat, as before.
			tok, openid := readmeLogin(t, site, mock, "amy")
			checkPlatformUser(t, up, site, tok, "wechat", "wxreadme000000001", openid)
			for _, p := range readmePlatforms {
				var code, login map[string]any
				getJSON(t, http.MethodGet, mock+"/"+p.name+"/wxmock/login?user=amy", "", &code)
				getJSON(t, http.MethodPost, site+"/wx/login", fmt.Sprintf(`{"code":%q,"platform":%q}`, code[p.codeField], p.name), &login)
				tok, _ := login["token"].(string)
				openid, _ := login["openid"].(string)
				if tok == "" || openid == "" {
					t.Fatalf("%s login: %v", p.name, login)
				}
				checkPlatformUser(t, up, site, tok, p.name, p.appID, openid)
			}
		})
	}
}

// checkPlatformUser sends a request with tok and checks that the app got
// it as openid of appID on platform, without the token.
func checkPlatformUser(t *testing.T, up *upstream, site, tok, platform, appID, openid string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, site+"/api/"+platform, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var seen seenRequest
	if err := json.NewDecoder(resp.Body).Decode(&seen); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %d %v", platform, resp.StatusCode, err)
	}
	for name, want := range map[string]string{
		"X-Wx-Platform": platform, "X-Wx-Appid": appID, "X-Wx-Openid": openid, "X-Wx-Surface": "mp", "Authorization": "",
	} {
		if got := seen.Header.Get(name); got != want {
			t.Errorf("%s: the app got %s %q, want %q (all: %s)", platform, name, got, want, up.all())
		}
	}
}
