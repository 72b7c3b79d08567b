package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// The READMEs' Caddyfiles are what teams copy: they are formatted as caddy
// fmt writes them, adapt, and the marked examples do what the text says
// when run.

var readmes = []string{repoPath("README.md"), repoPath("README.zh-CN.md")}

// caddyfileBlocks returns the ```caddyfile blocks of a Markdown file.
func caddyfileBlocks(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	var cur *strings.Builder
	for line := range strings.SplitSeq(string(b), "\n") {
		switch {
		case cur == nil && strings.TrimSpace(line) == "```caddyfile":
			cur = new(strings.Builder)
		case cur != nil && strings.TrimSpace(line) == "```":
			blocks = append(blocks, cur.String())
			cur = nil
		case cur != nil:
			cur.WriteString(line + "\n")
		}
	}
	if cur != nil {
		t.Fatalf("%s: a caddyfile block is not closed", path)
	}
	return blocks
}

// markedExample returns the block of path whose first line is marker.
func markedExample(t *testing.T, path, marker string) string {
	t.Helper()
	for _, b := range caddyfileBlocks(t, path) {
		if first, _, _ := strings.Cut(b, "\n"); first == marker {
			return b
		}
	}
	t.Fatalf("%s has no caddyfile block that begins with %q", path, marker)
	return ""
}

func TestReadmeCaddyfilesFormatted(t *testing.T) {
	for _, path := range readmes {
		blocks := caddyfileBlocks(t, path)
		if len(blocks) < 3 {
			t.Fatalf("%s: only %d caddyfile blocks found", path, len(blocks))
		}
		for i, b := range blocks {
			if got := string(caddyfile.Format([]byte(b))); got != b {
				t.Errorf("%s, caddyfile block %d is not as caddy fmt writes it; it would be:\n%s", path, i+1, got)
			}
		}
	}
}

// Examples that are whole Caddyfiles (they begin with a "# example:" line)
// adapt as written.
func TestReadmeExamplesAdapt(t *testing.T) {
	for _, path := range readmes {
		n := 0
		for _, b := range caddyfileBlocks(t, path) {
			if !strings.HasPrefix(b, "# example:") {
				continue
			}
			n++
			if _, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(b), nil); err != nil {
				t.Errorf("%s: %s does not adapt: %v", path, strings.SplitN(b, "\n", 2)[0], err)
			}
		}
		if n < 2 {
			t.Errorf("%s: %d marked examples, want the production and the token-source ones", path, n)
		}
	}
}

// runnable makes a README example run here: the site on a free port, the
// app at up, WeChat at a wxmock site, the credentials from the
// environment as the README has them.
func runnable(t *testing.T, example string, up *upstream) (cfg, site, mock string) {
	t.Helper()
	site = fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	mock = fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	for _, s := range []string{"api.example.com {", "app:3000", "app_secret {env.WX_SECRET}\n"} {
		if !strings.Contains(example, s) {
			t.Fatalf("the example has no %q to replace:\n%s", s, example)
		}
	}
	cfg = strings.Replace(example, "api.example.com {", site+" {", 1)
	cfg = strings.ReplaceAll(cfg, "app:3000", up.Listener.Addr().String())
	cfg = strings.Replace(cfg, "app_secret {env.WX_SECRET}\n", "app_secret {env.WX_SECRET}\napi_base "+mock+"\n", 1)
	cfg += mock + " {\n\twxmock {\n\t\tapp_id wxreadme000000001\n\t\tapp_secret readme-secret\n\t}\n}\n"
	t.Setenv("WX_APPID", "wxreadme000000001")
	t.Setenv("WX_SECRET", "readme-secret")
	return cfg, site, mock
}

// readmeLogin logs user in through the site and returns the token and openid.
func readmeLogin(t *testing.T, site, mock, user string) (string, string) {
	t.Helper()
	var code, login map[string]any
	getJSON(t, http.MethodGet, mock+"/wxmock/login?user="+user, "", &code)
	getJSON(t, http.MethodPost, site+"/wx/login", fmt.Sprintf(`{"code":%q}`, code["code"]), &login)
	tok, _ := login["token"].(string)
	openid, _ := login["openid"].(string)
	if tok == "" || openid == "" {
		t.Fatalf("login: %v", login)
	}
	return tok, openid
}

func getJSON(t *testing.T, method, url, body string, v any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || json.Unmarshal(b, v) != nil {
		t.Fatalf("%s %s: %d %s", method, url, resp.StatusCode, b)
	}
}

// sendSpoofed requests path with the client identity headers an attacker
// would send, and returns the status.
func sendSpoofed(t *testing.T, url string, headers ...string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	// Spellings an app may read as X-Wx-Openid; set raw, as clients send them.
	for _, k := range []string{"X-Wx-Openid", "x-wx-unionid", "X-WX-ROLE", "X_Wx_Openid", "x_wx_uid"} {
		req.Header[k] = []string{"EVIL"}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

var pathMatcher = regexp.MustCompile(`(?m)^\s*@\S+\s+path\s+(.+)$`)

// The README's production example, run as written: no route lets a
// client's identity headers through to the app.
func TestReadmeProductionExample(t *testing.T) {
	for _, path := range readmes {
		t.Run(path, func(t *testing.T) {
			up := newUpstream(t)
			cfg, site, mock := runnable(t, markedExample(t, path, "# example: production"), up)
			readmeInstance(t, "readme", cfg, mock+"/wxmock/stats")

			// Every path the example's matchers name, and one they do not.
			var paths []string
			for _, m := range pathMatcher.FindAllStringSubmatch(cfg, -1) {
				for p := range strings.FieldsSeq(m[1]) {
					paths = append(paths, strings.ReplaceAll(p, "*", "spoof"))
				}
			}
			if len(paths) == 0 {
				t.Fatal("the example has no path matcher: its open routes are not found")
			}
			for _, p := range paths {
				if st := sendSpoofed(t, site+p); st != 200 {
					t.Fatalf("open route %s: %d", p, st)
				}
			}
			if st := sendSpoofed(t, site+"/api/spoof"); st != 401 {
				t.Fatalf("protected route without a token: %d", st)
			}
			tok, openid := readmeLogin(t, site, mock, "eve")
			if st := sendSpoofed(t, site+"/api/spoof", "Authorization", "Bearer "+tok); st != 200 {
				t.Fatalf("protected route: %d", st)
			}

			seen := up.all()
			t.Logf("SEEN %s", seen)
			if strings.Contains(seen, "EVIL") {
				t.Fatalf("a client's identity header reached the app: %s", seen)
			}
			if strings.Contains(seen, tok) {
				t.Fatalf("the token reached the app: %s", seen)
			}
			if !strings.Contains(seen, `"X-Wx-Openid":["`+openid+`"]`) || strings.Count(seen, `"uri"`) != len(paths)+1 {
				t.Fatalf("the app did not get each request, with wxauth's identity: %s", seen)
			}
		})
	}
}

// The README's example for tokens in a custom header or the query: the
// token reaches neither the app nor Caddy's access log.
func TestReadmeTokenSourceExample(t *testing.T) {
	for _, path := range readmes {
		t.Run(path, func(t *testing.T) {
			up := newUpstream(t)
			cfg, site, mock := runnable(t, markedExample(t, path, "# example: token in a custom header or the query"), up)
			in := readmeInstance(t, "readme-log", cfg, mock+"/wxmock/stats")
			tok, _ := readmeLogin(t, site, mock, "ian")
			if st := sendSpoofed(t, site+"/api/one?access_token="+tok+"&page=2"); st != 200 {
				t.Fatalf("query token: %d", st)
			}
			if st := sendSpoofed(t, site+"/api/two", "Authentication", tok); st != 200 {
				t.Fatalf("header token: %d", st)
			}
			in.stop() // the access log is complete once Caddy has exited
			logs := in.out.String()
			if !strings.Contains(logs, "/api/one") || !strings.Contains(logs, "/api/two") || !strings.Contains(logs, "page=2") {
				t.Fatalf("no access log of the requests:\n%s", logs)
			}
			sig := tok[strings.LastIndex(tok, ".")+1:]
			if strings.Contains(logs, sig) {
				t.Fatalf("the access log holds the token:\n%s", logs)
			}
			if seen := up.all(); strings.Contains(seen, sig) || strings.Contains(seen, "EVIL") {
				t.Fatalf("the app got the token or a spoofed header: %s", seen)
			}
		})
	}
}
