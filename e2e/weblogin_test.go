package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The web apps of the web login tests: an official account (oa) and a
// website app (qr) of the same open platform account as the mini-program.
const (
	webOA = "wxweboa000000001"
	webQR = "wxwebqr000000001"
)

// webEcho is the upstream's answer: what wxauth handed it.
const webEcho = `{"openid":"{http.request.header.X-Wx-Openid}","unionid":"{http.request.header.X-Wx-Unionid}",` +
	`"surface":"{http.request.header.X-Wx-Surface}","appid":"{http.request.header.X-Wx-Appid}",` +
	`"platform":"{http.request.header.X-Wx-Platform}","tier":"{http.request.header.X-Member-Tier}",` +
	`"cookie":"{http.request.header.Cookie}","uri":"{http.request.uri}"}`

// webConfig is the test app with both web logins, link_by unionid and, when
// a is set, the app hook; extra goes in the wxauth block, sites after the
// app's site.
func webConfig(a *appHook, extra, sites string) string {
	hooked := ""
	if a != nil {
		hooked = hookConfig(a, "login userinfo logout")
	}
	return globalOptions("") + fmt.Sprintf(`%s {
	wxmock {
		app_id %s
		app_secret test-secret
		web_app %s oa-secret 127.0.0.1
		web_app %s qr-secret 127.0.0.1
	}
}
%s {
	handle {
		wxauth {
			app_id %s
			app_secret test-secret
			api_base %s
			link_by unionid
			%s
			%s
			web_login h5 {
				app_id %s
				app_secret oa-secret
				mode oa
				scope snsapi_userinfo
				open_base %s
			}
			web_login site {
				app_id %s
				app_secret qr-secret
				mode qr
				open_base %s
			}
		}
		header Content-Type application/json
		respond `+"`"+webEcho+"`"+`
	}
}
%s`, mockURL, testApp, webOA, webQR, appURL, testApp, mockURL, hooked, extra, webOA, mockURL, webQR, mockURL, sites)
}

// browser is a browser with its own cookies that follows no redirect on
// its own, so each step of the dance is seen.
type browser struct {
	t *testing.T
	c *http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, c: &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// do sends a request with headers (name, value, ...) and reads the answer.
func (b *browser) do(method, u, form string, headers ...string) reply {
	b.t.Helper()
	var body io.Reader
	if form != "" {
		body = strings.NewReader(form)
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, header: resp.Header, body: raw}
	_ = json.Unmarshal(raw, &r.json)
	return r
}

func (b *browser) get(u string, headers ...string) reply {
	b.t.Helper()
	return b.do(http.MethodGet, u, "", headers...)
}

// cookie is the value of the browser's cookie name for the app's site.
func (b *browser) cookie(name string) string {
	u, _ := url.Parse(appURL + "/")
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// setCookie gives the browser a cookie for the app's host.
func (b *browser) setCookie(name, value string) {
	u, _ := url.Parse(appURL + "/")
	b.c.Jar.SetCookies(u, []*http.Cookie{{Name: name, Value: value, Path: "/"}})
}

// authorizeURL matches WeChat's authorize URL with its parameters in
// WeChat's order.
var authorizeURL = regexp.MustCompile(`^([^?]+)\?appid=([^&]+)&redirect_uri=([^&]+)&response_type=code&scope=([a-z_]+)&state=([A-Za-z0-9]{1,128})#wechat_redirect$`)

// startWebLogin opens <prefix>/login?next= of web login name and returns
// the WeChat page it sends the browser to, without #wechat_redirect.
func (b *browser) startWebLogin(name, next string) string {
	b.t.Helper()
	r := b.get(appURL + "/wx/web/" + name + "/login?next=" + url.QueryEscape(next))
	loc := r.header.Get("Location")
	m := authorizeURL.FindStringSubmatch(loc)
	if r.status != http.StatusFound || m == nil || !strings.HasPrefix(m[1], mockURL+"/connect/") {
		b.t.Fatalf("login: %d, Location %q", r.status, loc)
	}
	if want := url.QueryEscape(appURL + "/wx/web/" + name + "/callback"); m[3] != want {
		b.t.Fatalf("redirect_uri %s, want %s", m[3], want)
	}
	return strings.TrimSuffix(loc, "#wechat_redirect")
}

// approve is the user's answer at WeChat's page (query: user=, deny=1,
// snapshot=1); it returns the callback URL WeChat sends the browser to.
func (b *browser) approve(page, query string) string {
	b.t.Helper()
	r := b.get(page + "&" + query)
	cb := r.header.Get("Location")
	if r.status != http.StatusFound || !strings.HasPrefix(cb, appURL+"/wx/web/") {
		b.t.Fatalf("WeChat's page: %d, Location %q: %s", r.status, cb, r.body)
	}
	return cb
}

// webLogin runs the whole dance of web login name as user, ending at
// next, and returns the callback URL it used.
func (b *browser) webLogin(name, user, next string) string {
	b.t.Helper()
	cb := b.approve(b.startWebLogin(name, next), "user="+user)
	r := b.get(cb)
	if r.status != http.StatusFound || r.header.Get("Location") != next {
		b.t.Fatalf("callback: %d, Location %q: %s", r.status, r.header.Get("Location"), r.body)
	}
	if b.cookie("wxauth_"+name) == "" {
		b.t.Fatalf("no session cookie after the callback")
	}
	return cb
}

// whoami is the upstream's view of the browser at the app's path.
func (b *browser) whoami(path string) reply {
	b.t.Helper()
	return b.get(appURL + path)
}

// setCookieHeader returns the Set-Cookie line of name in r, or "".
func setCookieHeader(r reply, name string) string {
	for _, line := range r.header.Values("Set-Cookie") {
		if strings.HasPrefix(line, name+"=") {
			return line
		}
	}
	return ""
}

// The whole dance in the official account's browser, over real HTTP:
// WeChat's page, approval, callback, a protected page with the cookie, a
// second load of the callback, someone else's load, logout from another
// site and from the site itself.
func TestWebLoginDance(t *testing.T) {
	h := startConfig(t, webConfig(nil, "", ""))
	b := newBrowser(t)

	page := b.startWebLogin("h5", "/account?tab=2")
	if st := b.get(page); st.status != http.StatusOK || !strings.Contains(string(st.body), `id="approve"`) {
		t.Fatalf("WeChat's page: %d %s", st.status, st.body)
	}
	state := b.cookie("wxauth_h5_state") // Path=/wx/web/h5: not sent to "/"
	if state != "" {
		t.Fatal("the state cookie is sent beyond the web login's path")
	}
	cb := b.approve(page, "user=alice")
	r := b.get(cb)
	if r.status != http.StatusFound || r.header.Get("Location") != "/account?tab=2" {
		t.Fatalf("callback: %d %q %s", r.status, r.header.Get("Location"), r.body)
	}
	if r.header.Get("Referrer-Policy") != "no-referrer" || r.header.Get("Cache-Control") != "no-store" || len(r.body) != 0 {
		t.Fatalf("callback answer: %v %s", r.header, r.body)
	}
	line := setCookieHeader(r, "wxauth_h5")
	for _, want := range []string{"Path=/", "HttpOnly", "SameSite=Lax", "Max-Age=7200"} {
		if !strings.Contains(line, want) {
			t.Fatalf("session cookie %q lacks %s", line, want)
		}
	}
	if strings.Contains(line, "Secure") {
		t.Fatalf("session cookie %q is Secure on a plain http site", line)
	}
	if st := setCookieHeader(r, "wxauth_h5_state"); !strings.Contains(st, "Max-Age=0") {
		t.Fatalf("state cookie not cleared: %q", st)
	}
	tok := b.cookie("wxauth_h5")

	// The protected page sees who it is, and never the cookie.
	me := b.whoami("/account?tab=2")
	if me.status != http.StatusOK || me.str("surface") != "oa" || me.str("appid") != webOA || me.str("platform") != "wechat" ||
		me.str("openid") == "" || me.str("unionid") == "" || me.str("uri") != "/account?tab=2" {
		t.Fatalf("upstream: %d %s", me.status, me.body)
	}
	if strings.Contains(me.str("cookie"), "wxauth_h5") || strings.Contains(string(me.body), tok) {
		t.Fatalf("the session cookie reached the upstream: %s", me.body)
	}
	if me := b.whoami("/account"); me.status != http.StatusOK {
		t.Fatalf("reload: %d", me.status)
	}

	// WeChat's browser loads the callback again: on to next, no new session.
	logins := h.stats("sns_oauth2_access_token")
	again := b.get(cb)
	if again.status != http.StatusFound || again.header.Get("Location") != "/account?tab=2" || setCookieHeader(again, "wxauth_h5") != "" {
		t.Fatalf("second load: %d %q %v", again.status, again.header.Get("Location"), again.header.Values("Set-Cookie"))
	}
	// Anyone else with the callback's URL gets the 400 page, and nothing.
	other := newBrowser(t)
	stolen := other.get(cb)
	if stolen.status != http.StatusBadRequest || !strings.HasPrefix(stolen.header.Get("Content-Type"), "text/html") ||
		other.cookie("wxauth_h5") != "" || !strings.Contains(string(stolen.body), "Invalid login link") {
		t.Fatalf("callback replayed elsewhere: %d %s", stolen.status, stolen.body)
	}
	if n := h.stats("sns_oauth2_access_token"); n != logins {
		t.Fatalf("a replay reached WeChat: %d calls, want %d", n, logins)
	}

	// A page of another site cannot log the user out.
	logout := appURL + "/wx/web/h5/logout"
	for _, hdr := range [][]string{{"Origin", "http://evil.example"}, {"Referer", "http://evil.example/page"}, {}} {
		r := b.do(http.MethodPost, logout, "next=%2F", hdr...)
		expectError(t, r, http.StatusForbidden, "forbidden")
		if me := b.whoami("/account"); me.status != http.StatusOK {
			t.Fatalf("logged out by %v: %d", hdr, me.status)
		}
	}
	// The site's own page can.
	out := b.do(http.MethodPost, logout, "next=%2Fbye", "Origin", appURL)
	if out.status != http.StatusSeeOther || out.header.Get("Location") != "/bye" || !strings.Contains(setCookieHeader(out, "wxauth_h5"), "Max-Age=0") {
		t.Fatalf("logout: %d %q %v", out.status, out.header.Get("Location"), out.header.Values("Set-Cookie"))
	}
	expectError(t, b.whoami("/account"), http.StatusUnauthorized, "missing_token")
	// A browser that still sends the ended session's cookie is told to
	// drop it (its pages cannot: it is HttpOnly), and goes on without it.
	b.setCookie("wxauth_h5", tok)
	dead := b.whoami("/account")
	expectError(t, dead, http.StatusUnauthorized, "missing_token")
	if !strings.Contains(setCookieHeader(dead, "wxauth_h5"), "Max-Age=0") {
		t.Fatalf("the ended session's cookie is not cleared: %v", dead.header.Values("Set-Cookie"))
	}
}

// On a site whose pages are open to anyone (optional), a cookie of an
// ended session makes its browser an anonymous visitor again, not a 401 on
// every page.
func TestWebLoginEndedCookieOnOptionalSite(t *testing.T) {
	startConfig(t, webConfig(nil, "optional", ""))
	b := newBrowser(t)
	b.webLogin("site", "alice", "/")
	tok := b.cookie("wxauth_site")
	if me := b.whoami("/"); me.status != http.StatusOK || me.str("openid") == "" {
		t.Fatalf("logged in: %d %s", me.status, me.body)
	}
	if out := b.do(http.MethodPost, appURL+"/wx/web/site/logout", "", "Origin", appURL); out.status != http.StatusSeeOther {
		t.Fatalf("logout: %d %s", out.status, out.body)
	}
	b.setCookie("wxauth_site", tok)
	me := b.whoami("/")
	if me.status != http.StatusOK || me.str("openid") != "" || !strings.Contains(setCookieHeader(me, "wxauth_site"), "Max-Age=0") {
		t.Fatalf("the ended session's cookie: %d %s %v", me.status, me.body, me.header.Values("Set-Cookie"))
	}
	if b.cookie("wxauth_site") != "" {
		t.Fatal("the browser kept the ended session's cookie")
	}
}

// A user who declines, a snapshot page's visitor and a state from nowhere
// get small pages and no cookie; next never leaves the site.
func TestWebLoginPages(t *testing.T) {
	startConfig(t, webConfig(nil, "", ""))
	b := newBrowser(t)
	for _, tt := range []struct {
		query  string
		status int
		says   string
	}{
		{"user=alice&deny=1", http.StatusForbidden, "declined"},
		{"user=alice&snapshot=1", http.StatusForbidden, "snapshot"},
	} {
		r := b.get(b.approve(b.startWebLogin("h5", "/"), tt.query))
		if r.status != tt.status || !strings.Contains(string(r.body), tt.says) || r.header.Get("Content-Type") != "text/html; charset=utf-8" ||
			r.header.Get("Referrer-Policy") != "no-referrer" || b.cookie("wxauth_h5") != "" {
			t.Fatalf("%s: %d %v %s", tt.query, r.status, r.header, r.body)
		}
	}
	r := b.get(appURL + "/wx/web/h5/callback?code=abc&state=Forged123")
	if r.status != http.StatusBadRequest || b.cookie("wxauth_h5") != "" {
		t.Fatalf("forged state: %d %s", r.status, r.body)
	}
	for _, next := range []string{"//evil.example", "https://evil.example", "/\\evil.example", "/%2F%2Fevil.example", "%2F%2Fevil.example"} {
		b := newBrowser(t)
		cb := b.approve(b.startWebLogin("site", next), "user=alice")
		if r := b.get(cb); r.status != http.StatusFound || r.header.Get("Location") != "/" {
			t.Fatalf("next %q: %d %q", next, r.status, r.header.Get("Location"))
		}
	}
}

// One person is one user across the mini-program, the official account and
// the website under link_by unionid: one unionid, each app's own openid,
// events that say the surface, claims and end_sessions by unionid that
// reach all three.
func TestWebLoginOnePersonThreeSurfaces(t *testing.T) {
	a := newAppHook(t)
	h := startConfig(t, webConfig(a, "", ""))

	mp := h.login("carol")
	mpTok := mp.str("token")
	oa, qr := newBrowser(t), newBrowser(t)
	oa.webLogin("h5", "carol", "/")
	qr.webLogin("site", "carol", "/")

	mpMe := h.do(http.MethodGet, appURL+"/me", nil, bearer(mpTok)...)
	oaMe, qrMe := oa.whoami("/me"), qr.whoami("/me")
	unionid := mp.str("unionid")
	for _, me := range []struct {
		r       reply
		surface string
		app     string
	}{{mpMe, "mp", testApp}, {oaMe, "oa", webOA}, {qrMe, "qr", webQR}} {
		if me.r.status != http.StatusOK || me.r.str("unionid") != unionid || unionid == "" || me.r.str("surface") != me.surface || me.r.str("appid") != me.app {
			t.Fatalf("%s: %d %s (unionid %q)", me.surface, me.r.status, me.r.body, unionid)
		}
	}
	if o := []string{mpMe.str("openid"), oaMe.str("openid"), qrMe.str("openid")}; o[0] == o[1] || o[1] == o[2] || o[0] == o[2] {
		t.Fatalf("openids %v: one per app", o)
	}

	// Events say where the user logged in; the profile comes in userinfo.
	logins := a.events("login")
	if len(logins) != 3 {
		t.Fatalf("%d login events", len(logins))
	}
	for i, want := range []struct{ surface, app string }{{"mp", testApp}, {"oa", webOA}, {"qr", webQR}} {
		if ev := logins[i]; ev["surface"] != want.surface || ev["app_id"] != want.app || ev["unionid"] != unionid || ev["platform"] != "wechat" {
			t.Fatalf("login event %d: %v", i, ev)
		}
	}
	if logins[0]["first_login"] != true || logins[1]["first_login"] != false || logins[2]["first_login"] != false {
		t.Fatalf("first_login: %v %v %v: one person, one first login", logins[0]["first_login"], logins[1]["first_login"], logins[2]["first_login"])
	}
	infos := a.events("userinfo")
	if len(infos) != 2 {
		t.Fatalf("%d userinfo events", len(infos))
	}
	for _, ev := range infos {
		info, _ := ev["userinfo"].(map[string]any)
		if info["nickname"] != "carol" || info["unionid"] != unionid || info["openid"] != ev["openid"] || info["privilege"] != nil || ev["sid"] == nil {
			t.Fatalf("userinfo event %v", ev)
		}
	}

	// Claims set by unionid reach every surface.
	if r := signedCall(h, `{"action":"set_claims","unionid":"`+unionid+`","claims":{"tier":"gold"}}`, newCallID(), time.Now(), hookSecret); r.status != http.StatusNoContent {
		t.Fatalf("set_claims: %d %s", r.status, r.body)
	}
	if !eventually(t, 5*time.Second, func() bool {
		return h.do(http.MethodGet, appURL+"/me", nil, bearer(mpTok)...).str("tier") == "gold" &&
			oa.whoami("/me").str("tier") == "gold" && qr.whoami("/me").str("tier") == "gold"
	}) {
		t.Fatal("a claim set by unionid did not reach every surface")
	}

	// end_sessions by unionid ends all three.
	if r := signedCall(h, `{"action":"end_sessions","unionid":"`+unionid+`"}`, newCallID(), time.Now(), hookSecret); r.status != http.StatusNoContent {
		t.Fatalf("end_sessions: %d %s", r.status, r.body)
	}
	if !eventually(t, 5*time.Second, func() bool {
		return h.do(http.MethodGet, appURL+"/me", nil, bearer(mpTok)...).status == http.StatusUnauthorized &&
			oa.whoami("/me").status == http.StatusUnauthorized && qr.whoami("/me").status == http.StatusUnauthorized
	}) {
		t.Fatal("end_sessions by unionid did not end every surface's session")
	}
	// The app may name the person by a web login's openid and app too.
	oa.webLogin("h5", "carol", "/")
	call := `{"action":"end_sessions","openid":"` + oaMe.str("openid") + `","app_id":"` + webOA + `"}`
	if r := signedCall(h, call, newCallID(), time.Now(), hookSecret); r.status != http.StatusNoContent {
		t.Fatalf("end_sessions by a web openid: %d %s", r.status, r.body)
	}
	if !eventually(t, 5*time.Second, func() bool { return oa.whoami("/me").status == http.StatusUnauthorized }) {
		t.Fatal("end_sessions by a web login's openid did not end its session")
	}
}

// A web cookie is a token of its web app: a handler of another app refuses
// it, even when it reads that cookie.
func TestWebLoginCookieRefusedByAnotherApp(t *testing.T) {
	otherURL := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	other := fmt.Sprintf(`%s {
	wxauth {
		app_id wxother0000000001
		app_secret test-secret
		api_base %s
		token_from cookie wxauth_h5
	}
	respond "other app"
}
`, otherURL, mockURL)
	startConfig(t, webConfig(nil, "", other))
	b := newBrowser(t)
	b.webLogin("h5", "dave", "/")
	if me := b.whoami("/"); me.status != http.StatusOK {
		t.Fatalf("own app: %d", me.status)
	}
	// The browser sends the cookie to every port of the host.
	r := b.get(otherURL + "/")
	expectError(t, r, http.StatusUnauthorized, "invalid_token")
}

// A session cookie past half its life is re-issued on the response, so a
// browser that keeps using the site stays logged in.
func TestWebLoginCookieRenewed(t *testing.T) {
	if testing.Short() {
		t.Skip("waits half a token_ttl of 1m")
	}
	startConfig(t, webConfig(nil, "token_ttl 1m", ""))
	b := newBrowser(t)
	b.webLogin("h5", "erin", "/")
	first := b.cookie("wxauth_h5")
	if r := b.whoami("/"); setCookieHeader(r, "wxauth_h5") != "" {
		t.Fatal("a fresh cookie was re-issued")
	}
	var renewed reply
	if !eventually(t, 45*time.Second, func() bool {
		renewed = b.whoami("/")
		return renewed.status == http.StatusOK && setCookieHeader(renewed, "wxauth_h5") != ""
	}) {
		t.Fatal("the cookie was not re-issued past half its life")
	}
	line := setCookieHeader(renewed, "wxauth_h5")
	if !strings.Contains(line, "HttpOnly") || !strings.Contains(line, "SameSite=Lax") || !strings.Contains(line, "Path=/") {
		t.Fatalf("re-issued cookie %q", line)
	}
	fresh := b.cookie("wxauth_h5")
	if fresh == first || sid(t, fresh) != sid(t, first) {
		t.Fatalf("re-issued token: same %v, same session %v", fresh == first, sid(t, fresh) == sid(t, first))
	}
	if me := b.whoami("/"); me.status != http.StatusOK || me.str("surface") != "oa" {
		t.Fatalf("with the re-issued cookie: %d %s", me.status, me.body)
	}
}

// A user who logged in before link_by unionid was set keeps those
// sessions under the openid: end_sessions by that openid ends them and the
// person's sessions since; one by unionid ends the person's.
func TestLinkByUnionIDSetLater(t *testing.T) {
	a := newAppHook(t)
	h := startConfig(t, config(hookConfig(a, "logout")+"\nsigning_key "+testKey))
	before := h.login("dora")
	openid := before.str("openid")
	h = startConfig(t, config(hookConfig(a, "logout")+"\nsigning_key "+testKey+"\nlink_by unionid"))
	after := h.login("dora")
	for _, tok := range []string{before.str("token"), after.str("token")} {
		if r := h.do(http.MethodGet, appURL+"/me", nil, bearer(tok)...); r.status != http.StatusOK {
			t.Fatalf("before end_sessions: %d %s", r.status, r.body)
		}
	}
	if r := signedCall(h, `{"action":"end_sessions","openid":"`+openid+`"}`, newCallID(), time.Now(), hookSecret); r.status != http.StatusNoContent {
		t.Fatalf("end_sessions: %d %s", r.status, r.body)
	}
	for name, tok := range map[string]string{"before the link": before.str("token"), "since": after.str("token")} {
		if !eventually(t, 5*time.Second, func() bool {
			return h.do(http.MethodGet, appURL+"/me", nil, bearer(tok)...).status == http.StatusUnauthorized
		}) {
			t.Errorf("the session %s is still accepted after end_sessions by openid", name)
		}
	}
}
