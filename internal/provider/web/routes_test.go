package web

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wxauth/caddy-wxauth/internal/apierr"
	"github.com/wxauth/caddy-wxauth/internal/clock"
)

// authorizeURL is WeChat's authorize URL with its parameters in WeChat's
// order: appid, redirect_uri, response_type, scope, state, #wechat_redirect.
var authorizeURL = regexp.MustCompile(`^([^?]+)\?appid=([^&]+)&redirect_uri=([^&]+)&response_type=code&scope=([a-z_]+)&state=([A-Za-z0-9]{1,128})#wechat_redirect$`)

func TestLoginRedirect(t *testing.T) {
	tests := []struct {
		name     string
		mod      func(*App, *RoutesConfig)
		tls      bool
		header   http.Header
		page     string // WeChat's page
		redirect string // redirect_uri, decoded
		scope    string
		secure   bool
	}{
		{"oa over http", nil, false, nil,
			"https://open.weixin.qq.com/connect/oauth2/authorize", "http://example.com/wx/web/site/callback", "snsapi_base", false},
		{"oa userinfo over tls", func(a *App, _ *RoutesConfig) { a.Scope = "snsapi_userinfo" }, true, nil,
			"https://open.weixin.qq.com/connect/oauth2/authorize", "https://example.com/wx/web/site/callback", "snsapi_userinfo", true},
		{"qr with its own path and open_base", func(a *App, _ *RoutesConfig) {
			a.Mode, a.Prefix, a.OpenBase = ModeQR, "/wx/web/site", "http://127.0.0.1:9/"
		}, false, nil, "http://127.0.0.1:9/connect/qrconnect", "http://example.com/wx/web/site/callback", "snsapi_login", false},
		{"public_url", func(a *App, _ *RoutesConfig) { a.PublicURL = "https://WWW.Example.com:443/" }, false, nil,
			"https://open.weixin.qq.com/connect/oauth2/authorize", "https://www.example.com/wx/web/site/callback", "snsapi_base", true},
		{"trusted proxy says https", func(_ *App, c *RoutesConfig) { c.Trusted = func(*http.Request) bool { return true } }, false,
			http.Header{"X-Forwarded-Proto": {"https"}},
			"https://open.weixin.qq.com/connect/oauth2/authorize", "https://example.com/wx/web/site/callback", "snsapi_base", true},
		{"untrusted proxy says https", func(_ *App, c *RoutesConfig) { c.Trusted = func(*http.Request) bool { return false } }, false,
			http.Header{"X-Forwarded-Proto": {"https"}},
			"https://open.weixin.qq.com/connect/oauth2/authorize", "http://example.com/wx/web/site/callback", "snsapi_base", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSite(t, tt.mod)
			b := newBrowser()
			b.tls = tt.tls
			for k, v := range tt.header {
				b.header[k] = v
			}
			resp := s.do(b, http.MethodGet, "http://example.com/wx/web/site/login?next=/account%3Ftab%3D2", "")
			if resp.StatusCode != http.StatusFound {
				t.Fatalf("status %d", resp.StatusCode)
			}
			loc := resp.Header.Get("Location")
			m := authorizeURL.FindStringSubmatch(loc)
			if m == nil {
				t.Fatalf("Location %q is not WeChat's authorize URL in WeChat's order", loc)
			}
			if m[1] != tt.page || m[2] != "wxoa0000000000001" || m[4] != tt.scope {
				t.Fatalf("Location %q: page %q appid %q scope %q", loc, m[1], m[2], m[4])
			}
			if m[3] != url.QueryEscape(tt.redirect) {
				t.Fatalf("redirect_uri %q, want %q URL-encoded", m[3], tt.redirect)
			}
			if got := resp.Header.Get("Referrer-Policy"); got != "no-referrer" || resp.Header.Get("Cache-Control") != "no-store" {
				t.Fatalf("Referrer-Policy %q, Cache-Control %q", got, resp.Header.Get("Cache-Control"))
			}
			c := cookie(resp, "wxauth_site_state")
			if c == nil {
				t.Fatal("no state cookie")
			}
			if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/wx/web/site" || c.MaxAge <= 0 || c.MaxAge > 600 || c.Secure != tt.secure {
				t.Fatalf("state cookie %s", c)
			}
			if !strings.HasPrefix(c.Value, m[5]+".") {
				t.Fatalf("state cookie %q does not hold the state %q", c.Value, m[5])
			}
		})
	}
}

// Each login gets its own random state.
func TestStatesDiffer(t *testing.T) {
	s := newSite(t, nil)
	seen := map[string]bool{}
	for range 50 {
		st := s.startLogin(newBrowser(), "")
		if seen[st] || !validState(st) {
			t.Fatalf("state %q repeated or malformed", st)
		}
		seen[st] = true
	}
}

func TestEmbed(t *testing.T) {
	s := newSite(t, func(a *App, _ *RoutesConfig) { a.Mode = ModeQR })
	b := newBrowser()
	resp := s.do(b, http.MethodGet, "http://example.com/wx/web/site/login?embed=1&next=/shop", "")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("status %d, %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var got map[string]string
	if err := json.Unmarshal([]byte(body(t, resp)), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"appid": "wxoa0000000000001", "scope": "snsapi_login",
		"redirect_uri": "http%3A%2F%2Fexample.com%2Fwx%2Fweb%2Fsite%2Fcallback", "state": got["state"]}
	if len(got) != len(want) || got["appid"] != want["appid"] || got["scope"] != want["scope"] || got["redirect_uri"] != want["redirect_uri"] || !validState(got["state"]) {
		t.Fatalf("got %v, want %v", got, want)
	}
	// The state the page embeds is the browser's: the callback takes it.
	resp = s.callback(b, "code1", got["state"])
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/shop" {
		t.Fatalf("callback: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestCallbackLogsIn(t *testing.T) {
	s := newSite(t, nil)
	b := newBrowser()
	state := s.startLogin(b, "/account%3Ftab%3D2")
	resp := s.callback(b, "code1", state)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/account?tab=2" {
		t.Fatalf("callback: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp.Header.Get("Referrer-Policy") != "no-referrer" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("headers %v", resp.Header)
	}
	if len(body(t, resp)) != 0 {
		t.Fatal("the success answer has a body: the code's URL would be a page")
	}
	c := cookie(resp, "wxauth_site")
	if c == nil || !strings.HasPrefix(c.Value, "TOKEN-sid1-") {
		t.Fatalf("session cookie %v", c)
	}
	if c.Path != "/" || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Secure || c.MaxAge != int(tokenLife/time.Second) {
		t.Fatalf("session cookie %s", c)
	}
	if st := cookie(resp, "wxauth_site_state"); st == nil || st.MaxAge >= 0 || st.Path != "/wx/web/site" {
		t.Fatalf("state cookie not cleared: %v", st)
	}
	if s.sessions.loginCount() != 1 || s.sessions.logins[0] != "code1" {
		t.Fatalf("logins %v", s.sessions.logins)
	}
}

// Over https the session cookie is Secure; its Max-Age is what is left
// of the token's life.
func TestCallbackCookieOverTLS(t *testing.T) {
	s := newSite(t, nil)
	b := newBrowser()
	b.tls = true
	state := s.startLogin(b, "")
	s.clock.Advance(90 * time.Second) // the user took their time at WeChat
	resp := s.do(b, http.MethodGet, "https://example.com/wx/web/site/callback?code=code1&state="+state, "")
	c := cookie(resp, "wxauth_site")
	if resp.StatusCode != http.StatusFound || c == nil || !c.Secure || !c.HttpOnly || c.MaxAge != int(tokenLife/time.Second) {
		t.Fatalf("%d %v", resp.StatusCode, c)
	}
	if st := cookie(resp, "wxauth_site_state"); st == nil || !st.Secure {
		t.Fatalf("state cookie %v", st)
	}
	if resp.Header.Get("Location") != "/" {
		t.Fatalf("Location %q", resp.Header.Get("Location"))
	}
}

// The state is bound to the browser that started the login: a callback
// with it from any other browser, or with a forged, changed or expired
// state cookie, gets the 400 page, and no code reaches WeChat.
func TestStateBoundToBrowser(t *testing.T) {
	s := newSite(t, nil)
	victim := newBrowser()
	state := s.startLogin(victim, "/x")
	good := victim.cookies["wxauth_site_state"].Value

	other := newBrowser()
	s.startLogin(other, "/y") // its own, different state

	parts := strings.Split(good, ".")
	changedNext := parts[0] + "." + parts[1] + "." + "Ly9ldmls" + "." + parts[3] // next "//evil"
	later := parts[0] + "." + "99999999999" + "." + parts[2] + "." + parts[3]
	tests := []struct {
		name   string
		b      *browser
		cookie string // "" keeps b's own
		state  string
	}{
		{"no state cookie", newBrowser(), "", state},
		{"another browser's state cookie", other, "", state},
		{"next changed", newBrowser(), changedNext, state},
		{"expiry changed", newBrowser(), later, state},
		{"garbage", newBrowser(), "x.y.z.w", state},
		{"state not alphanumeric", victim, "", state + "-"},
		{"state too long", victim, "", strings.Repeat("A", 129)},
		{"no state", victim, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.cookie != "" {
				tt.b.cookies["wxauth_site_state"] = &http.Cookie{Name: "wxauth_site_state", Value: tt.cookie}
			}
			resp := s.callback(tt.b, "code1", tt.state)
			page := body(t, resp)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "Invalid login link") {
				t.Fatalf("status %d: %s", resp.StatusCode, page)
			}
			if cookie(resp, "wxauth_site") != nil {
				t.Fatal("a session cookie was set")
			}
		})
	}
	if n := s.sessions.loginCount(); n != 0 {
		t.Fatalf("%d logins", n)
	}
	// The victim's own callback still works: nothing above used its state.
	if resp := s.callback(victim, "code1", state); resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/x" {
		t.Fatalf("victim: %d", resp.StatusCode)
	}

	// A state cookie past its 10 minutes is refused.
	late := newBrowser()
	state = s.startLogin(late, "")
	s.clock.Advance(stateLife)
	if resp := s.callback(late, "code2", state); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("expired state cookie: %d", resp.StatusCode)
	}
}

// A state works once: the callback's request sent again gets the 400 page
// unless it comes from the browser whose session the state made, within
// 60 s, with the same code.
func TestStateSingleUse(t *testing.T) {
	s := newSite(t, nil)
	b := newBrowser()
	state := s.startLogin(b, "/next")
	stateCookie := b.cookies["wxauth_site_state"].Value
	if resp := s.callback(b, "code1", state); resp.StatusCode != http.StatusFound {
		t.Fatalf("first load: %d", resp.StatusCode)
	}
	session := b.cookies["wxauth_site"].Value

	// Someone who copied the request, state cookie and all, with another code.
	thief := newBrowser()
	thief.cookies["wxauth_site_state"] = &http.Cookie{Name: "wxauth_site_state", Value: stateCookie}
	if resp := s.callback(thief, "code2", state); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("state cookie used again with another code: %d", resp.StatusCode)
	}
	// Someone with the callback's URL alone.
	if resp := s.callback(newBrowser(), "code1", state); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("callback URL replayed elsewhere: %d", resp.StatusCode)
	}
	// Someone with a session of their own.
	mallory := newBrowser()
	st := s.startLogin(mallory, "")
	s.callback(mallory, "code3", st)
	delete(mallory.cookies, "wxauth_site_state")
	if resp := s.callback(mallory, "code1", state); resp.StatusCode != http.StatusBadRequest || cookie(resp, "wxauth_site") != nil {
		t.Fatalf("callback URL replayed by another logged-in browser: %d", resp.StatusCode)
	}
	if n := s.sessions.loginCount(); n != 2 {
		t.Fatalf("%d logins, want 2 (code1, code3)", n)
	}
	// The browser itself, again: on to next, with the session it has.
	resp := s.callback(b, "code1", state)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/next" || cookie(resp, "wxauth_site") != nil {
		t.Fatalf("second load by the same browser: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if b.cookies["wxauth_site"].Value != session || s.sessions.loginCount() != 2 {
		t.Fatal("the second load made a new session")
	}
	// With another code it is not the same callback.
	if resp := s.callback(b, "code9", state); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("same browser, other code: %d", resp.StatusCode)
	}
	// After 60 s, not even the browser itself.
	s.clock.Advance(replayWindow + time.Second)
	if resp := s.callback(b, "code1", state); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("second load after 60 s: %d", resp.StatusCode)
	}
}

// A second load of the callback whose session has ended since is refused:
// the session is not the browser's any more.
func TestReplayAfterLogout(t *testing.T) {
	s := newSite(t, nil)
	b := newBrowser()
	state := s.startLogin(b, "")
	s.callback(b, "code1", state)
	s.sessions.Logout(t.Context(), nil, b.cookies["wxauth_site"].Value)
	if resp := s.callback(b, "code1", state); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("%d", resp.StatusCode)
	}
}

// WeChat's in-app browser may load the callback twice before it has seen
// the first answer: both loads hold the state cookie, and both end with
// the one session the code made.
func TestDoubleLoadAtOnce(t *testing.T) {
	s := newSite(t, nil)
	b := newBrowser()
	state := s.startLogin(b, "/both")
	s.sessions.gate, s.sessions.inLogin = make(chan struct{}), make(chan struct{})
	first := make(chan *http.Response)
	go func() {
		other := &browser{cookies: map[string]*http.Cookie{"wxauth_site_state": b.cookies["wxauth_site_state"]}, header: http.Header{}}
		first <- s.callback(other, "code1", state)
	}()
	<-s.sessions.inLogin // the first load waits at WeChat
	resp2 := s.callback(b, "code1", state)
	close(s.sessions.gate)
	resp1 := <-first
	c1, c2 := cookie(resp1, "wxauth_site"), cookie(resp2, "wxauth_site")
	if resp1.StatusCode != http.StatusFound || resp2.StatusCode != http.StatusFound || c1 == nil || c2 == nil {
		t.Fatalf("loads: %d %d", resp1.StatusCode, resp2.StatusCode)
	}
	if s.sessions.SID(t.Context(), c1.Value) != "sid1" || s.sessions.SID(t.Context(), c2.Value) != "sid1" {
		t.Fatalf("two sessions: %s %s", c1.Value, c2.Value)
	}
	if resp2.Header.Get("Location") != "/both" {
		t.Fatalf("Location %q", resp2.Header.Get("Location"))
	}
}

func TestDenied(t *testing.T) {
	s := newSite(t, nil)
	b := newBrowser()
	state := s.startLogin(b, "/after")
	resp := s.do(b, http.MethodGet, "http://example.com/wx/web/site/callback?state="+state, "")
	page := body(t, resp)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "declined") || !strings.Contains(page, "没有同意") {
		t.Fatalf("%d: %s", resp.StatusCode, page)
	}
	if len(resp.Cookies()) != 0 || s.sessions.loginCount() != 0 {
		t.Fatalf("cookies %v, %d logins", resp.Cookies(), s.sessions.loginCount())
	}
	// The link back keeps next.
	if !strings.Contains(page, `href="/wx/web/site/login?next=%2Fafter"`) {
		t.Fatalf("no link back to the login: %s", page)
	}
}

func TestLoginFailurePages(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
		says   string
	}{
		{"snapshot visitor", ErrSnapshotUser, http.StatusForbidden, "使用完整服务"},
		{"bad code", apierr.New(http.StatusUnauthorized, "invalid_code", "the WeChat login code is invalid"), http.StatusUnauthorized, "the WeChat login code is invalid"},
		{"store down", apierr.StoreUnavailable, http.StatusServiceUnavailable, "not reachable"},
		{"app refused", apierr.New(http.StatusForbidden, "banned", `<b>banned</b> "user"`).WithRefusedBy("app"), http.StatusForbidden, "&lt;b&gt;banned&lt;/b&gt; &#34;user&#34;"},
		{"a bug", errors.New("nil pointer"), http.StatusInternalServerError, "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSite(t, nil)
			s.sessions.loginErr = tt.err
			b := newBrowser()
			state := s.startLogin(b, "")
			resp := s.callback(b, "code1", state)
			page := body(t, resp)
			if resp.StatusCode != tt.status || !strings.Contains(page, tt.says) {
				t.Fatalf("%d: %s", resp.StatusCode, page)
			}
			if cookie(resp, "wxauth_site") != nil {
				t.Fatal("a session cookie was set")
			}
			if strings.Contains(page, "<b>") || strings.Contains(page, "nil pointer") {
				t.Fatalf("unescaped or internal text on the page: %s", page)
			}
			if tt.err == apierr.StoreUnavailable && resp.Header.Get("Retry-After") == "" {
				t.Fatal("no Retry-After")
			}
		})
	}
}

// Every page is a small HTML page in both languages, escaped, kept from
// caches, sending no Referer, with a link back to the login.
func TestPages(t *testing.T) {
	s := newSite(t, nil)
	b := newBrowser()
	evilNext := url.QueryEscape(`/"><script>alert(1)</script>`)
	s.startLogin(b, evilNext)
	resp := s.do(b, http.MethodGet, "http://example.com/wx/web/site/callback?code=c&state=%3Cscript%3E", "")
	page := body(t, resp)
	h := resp.Header
	if resp.StatusCode != http.StatusBadRequest || h.Get("Content-Type") != "text/html; charset=utf-8" ||
		h.Get("Referrer-Policy") != "no-referrer" || h.Get("Cache-Control") != "no-store" || h.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("%d %v", resp.StatusCode, h)
	}
	if strings.Contains(page, "<script>") || strings.Contains(page, `"><`) {
		t.Fatalf("user input on the page unescaped: %s", page)
	}
	for _, want := range []string{"登录链接无效", "Invalid login link", `<meta name="referrer" content="no-referrer">`, `href="/wx/web/site/login?next=`} {
		if !strings.Contains(page, want) {
			t.Fatalf("page lacks %q: %s", want, page)
		}
	}
}

// next is a path of this site or "/": open redirects are refused, however
// they are written.
func TestSafeNext(t *testing.T) {
	tests := map[string]string{
		"/":                        "/",
		"/account?tab=2":           "/account?tab=2",
		"/a/b#frag":                "/a/b#frag",
		"/ok//double":              "/", // an empty segment: "/a/..//evil" resolves to "//evil"
		"/a/..//evil":              "/",
		"/.//evil":                 "/",
		"/a/../b":                  "/",
		"/a/./b":                   "/",
		"/a?next=//x":              "/a?next=//x", // the query is not the path
		"/search?q=50%25off":       "/search?q=50%25off",
		"/a b":                     "/a%20b",
		"/账户":                      "/%E8%B4%A6%E6%88%B7",
		"/x?u=https://evil.com":    "/x?u=https://evil.com",
		"":                         "/",
		"//evil.com":               "/",
		"///evil.com":              "/",
		"/\\evil.com":              "/",
		"\\\\evil.com":             "/",
		"https://evil.com":         "/",
		"http:evil.com":            "/",
		"javascript:alert(1)":      "/",
		"evil.com":                 "/",
		" /evil":                   "/",
		"%2F%2Fevil.com":           "/",
		"/%2F%2Fevil.com":          "/",
		"/%2fevil.com":             "/",
		"/%5Cevil.com":             "/",
		"/%5cevil.com":             "/",
		"/%252F%252Fevil.com":      "/",
		"/%25252F%25252Fevil":      "/",
		"/\t/evil.com":             "/",
		"/%09/evil.com":            "/",
		"/\n/evil.com":             "/",
		"/%0d%0aSet-Cookie:x=1":    "/",
		"/a\\b":                    "/",
		"/\x00":                    "/",
		"/\x7f":                    "/",
		strings.Repeat("/a", 2000): "/",
	}
	for in, want := range tests {
		if got := SafeNext(in); got != want {
			t.Errorf("SafeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

// Over HTTP too: a next that is not a path of the site sends the browser
// to "/" after the login.
func TestOpenRedirectRefused(t *testing.T) {
	for _, next := range []string{"%2F%2Fevil.com", "https%3A%2F%2Fevil.com", "%2F%5Cevil.com", "/%252F%252Fevil.com", "%2F%09%2Fevil.com"} {
		s := newSite(t, nil)
		b := newBrowser()
		state := s.startLogin(b, next)
		resp := s.callback(b, "code1", state)
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/" {
			t.Errorf("next=%s: %d %q", next, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
}

func TestLogout(t *testing.T) {
	login := func(t *testing.T, s *site) (*browser, string) {
		b := newBrowser()
		state := s.startLogin(b, "")
		s.callback(b, "code1", state)
		return b, b.cookies["wxauth_site"].Value
	}
	t.Run("from the site's page", func(t *testing.T) {
		s := newSite(t, nil)
		b, tok := login(t, s)
		b.header.Set("Origin", "http://example.com")
		resp := s.do(b, http.MethodPost, "http://example.com/wx/web/site/logout", "next=%2Fbye")
		c := cookie(resp, "wxauth_site")
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/bye" || c == nil || c.MaxAge >= 0 || c.Path != "/" || !c.HttpOnly {
			t.Fatalf("%d %q %v", resp.StatusCode, resp.Header.Get("Location"), c)
		}
		if s.sessions.SID(t.Context(), tok) != "" {
			t.Fatal("the session goes on")
		}
	})
	t.Run("Referer without Origin, next elsewhere", func(t *testing.T) {
		s := newSite(t, nil)
		b, tok := login(t, s)
		b.header.Set("Referer", "http://example.com/account")
		resp := s.do(b, http.MethodPost, "http://example.com/wx/web/site/logout", "next=%2F%2Fevil.com")
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" || s.sessions.SID(t.Context(), tok) != "" {
			t.Fatalf("%d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
	t.Run("without a session", func(t *testing.T) {
		s := newSite(t, nil)
		b := newBrowser()
		b.header.Set("Origin", "http://example.com:80")
		if resp := s.do(b, http.MethodPost, "http://example.com/wx/web/site/logout", ""); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("%d", resp.StatusCode)
		}
	})
	// Cross-site requests are refused, and the session goes on.
	for name, header := range map[string]http.Header{
		"no Origin or Referer":  {},
		"another Origin":        {"Origin": {"https://evil.com"}},
		"Origin null":           {"Origin": {"null"}},
		"another Referer":       {"Referer": {"https://evil.com/page"}},
		"https Origin for http": {"Origin": {"https://example.com"}},
		"another port":          {"Origin": {"http://example.com:8080"}},
		"a look-alike host":     {"Origin": {"http://example.com.evil.com"}},
		"Origin wins":           {"Origin": {"https://evil.com"}, "Referer": {"http://example.com/"}},
	} {
		t.Run(name, func(t *testing.T) {
			s := newSite(t, nil)
			b, tok := login(t, s)
			b.header = header
			resp := s.do(b, http.MethodPost, "http://example.com/wx/web/site/logout", "")
			var e map[string]any
			json.Unmarshal([]byte(body(t, resp)), &e)
			if resp.StatusCode != http.StatusForbidden || e["error"] != "forbidden" {
				t.Fatalf("%d %v", resp.StatusCode, e)
			}
			if len(resp.Cookies()) != 0 || s.sessions.SID(t.Context(), tok) == "" || len(s.sessions.loggedOut) != 0 {
				t.Fatal("the session was ended or its cookie cleared")
			}
		})
	}
	t.Run("store down", func(t *testing.T) {
		s := newSite(t, nil)
		b, _ := login(t, s)
		s.sessions.logoutErr = apierr.StoreUnavailable
		b.header.Set("Origin", "http://example.com")
		resp := s.do(b, http.MethodPost, "http://example.com/wx/web/site/logout", "")
		if resp.StatusCode != http.StatusServiceUnavailable || cookie(resp, "wxauth_site") != nil {
			t.Fatalf("%d %v", resp.StatusCode, resp.Cookies())
		}
	})
	t.Run("https site behind a trusted proxy", func(t *testing.T) {
		s := newSite(t, func(_ *App, c *RoutesConfig) { c.Trusted = func(*http.Request) bool { return true } })
		b := newBrowser()
		b.header.Set("X-Forwarded-Proto", "https")
		state := s.startLogin(b, "")
		resp := s.callback(b, "code1", state)
		if c := cookie(resp, "wxauth_site"); c == nil || !c.Secure {
			t.Fatalf("session cookie %v", c)
		}
		b.header.Set("Origin", "https://example.com")
		resp = s.do(b, http.MethodPost, "http://example.com/wx/web/site/logout", "")
		if c := cookie(resp, "wxauth_site"); resp.StatusCode != http.StatusSeeOther || c == nil || !c.Secure {
			t.Fatalf("%d %v", resp.StatusCode, c)
		}
	})
}

func TestMethodsAndPaths(t *testing.T) {
	s := newSite(t, nil)
	for _, tt := range []struct{ method, path, allow string }{
		{http.MethodPost, "/wx/web/site/login", "GET"},
		{http.MethodHead, "/wx/web/site/callback", "GET"},
		{http.MethodGet, "/wx/web/site/logout", "POST"},
	} {
		resp := s.do(newBrowser(), tt.method, "http://example.com"+tt.path, "")
		var e map[string]any
		json.Unmarshal([]byte(body(t, resp)), &e)
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != tt.allow || e["error"] != "method_not_allowed" {
			t.Errorf("%s %s: %d Allow %q %v", tt.method, tt.path, resp.StatusCode, resp.Header.Get("Allow"), e)
		}
	}
	for path, want := range map[string]bool{
		"/wx/web/site/login": true, "/wx/web/site/callback": true, "/wx/web/site/logout": true,
		"/wx/web/site": false, "/wx/web/site/": false, "/wx/web/site/login/x": false, "/wx/web/other/login": false,
	} {
		if s.rt.Match(path) != want {
			t.Errorf("Match(%q) = %v", path, !want)
		}
	}
	if resp := s.do(newBrowser(), http.MethodGet, "http://example.com/wx/web/site/x", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("another path: %d", resp.StatusCode)
	}
}

// A state cookie of another web app, or signed with another key, is not
// taken.
func TestStateCookieOfAnotherApp(t *testing.T) {
	a := newSite(t, nil)
	b := newSite(t, func(app *App, c *RoutesConfig) { app.AppID = "wxoa0000000000002" })
	k := newSite(t, func(_ *App, c *RoutesConfig) { c.StateKey = []byte("another key of 32 bytes, or more") })
	br := newBrowser()
	state := a.startLogin(br, "")
	for _, s := range []*site{b, k} {
		if resp := s.callback(br, "code1", state); resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("%d", resp.StatusCode)
		}
	}
}

func TestNewRoutesNeedsAKey(t *testing.T) {
	app := App{Name: "site", AppID: "wxa", AppSecret: "s", Mode: ModeOA}
	if err := app.Prepare(); err != nil {
		t.Fatal(err)
	}
	if _, err := NewRoutes(RoutesConfig{App: app, Sessions: newFakeSessions(clock.Real), Store: nil, StateKey: testKey}); err == nil {
		t.Fatal("no store")
	}
	if _, err := NewRoutes(RoutesConfig{App: app, Sessions: newFakeSessions(clock.Real), Store: newSite(t, nil).store, StateKey: testKey[:31]}); err == nil {
		t.Fatal("a short key")
	}
}

// The state key is the same for every instance of one web app, and
// another for another app or secret, even over an empty base key.
func TestStateKey(t *testing.T) {
	a := App{Name: "site", AppID: "wxa", AppSecret: "s1"}
	b, c := a, a
	b.AppSecret, c.AppID = "s2", "wxc"
	k := StateKey(nil, &a)
	if len(k) != 32 || string(k) != string(StateKey(nil, &a)) {
		t.Fatal("not one 32-byte key per app")
	}
	for _, other := range [][]byte{StateKey(nil, &b), StateKey(nil, &c), StateKey(testKey, &a)} {
		if string(other) == string(k) {
			t.Fatal("two apps, secrets or bases share a key")
		}
	}
	for left, want := range map[time.Duration]int{7200 * time.Second: 7200, 7199*time.Second + time.Millisecond: 7200, time.Millisecond: 1, -time.Second: 1} {
		if got := maxAge(left); got != want {
			t.Errorf("maxAge(%v) = %d, want %d", left, got, want)
		}
	}
}
