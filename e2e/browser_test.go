package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/network"
)

// The demo's website, as example.Caddyfile configures it (its last site
// block, and the wxmock site it logs in against), with the demo's fixed
// addresses replaced by this run's: the browser tests run the example
// exactly as `bash scripts/demo.sh` serves it.
const (
	demoMock = "http://127.0.0.1:9000"
	demoWeb  = "http://127.0.0.1:8081"
	demoRoot = "examples/web/site"
)

// The demo's web apps (example.Caddyfile).
const (
	demoOAApp = "wxdemooa01234567"
	demoQRApp = "wxdemoqr01234567"
)

// exampleConfig is the caddytest config of the example site on appURL,
// its wxmock on mockURL, and extra sites after them.
func exampleConfig(t *testing.T, extra string) string {
	t.Helper()
	b, err := os.ReadFile(repoPath("example.Caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	root, err := filepath.Abs(repoPath(demoRoot))
	if err != nil {
		t.Fatal(err)
	}
	sites := caddyfileSite(t, string(b), demoMock) + caddyfileSite(t, string(b), demoWeb)
	for _, r := range []struct{ from, to string }{
		{demoMock, mockURL},
		{demoWeb, appURL},
		{"root * " + demoRoot + "\n", "root * " + root + "\n"},
	} {
		if !strings.Contains(sites, r.from) {
			t.Fatalf("example.Caddyfile's sites no longer hold %q", r.from)
		}
		sites = strings.ReplaceAll(sites, r.from, r.to)
	}
	return globalOptions("") + sites + extra
}

// caddyfileSite is the site block of cfg whose address is addr: from its
// address line to its closing brace at the start of a line.
func caddyfileSite(t *testing.T, cfg, addr string) string {
	t.Helper()
	start := strings.Index(cfg, "\n"+addr+" {\n")
	if start < 0 {
		t.Fatalf("example.Caddyfile has no site %s", addr)
	}
	end := strings.Index(cfg[start:], "\n}\n")
	if end < 0 {
		t.Fatalf("example.Caddyfile: site %s does not end", addr)
	}
	return cfg[start+1 : start+end+3]
}

// The example's home page offers the official account's login inside
// WeChat (its user agent says MicroMessenger) and the QR login elsewhere;
// ?surface= forces either, or both, for the demo.
func TestBrowserExampleChoosesTheLogin(t *testing.T) {
	startConfig(t, exampleConfig(t, ""))

	t.Run("desktop", func(t *testing.T) {
		b := newChromium(t)
		if st := b.navigate(appURL + "/"); st != 200 {
			t.Fatalf("home page: %d", st)
		}
		b.waitVisible("#login-qr")
		b.waitVisible("#hint-qr")
		if b.visible("#login-oa") {
			t.Error("a desktop browser is offered the official account's login, which works only inside WeChat")
		}
		if got := b.text("#login-qr"); !strings.Contains(got, "Log in with WeChat") || !strings.Contains(got, "微信") {
			t.Errorf("QR button says %q", got)
		}
		var href string
		b.eval(`document.getElementById("login-qr").getAttribute("href")`, &href)
		if href != "/wx/web/qr/login?next=/me.html" {
			t.Errorf("QR button goes to %q", href)
		}

		if st, u := b.clickAndLoad("#force-both"); st != 200 || !strings.HasSuffix(u, "/?surface=both") {
			t.Fatalf("the demo's link to both buttons: %d %s", st, u)
		}
		b.waitVisible("#login-oa")
		b.waitVisible("#login-qr")
		b.waitVisible("#hint-forced")
		b.navigate(appURL + "/?surface=oa")
		b.waitVisible("#login-oa")
		if b.visible("#login-qr") {
			t.Error("?surface=oa still shows the QR login")
		}

		// The same tab, now saying it is WeChat.
		b.setUserAgent(weChatUA)
		if st := b.reload(); st != 200 {
			t.Fatalf("reload: %d", st)
		}
		b.navigate(appURL + "/")
		b.waitVisible("#login-oa")
		if b.visible("#login-qr") {
			t.Error("the QR login shows to a MicroMessenger user agent")
		}
		b.screenshot("home-in-wechat")
		// An anonymous visit sets no cookie.
		if c := b.cookies(appURL); len(c) != 0 {
			t.Errorf("an anonymous visit left cookies: %v", c)
		}
	})

	t.Run("wechat", func(t *testing.T) {
		b := newChromium(t, withUserAgent(weChatUA))
		b.navigate(appURL + "/")
		b.waitVisible("#login-oa")
		b.waitVisible("#hint-oa")
		if b.visible("#login-qr") {
			t.Error("WeChat's in-app browser is offered the QR login")
		}
		b.navigate(appURL + "/?surface=qr")
		b.waitVisible("#login-qr")
		if b.visible("#login-oa") {
			t.Error("?surface=qr still shows the official account's login")
		}
	})

	t.Run("account page without a session", func(t *testing.T) {
		b := newChromium(t)
		if st := b.navigate(appURL + "/me.html"); st != 200 {
			t.Fatalf("me.html: %d", st)
		}
		b.waitText("#anonymous", "You are not logged in")
		if b.visible("#account") {
			t.Error("the account shows without a session")
		}
	})
}

// The example's /api/me is what wxauth hands the site, as JSON: the
// openid, unionid and X-Wx-* headers of the session; empty values without
// one; never an X-Wx-* header the client sent.
func TestExampleWebIdentityJSON(t *testing.T) {
	h := startConfig(t, exampleConfig(t, ""))

	anon := h.do(http.MethodGet, appURL+"/api/me", nil, "X-Wx-Openid", "forged")
	if anon.status != 200 || anon.header.Get("Content-Type") != "application/json" || anon.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("anonymous /api/me: %d %v %s", anon.status, anon.header, anon.body)
	}
	if anon.str("openid") != "" || len(anon.json["headers"].(map[string]any)) != 0 {
		t.Fatalf("anonymous /api/me: %s", anon.body)
	}

	tok := h.token("alice")
	r := h.do(http.MethodGet, appURL+"/api/me", nil, append(bearer(tok), "X-Wx-Evil", "forged")...)
	hdrs, _ := r.json["headers"].(map[string]any)
	if r.status != 200 || r.str("openid") == "" || hdrs["X-Wx-Openid"] != r.str("openid") {
		t.Fatalf("/api/me with a session: %d %s", r.status, r.body)
	}
	if _, ok := hdrs["X-Wx-Evil"]; ok {
		t.Fatalf("a client-sent X-Wx-* header reached the site: %s", r.body)
	}

	// The template file itself is never served raw.
	raw := h.do(http.MethodGet, appURL+"/api/me.json", nil)
	if strings.Contains(string(raw.body), "{{") {
		t.Fatalf("/api/me.json served the template: %s", raw.body)
	}
}

// otherSite is a second site of the same config on another port: another
// origin than the example's (the same host, so the browser sends the
// example's SameSite=Lax cookie along, and only the logout's Origin check
// stands between this page and the session). Its page tries to log the
// visitor out of the example, by a background fetch and by a form.
func otherSite(t *testing.T) (site, origin string) {
	t.Helper()
	dir := t.TempDir()
	page := `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Another site</title><link rel="icon" href="data:,"></head>
<body>
<h1>Another site</h1>
<form id="logout-form" method="post" action="` + appURL + `/wx/web/qr/logout">
<input type="hidden" name="next" value="/">
<button id="logout-elsewhere" type="submit">Log out of the example site</button>
</form>
<script>
// What a page of another site can do unseen: a credentialed POST it cannot read.
function tryLogout() {
  return fetch("` + appURL + `/wx/web/qr/logout", {method: "POST", mode: "no-cors", credentials: "include",
    body: new URLSearchParams({next: "/"})}).then(() => "sent", (e) => "failed: " + e)
}
</script>
</body></html>
`
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	origin = "http://127.0.0.1:" + strconv.Itoa(freePort(t))
	return origin + " {\n\troot * " + dir + "\n\tfile_server\n}\n", origin
}

// account is what the example's account page shows.
type account struct {
	OpenID, UnionID, Surface, AppID string
}

// waitAccount waits for the account page to show a session, and reads it.
func (b *chromium) waitAccount() account {
	b.t.Helper()
	b.waitVisible("#account")
	var a account
	b.eval(`({OpenID: document.getElementById("openid").textContent, UnionID: document.getElementById("unionid").textContent,
		Surface: document.getElementById("surface").textContent, AppID: document.getElementById("appid").textContent})`, &a)
	return a
}

// miniProgramUnionID is the unionid the mini-program's login gives user on
// the example's handler: the web logins must find the same person.
func miniProgramUnionID(h *harness, user string) string {
	h.t.Helper()
	r := h.do(http.MethodGet, appURL+"/api/me", nil, bearer(h.token(user))...)
	if u := r.str("unionid"); r.status == 200 && u != "" {
		return u
	}
	h.t.Fatalf("the mini-program's login of %s on the example site: %d %s", user, r.status, r.body)
	return ""
}

// The whole web login in a real browser, on the example site: "Log in with
// WeChat" (QR), approve on WeChat's page (wxmock's), land on next logged in
// as the same person as in the mini-program, reload, and log out; a page of
// another origin cannot log the user out.
func TestBrowserWebLogin(t *testing.T) {
	b := newChromium(t)
	other, otherOrigin := otherSite(t)
	h := startConfig(t, exampleConfig(t, other))
	want := miniProgramUnionID(h, "alice")

	b.navigate(appURL + "/")
	b.waitVisible("#login-qr")
	st, u := b.clickAndLoad("#login-qr")
	if st != 200 || !strings.HasPrefix(u, mockURL+"/connect/qrconnect?") {
		t.Fatalf("Log in with WeChat led to %d %s, want WeChat's QR page", st, u)
	}
	b.waitVisible("#approve")
	if user := b.value("#user"); user != "alice" {
		t.Fatalf("wxmock's page approves as %q", user)
	}
	st, u = b.clickAndLoad("#approve")
	if st != 200 || u != appURL+"/me.html" {
		t.Fatalf("after approving: %d %s, want next (/me.html)", st, u)
	}
	me := b.waitAccount()
	if me.OpenID == "" || me.UnionID != want || me.Surface != "qr" || me.AppID != demoQRApp {
		t.Fatalf("the account page shows %+v, want unionid %s on qr of %s", me, want, demoQRApp)
	}
	b.waitText("#headers", "X-Wx-Unionid")

	// The session cookie: the browser keeps it, scripts cannot read it.
	c := b.cookies(appURL)["wxauth_qr"]
	if c == nil || !c.HTTPOnly || c.SameSite != network.CookieSameSiteLax || c.Secure || c.Path != "/" {
		t.Fatalf("session cookie: %+v", c)
	}
	var jsCookies string
	b.eval(`document.cookie`, &jsCookies)
	if strings.Contains(jsCookies, "wxauth_") {
		t.Fatalf("a script reads the session cookie: %q", jsCookies)
	}

	// Reload: still logged in, as the same user.
	if st := b.reload(); st != 200 {
		t.Fatalf("reload: %d", st)
	}
	if again := b.waitAccount(); again != me {
		t.Fatalf("after a reload the page shows %+v, want %+v", again, me)
	}
	shot := b.screenshot("logged-in")
	if os.Getenv("WXAUTH_UPDATE_SCREENSHOT") == "1" {
		updateScreenshot(t, shot)
	}
	b.navigate(appURL + "/")
	b.waitText("#who", want)

	// Another origin's page: its background POST and its form are refused,
	// and the user stays logged in.
	b.navigate(otherOrigin + "/")
	var sent string
	b.eval(`tryLogout()`, &sent)
	if sent != "sent" {
		t.Fatalf("the other site's fetch: %s", sent)
	}
	if st, u := b.clickAndLoad("#logout-elsewhere"); st != http.StatusForbidden || u != appURL+"/wx/web/qr/logout" {
		t.Fatalf("a logout form on another site: %d %s, want 403", st, u)
	}
	if body := b.text("body"); !strings.Contains(body, `"error":"forbidden"`) {
		t.Fatalf("a logout form on another site got %s", body)
	}
	b.navigate(appURL + "/me.html")
	if still := b.waitAccount(); still != me {
		t.Fatalf("after the other site's tries the page shows %+v, want %+v", still, me)
	}

	// The site's own logout.
	st, u = b.clickAndLoad("#logout-button")
	if st != 200 || u != appURL+"/?logged_out=1" {
		t.Fatalf("logout: %d %s", st, u)
	}
	b.waitVisible("#logged-out")
	b.waitVisible("#login-qr")
	if _, ok := b.cookies(appURL)["wxauth_qr"]; ok {
		t.Fatal("the session cookie outlived the logout")
	}
	b.navigate(appURL + "/me.html")
	b.waitText("#anonymous", "You are not logged in")
}

// The official account's login, in a browser that says it is WeChat's: the
// home page offers it, WeChat's consent page (wxmock's) approves, and the
// account page shows the same person as the QR login and the mini-program,
// with the official account's app id; its logout is the oa one.
func TestBrowserWebLoginInWeChat(t *testing.T) {
	b := newChromium(t, withUserAgent(weChatUA))
	h := startConfig(t, exampleConfig(t, ""))
	want := miniProgramUnionID(h, "alice")

	b.navigate(appURL + "/")
	b.waitVisible("#login-oa")
	st, u := b.clickAndLoad("#login-oa")
	if st != 200 || !strings.HasPrefix(u, mockURL+"/connect/oauth2/authorize?") {
		t.Fatalf("Log in with WeChat led to %d %s, want the official account's consent page", st, u)
	}
	if scope := b.value(`input[name="scope"]`); scope != "snsapi_userinfo" {
		t.Fatalf("the consent page asks for %q", scope)
	}
	if st, u := b.clickAndLoad("#approve"); st != 200 || u != appURL+"/me.html" {
		t.Fatalf("after approving: %d %s", st, u)
	}
	me := b.waitAccount()
	if me.OpenID == "" || me.UnionID != want || me.Surface != "oa" || me.AppID != demoOAApp {
		t.Fatalf("the account page shows %+v, want unionid %s on oa of %s", me, want, demoOAApp)
	}
	if c := b.cookies(appURL); c["wxauth_oa"] == nil || c["wxauth_qr"] != nil {
		t.Fatalf("cookies after the oa login: %v", c)
	}
	var action string
	b.eval(`document.getElementById("logout").action`, &action)
	if action != appURL+"/wx/web/oa/logout" {
		t.Fatalf("the logout form posts to %s", action)
	}
	if st, u := b.clickAndLoad("#logout-button"); st != 200 || u != appURL+"/?logged_out=1" {
		t.Fatalf("logout: %d %s", st, u)
	}
	if _, ok := b.cookies(appURL)["wxauth_oa"]; ok {
		t.Fatal("the session cookie outlived the logout")
	}
	b.waitVisible("#login-oa")
}

// updateScreenshot copies the logged-in page's screenshot to the example's
// README (WXAUTH_UPDATE_SCREENSHOT=1).
func updateScreenshot(t *testing.T, shot string) {
	t.Helper()
	png, err := os.ReadFile(shot)
	if err != nil {
		t.Fatal(err)
	}
	dst := repoPath("examples", "web", "screenshot.png")
	if err := os.WriteFile(dst, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("updated %s", dst)
}

// The example's READMEs show the demo's website block as it is, less its
// comments: a change to one is a change to the others.
func TestExampleWebReadmesShowTheDemo(t *testing.T) {
	b, err := os.ReadFile(repoPath("example.Caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	want := caddyfileLines(caddyfileSite(t, string(b), demoWeb))
	for _, name := range []string{"README.md", "README.zh-CN.md"} {
		readme, err := os.ReadFile(repoPath("examples", "web", name))
		if err != nil {
			t.Fatal(err)
		}
		block := caddyfileSite(t, string(readme), demoWeb)
		if got := caddyfileLines(block); !slices.Equal(got, want) {
			t.Errorf("examples/web/%s shows the demo's site as\n%s\nexample.Caddyfile has\n%s", name,
				strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}

// caddyfileLines are a Caddyfile's lines without comments, trailing space
// and blank lines.
func caddyfileLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if i := strings.Index(l, "#"); i >= 0 {
			l = l[:i]
		}
		if l = strings.TrimRight(l, " \t"); strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}
