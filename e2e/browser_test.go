package e2e

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// exampleSite is the site block of examples/web on appURL, behind wxauth
// in optional mode (an anonymous visitor sees the login buttons);
// wxauthBody goes inside wxauth { }.
func exampleSite(t *testing.T, wxauthBody string) string {
	t.Helper()
	root, err := filepath.Abs(repoPath("examples", "web", "site"))
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`%s {
	request_header -X-Wx-*
	root * %s
	route {
		wxauth {
			app_id %s
			app_secret test-secret
			api_base %s
			optional
			%s
		}
		rewrite /api/me /api/me.json
		header /api/* Cache-Control no-store
		templates /api/* {
			mime application/json
		}
		file_server
	}
}
`, appURL, root, testApp, mockURL, wxauthBody)
}

// exampleConfig is the example site with wxmock on mockURL.
func exampleConfig(t *testing.T, wxauthBody string) string {
	return globalOptions("") + fmt.Sprintf(`%s {
	wxmock {
		app_id %s
		app_secret test-secret
	}
}
`, mockURL, testApp) + exampleSite(t, wxauthBody)
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
