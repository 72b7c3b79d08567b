package wxmock

import (
	"context"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// authorizeURL is an authorize (or, with qr, qrconnect) request of a web
// app, with extra query parameters.
func authorizeURL(qr bool, appID, scope, state, extra string) string {
	page := "/connect/oauth2/authorize"
	if qr {
		page = "/connect/qrconnect"
	}
	return page + "?appid=" + appID + "&redirect_uri=" + url.QueryEscape("https://site.example/wx/web/h5/callback?keep=1") +
		"&response_type=code&scope=" + scope + "&state=" + state + extra
}

// approve runs the authorize page with user= and returns the query WeChat
// sends the browser back with.
func approve(t *testing.T, h *Handler, qr bool, appID, scope, extra string) url.Values {
	t.Helper()
	rec := serve(t, h, "GET", authorizeURL(qr, appID, scope, "St4te", extra), "")
	if rec.Code != http.StatusFound {
		t.Fatalf("authorize: %d %s", rec.Code, rec.Body)
	}
	loc, err := url.Parse(rec.Header().Get("Location"))
	if err != nil || loc.Scheme != "https" || loc.Host != "site.example" || loc.Path != "/wx/web/h5/callback" {
		t.Fatalf("Location %q", rec.Header().Get("Location"))
	}
	q := loc.Query()
	if q.Get("state") != "St4te" || q.Get("keep") != "1" {
		t.Fatalf("Location %q lost the state or redirect_uri's query", loc)
	}
	return q
}

func oauthURL(appID, secret, code string) string {
	return "/sns/oauth2/access_token?" + url.Values{
		"appid": {appID}, "secret": {secret}, "code": {code}, "grant_type": {"authorization_code"},
	}.Encode()
}

func userInfoURL(tok, openid string) string {
	return "/sns/userinfo?" + url.Values{"access_token": {tok}, "openid": {openid}, "lang": {"zh_CN"}}.Encode()
}

func str(m map[string]any, k string) string { s, _ := m[k].(string); return s }

// One person has one unionid on the mini-program and on every web app, and
// an openid of each app.
func TestWebLoginUnionIDShared(t *testing.T) {
	h := newHandler(t, "wxwebmp", testSecret)
	mp := exchange(t, h, login(t, h, "user=alice"))

	oa := object(t, serve(t, h, "GET", oauthURL("wxoa1", "s", approve(t, h, false, "wxoa1", "snsapi_userinfo", "&user=alice").Get("code")), ""))
	qr := object(t, serve(t, h, "GET", oauthURL("wxqr1", "s", approve(t, h, true, "wxqr1", "snsapi_login", "&user=alice").Get("code")), ""))
	bob := object(t, serve(t, h, "GET", oauthURL("wxqr1", "s", approve(t, h, true, "wxqr1", "snsapi_login", "&user=bob").Get("code")), ""))

	if str(mp, "unionid") == "" || str(oa, "unionid") != str(mp, "unionid") || str(qr, "unionid") != str(mp, "unionid") {
		t.Fatalf("unionids: mp %v, oa %v, qr %v", mp["unionid"], oa["unionid"], qr["unionid"])
	}
	if str(bob, "unionid") == str(qr, "unionid") {
		t.Fatal("bob has alice's unionid")
	}
	if o := []string{str(mp, "openid"), str(oa, "openid"), str(qr, "openid")}; o[0] == o[1] || o[1] == o[2] || o[0] == o[2] {
		t.Fatalf("openids %v: one per app", o)
	}
	if str(oa, "openid") != openID("wxoa1", "alice") || str(oa, "scope") != "snsapi_userinfo" ||
		str(oa, "access_token") == "" || str(oa, "refresh_token") == "" || oa["expires_in"] == nil || oa["is_snapshotuser"] != nil {
		t.Fatalf("oa answer %v", oa)
	}

	info := object(t, serve(t, h, "GET", userInfoURL(str(qr, "access_token"), str(qr, "openid")), ""))
	if str(info, "openid") != str(qr, "openid") || str(info, "unionid") != str(mp, "unionid") || str(info, "nickname") != "alice" {
		t.Fatalf("userinfo %v", info)
	}
	for _, k := range []string{"sex", "province", "city", "country", "headimgurl", "privilege"} {
		if _, ok := info[k]; !ok {
			t.Fatalf("userinfo %v lacks %s", info, k)
		}
	}
}

func TestWebLoginCodes(t *testing.T) {
	h := newHandler(t, "wxwebcodes", testSecret)
	code := approve(t, h, false, "wxoa2", "snsapi_base", "&user=carol").Get("code")
	base := object(t, serve(t, h, "GET", oauthURL("wxoa2", "s", code), ""))
	if str(base, "unionid") != "" || str(base, "openid") != openID("wxoa2", "carol") || str(base, "scope") != "snsapi_base" {
		t.Fatalf("snsapi_base answer %v", base)
	}
	// A code works once, and only for its app.
	if e := errcode(t, object(t, serve(t, h, "GET", oauthURL("wxoa2", "s", code), ""))); e != errCodeUsed {
		t.Fatalf("used code: %d", e)
	}
	other := approve(t, h, false, "wxoa2", "snsapi_base", "&user=carol").Get("code")
	if e := errcode(t, object(t, serve(t, h, "GET", oauthURL("wxoa3", "s", other), ""))); e != errInvalidCode {
		t.Fatalf("another app's code: %d", e)
	}
	// userinfo is refused to a snsapi_base token, as at WeChat.
	if e := errcode(t, object(t, serve(t, h, "GET", userInfoURL(str(base, "access_token"), str(base, "openid")), ""))); e != errAPIUnauthorized {
		t.Fatalf("userinfo with snsapi_base: %d", e)
	}
	// A code expires after 5 minutes.
	now := fakeClock(h)
	late := approve(t, h, false, "wxoa2", "snsapi_base", "&user=carol").Get("code")
	*now = now.Add(codeTTL + time.Second)
	if e := errcode(t, object(t, serve(t, h, "GET", oauthURL("wxoa2", "s", late), ""))); e != errInvalidCode {
		t.Fatalf("expired code: %d", e)
	}
	for code, want := range map[string]int{"invalid": errInvalidCode, "used": errCodeUsed, "busy": errSystem, "limit": errQuota, "nope": errInvalidCode} {
		if e := errcode(t, object(t, serve(t, h, "GET", oauthURL("wxoa2", "s", code), ""))); e != want {
			t.Errorf("code %s: %d, want %d", code, e, want)
		}
	}
	for _, tt := range []struct {
		target string
		want   int
	}{
		{"/sns/oauth2/access_token?secret=s&code=x&grant_type=authorization_code", errAppIDMissing},
		{"/sns/oauth2/access_token?appid=a&code=x&grant_type=authorization_code", errSecretMissing},
		{"/sns/oauth2/access_token?appid=a&secret=s&grant_type=authorization_code", errCodeMissing},
		{"/sns/oauth2/access_token?appid=a&secret=s&code=x&grant_type=client_credential", errInvalidGrantType},
	} {
		if e := errcode(t, object(t, serve(t, h, "GET", tt.target, ""))); e != tt.want {
			t.Errorf("%s: %d, want %d", tt.target, e, tt.want)
		}
	}
}

func TestWebLoginDenyAndSnapshot(t *testing.T) {
	h := newHandler(t, "wxwebdeny", testSecret)
	q := approve(t, h, false, "wxoa4", "snsapi_userinfo", "&user=alice&deny=1")
	if q.Has("code") {
		t.Fatalf("a denial carries a code: %v", q)
	}
	q = approve(t, h, true, "wxqr4", "snsapi_login", "&deny=1")
	if q.Has("code") {
		t.Fatalf("a QR denial carries a code: %v", q)
	}
	snap := object(t, serve(t, h, "GET", oauthURL("wxoa4", "s", approve(t, h, false, "wxoa4", "snsapi_base", "&user=alice&snapshot=1").Get("code")), ""))
	if snap["is_snapshotuser"] == nil || str(snap, "openid") == openID("wxoa4", "alice") || str(snap, "unionid") != "" {
		t.Fatalf("snapshot answer %v", snap)
	}
	if e := errcode(t, object(t, serve(t, h, "GET", userInfoURL(str(snap, "access_token"), str(snap, "openid")), ""))); e != errAPIUnauthorized {
		t.Fatalf("userinfo of a snapshot visitor: %d", e)
	}
}

// Without user= the page shows a form that approves as the user named in
// it (alice unless changed), with everything the request carried, escaped.
func TestWebLoginPage(t *testing.T) {
	h := newHandler(t, "wxwebpage", testSecret)
	for _, qr := range []bool{false, true} {
		scope := "snsapi_userinfo"
		if qr {
			scope = "snsapi_login"
		}
		target := "/connect/oauth2/authorize?appid=wxoa5&redirect_uri=" + url.QueryEscape(`https://site.example/cb?a="><script>x</script>`) +
			"&response_type=code&scope=" + scope + "&state=abc"
		if qr {
			target = strings.Replace(target, "/connect/oauth2/authorize", "/connect/qrconnect", 1)
		}
		rec := serve(t, h, "GET", target, "")
		page := rec.Body.String()
		if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
			t.Fatalf("%d %s", rec.Code, page)
		}
		for _, want := range []string{`id="approve"`, `id="deny"`, `id="user" name="user" value="alice"`, `name="state" value="abc"`,
			`name="scope" value="` + scope + `"`, `name="appid" value="wxoa5"`} {
			if !strings.Contains(page, want) {
				t.Fatalf("page lacks %s: %s", want, page)
			}
		}
		if strings.Contains(page, "<script>") {
			t.Fatalf("unescaped: %s", page)
		}
	}
}

func TestWebLoginPageProblems(t *testing.T) {
	h := newHandler(t, "wxwebprob", testSecret)
	redirect := url.QueryEscape("https://site.example/cb")
	for name, target := range map[string]string{
		"no appid":        "/connect/oauth2/authorize?redirect_uri=" + redirect + "&response_type=code&scope=snsapi_base&state=a",
		"no redirect_uri": "/connect/oauth2/authorize?appid=a&response_type=code&scope=snsapi_base&state=a",
		"relative":        "/connect/oauth2/authorize?appid=a&redirect_uri=%2Fcb&response_type=code&scope=snsapi_base&state=a",
		"response_type":   "/connect/oauth2/authorize?appid=a&redirect_uri=" + redirect + "&response_type=token&scope=snsapi_base&state=a",
		"qr scope on oa":  "/connect/oauth2/authorize?appid=a&redirect_uri=" + redirect + "&response_type=code&scope=snsapi_login&state=a",
		"oa scope on qr":  "/connect/qrconnect?appid=a&redirect_uri=" + redirect + "&response_type=code&scope=snsapi_userinfo&state=a",
		"state":           "/connect/oauth2/authorize?appid=a&redirect_uri=" + redirect + "&response_type=code&scope=snsapi_base&state=a-b",
		"long state":      "/connect/oauth2/authorize?appid=a&redirect_uri=" + redirect + "&response_type=code&scope=snsapi_base&state=" + strings.Repeat("a", 129),
		"user":            "/connect/oauth2/authorize?appid=a&redirect_uri=" + redirect + "&response_type=code&scope=snsapi_base&state=a&user=a%20b",
	} {
		rec := serve(t, h, "GET", target, "")
		if rec.Code != http.StatusBadRequest || rec.Header().Get("Location") != "" {
			t.Errorf("%s: %d %s", name, rec.Code, rec.Body)
		}
	}
	if rec := serve(t, h, "POST", authorizeURL(false, "a", "snsapi_base", "a", "&user=alice"), ""); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", rec.Code)
	}
}

func TestWebLoginTokens(t *testing.T) {
	h := newHandler(t, "wxwebtok", testSecret)
	now := fakeClock(h)
	tok := object(t, serve(t, h, "GET", oauthURL("wxoa6", "s", approve(t, h, false, "wxoa6", "snsapi_userinfo", "&user=dan").Get("code")), ""))
	at, rt, openid := str(tok, "access_token"), str(tok, "refresh_token"), str(tok, "openid")

	refreshURL := func(appID, rt string) string {
		return "/sns/oauth2/refresh_token?" + url.Values{"appid": {appID}, "grant_type": {"refresh_token"}, "refresh_token": {rt}}.Encode()
	}
	for _, tt := range []struct {
		target string
		want   int
	}{
		{userInfoURL("", openid), errAccessTokenMissing},
		{userInfoURL("nope", openid), errInvalidCredential},
		{userInfoURL(at, "o-someone-else"), errInvalidOpenID},
		{refreshURL("wxoa6", "nope"), errInvalidRefreshToken},
		{refreshURL("wxoa7", rt), errInvalidRefreshToken},
		{refreshURL("wxoa6", ""), errRefreshTokenMissing},
		{"/sns/oauth2/refresh_token?appid=wxoa6&grant_type=x&refresh_token=" + rt, errInvalidGrantType},
	} {
		if e := errcode(t, object(t, serve(t, h, "GET", tt.target, ""))); e != tt.want {
			t.Errorf("%s: %d, want %d", tt.target, e, tt.want)
		}
	}
	*now = now.Add(webTokenTTL)
	if e := errcode(t, object(t, serve(t, h, "GET", userInfoURL(at, openid), ""))); e != errTokenExpired {
		t.Fatalf("expired access_token: %d", e)
	}
	fresh := object(t, serve(t, h, "GET", refreshURL("wxoa6", rt), ""))
	if str(fresh, "access_token") == at || str(fresh, "refresh_token") != rt || str(fresh, "openid") != openid {
		t.Fatalf("refresh %v", fresh)
	}
	if info := object(t, serve(t, h, "GET", userInfoURL(str(fresh, "access_token"), openid), "")); str(info, "nickname") != "dan" {
		t.Fatalf("userinfo with the refreshed token %v", info)
	}
	st := h.state.snapshot()
	if st.OAuthAccessToken != 1 || st.OAuthRefreshToken != 5 || st.UserInfo != 5 {
		t.Fatalf("stats %+v", st)
	}
	// A reset forgets the web codes and tokens too.
	code := approve(t, h, false, "wxoa6", "snsapi_base", "&user=dan").Get("code")
	serve(t, h, "POST", "/wxmock/reset", "")
	if e := errcode(t, object(t, serve(t, h, "GET", oauthURL("wxoa6", "s", code), ""))); e != errInvalidCode {
		t.Fatalf("code after reset: %d", e)
	}
}

// With web apps configured, only their app ids and secrets are taken.
func TestWebApps(t *testing.T) {
	t.Setenv("WXMOCK_WEB_SECRET", "qr-secret")
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	h := &Handler{AppID: "wxwebapps", WebApps: []WebApp{{AppID: "wxoa8", AppSecret: "oa-secret"}, {AppID: "wxqr8", AppSecret: "{env.WXMOCK_WEB_SECRET}"}, {AppID: "wxany"}}}
	if err := h.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.Validate(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Cleanup() })
	code := func(appID string) string { return approve(t, h, true, appID, "snsapi_login", "&user=eve").Get("code") }
	for _, tt := range []struct {
		appID, secret string
		want          int
	}{
		{"wxoa8", "oa-secret", 0},
		{"wxqr8", "qr-secret", 0},
		{"wxany", "whatever", 0},
		{"wxoa8", "qr-secret", errInvalidAppSecret},
		{"wxqr8", "{env.WXMOCK_WEB_SECRET}", errInvalidAppSecret},
	} {
		if e := errcode(t, object(t, serve(t, h, "GET", oauthURL(tt.appID, tt.secret, code(tt.appID)), ""))); e != tt.want {
			t.Errorf("%s with %s: %d, want %d", tt.appID, tt.secret, e, tt.want)
		}
	}
	if e := errcode(t, object(t, serve(t, h, "GET", oauthURL("wxother", "s", "x"), ""))); e != errInvalidAppID {
		t.Fatalf("unknown app id: %d", e)
	}
	if rec := serve(t, h, "GET", authorizeURL(false, "wxother", "snsapi_base", "a", "&user=eve"), ""); rec.Code != http.StatusBadRequest {
		t.Fatalf("authorize page of an unknown app id: %d", rec.Code)
	}

	// An app's configured domain: another host gets WeChat's 10003 page,
	// the domain itself (any port) its code.
	doms := &Handler{AppID: "wxwebdoms", WebApps: []WebApp{{AppID: "wxdom8", Domain: "site.example"}}}
	if err := doms.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { doms.Cleanup() })
	for host, ok := range map[string]bool{"site.example": true, "site.example:8443": true, "SITE.example": true, "evil.example": false, "site.example.evil": false} {
		target := "/connect/qrconnect?appid=wxdom8&redirect_uri=" + url.QueryEscape("https://"+host+"/cb") + "&response_type=code&scope=snsapi_login&state=a&user=eve"
		rec := serve(t, doms, "GET", target, "")
		if got := rec.Code == http.StatusFound; got != ok || !ok && !strings.Contains(rec.Body.String(), "10003") {
			t.Errorf("redirect_uri on %s: %d %s", host, rec.Code, rec.Body)
		}
	}

	dup := &Handler{WebApps: []WebApp{{AppID: "a"}, {AppID: "a"}}}
	if err := dup.validateWebApps(); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Fatalf("duplicate web_app: %v", err)
	}
}

func TestUnmarshalWebApp(t *testing.T) {
	var h Handler
	err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(`wxmock {
		web_app wxoa {env.OA_SECRET}
		web_app wxqr
		web_app wxsite s site.example
	}`))
	want := []WebApp{{AppID: "wxoa", AppSecret: "{env.OA_SECRET}"}, {AppID: "wxqr"}, {AppID: "wxsite", AppSecret: "s", Domain: "site.example"}}
	if err != nil || !reflect.DeepEqual(h.WebApps, want) {
		t.Fatalf("got %+v, %v", h.WebApps, err)
	}
	for _, in := range []string{"wxmock {\n web_app\n}", "wxmock {\n web_app a b c d\n}"} {
		var h Handler
		if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(in)); err == nil {
			t.Errorf("%q parsed", in)
		}
	}
}
