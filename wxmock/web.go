package wxmock

import (
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// WebApp is a web app the stand-in knows: an official account (OAuth
// inside WeChat) or a website app (QR login). Once any is configured, the
// web login calls of other app ids get errcode 40013, and of other
// secrets 40125.
type WebApp struct {
	// AppID is the web app's AppID. Placeholders work.
	AppID string `json:"app_id"`
	// AppSecret, when set, is the only secret its calls are accepted with.
	// Placeholders work.
	AppSecret string `json:"app_secret,omitempty"`
	// Domain, when set, is the host configured at WeChat for the app (an
	// official account's web authorization domain, a website app's
	// callback domain): a redirect_uri on another host gets WeChat's 10003
	// page, as at WeChat, so a wrong origin shows in development. The port
	// is not compared. Placeholders work.
	Domain string `json:"domain,omitempty"`
}

const (
	// webTokenTTL is a web login access_token's life, as at WeChat.
	webTokenTTL = 2 * time.Hour
	// refreshTTL is a refresh_token's life, as at WeChat.
	refreshTTL = 30 * 24 * time.Hour
	// maxState is WeChat's limit on the state of an authorize request.
	maxState = 128
)

// WeChat's errcodes of the sns/oauth2 calls that the mini-program calls
// do not have.
const (
	errAccessTokenMissing  = 41001
	errRefreshTokenMissing = 41003
	errInvalidRefreshToken = 40030
	errAPIUnauthorized     = 48001
)

// webErrMsgs are WeChat's errmsg texts of those errcodes.
var webErrMsgs = map[int]string{
	errAccessTokenMissing:  "access_token missing",
	errRefreshTokenMissing: "refresh_token missing",
	errInvalidRefreshToken: "invalid refresh_token",
	errAPIUnauthorized:     "api unauthorized",
}

// writeWebError answers WeChat's error body of errcode, as the sns calls do.
func writeWebError(w http.ResponseWriter, errcode int) {
	e := newWxError(errcode)
	if msg, ok := webErrMsgs[errcode]; ok {
		e.ErrMsg = msg
	}
	writeJSON(w, textPlain, http.StatusOK, e)
}

// webState is what WeChat remembers of web logins: codes handed out by the
// authorize and QR pages, and the OAuth tokens they were exchanged for. It
// lives in state, under its lock.
type webState struct {
	codes   map[string]*webCode
	tokens  map[string]*webGrant // access_token -> grant
	refresh map[string]*webGrant // refresh_token -> grant
}

// webCode is a code the authorize or QR page handed out.
type webCode struct {
	appID, user, scope string
	snapshot           bool
	expires            time.Time
	used               bool
}

// webGrant is what a web login's token stands for.
type webGrant struct {
	appID, user, scope string
	snapshot           bool
	expires            time.Time
}

func (g *webGrant) openID() string {
	if g.snapshot {
		// A snapshot page's visitor gets a virtual openid, not the user's.
		return "o" + hashID("snapshot/"+g.appID+"/"+g.user)
	}
	return openID(g.appID, g.user)
}

// withUnionID reports whether WeChat gives the grant's unionid: never for
// snsapi_base or a snapshot visitor.
func (g *webGrant) withUnionID() bool { return !g.snapshot && g.scope != "snsapi_base" }

// clear forgets every web code and token. Callers hold the state's lock.
func (w *webState) clear() {
	w.codes = map[string]*webCode{}
	w.tokens = map[string]*webGrant{}
	w.refresh = map[string]*webGrant{}
}

// webRoute returns the stand-in of WeChat's web login that answers path,
// or nil: open.weixin.qq.com's authorize and QR pages, and the sns calls
// of api.weixin.qq.com.
func (h *Handler) webRoute(path string) http.HandlerFunc {
	switch path {
	case "/connect/oauth2/authorize":
		return func(w http.ResponseWriter, r *http.Request) { h.authorize(w, r, false) }
	case "/connect/qrconnect":
		return func(w http.ResponseWriter, r *http.Request) { h.authorize(w, r, true) }
	case "/sns/oauth2/access_token":
		return h.oauthAccessToken
	case "/sns/oauth2/refresh_token":
		return h.oauthRefreshToken
	case "/sns/userinfo":
		return h.snsUserInfo
	}
	return nil
}

// unmarshalWebApp parses "web_app <app_id> [<app_secret> [<domain>]]".
func (h *Handler) unmarshalWebApp(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	if len(args) < 1 || len(args) > 3 {
		return d.ArgErr()
	}
	app := WebApp{AppID: args[0]}
	if len(args) >= 2 {
		app.AppSecret = args[1]
	}
	if len(args) == 3 {
		app.Domain = args[2]
	}
	h.WebApps = append(h.WebApps, app)
	return nil
}

// validateWebApps checks the web apps: each with an app id, once.
func (h *Handler) validateWebApps() error {
	seen := map[string]bool{}
	for _, a := range h.WebApps {
		if a.AppID == "" {
			return fmt.Errorf("a web_app needs an app id")
		}
		if seen[a.AppID] {
			return fmt.Errorf("web_app %q configured twice", a.AppID)
		}
		seen[a.AppID] = true
	}
	return nil
}

// checkWebApp checks a web login call's appid and secret as WeChat does:
// missing ones first, then the configured web apps. A page has no secret
// to check: pass checkSecret false.
func (h *Handler) checkWebApp(appID, secret string, checkSecret bool) int {
	switch {
	case appID == "":
		return errAppIDMissing
	case checkSecret && secret == "":
		return errSecretMissing
	case len(h.WebApps) == 0:
		return 0
	}
	repl := caddy.NewReplacer()
	for _, a := range h.WebApps {
		if repl.ReplaceKnown(a.AppID, "") != appID {
			continue
		}
		if want := repl.ReplaceKnown(a.AppSecret, ""); checkSecret && want != "" && !equal(secret, want) {
			return errInvalidAppSecret
		}
		return 0
	}
	return errInvalidAppID
}

// webDomainOK reports whether host may receive appID's codes: the app's
// configured domain, when it has one.
func (h *Handler) webDomainOK(appID, host string) bool {
	repl := caddy.NewReplacer()
	for _, a := range h.WebApps {
		if repl.ReplaceKnown(a.AppID, "") == appID {
			d := repl.ReplaceKnown(a.Domain, "")
			return d == "" || strings.EqualFold(d, host)
		}
	}
	return true
}

// authorizePage is WeChat's consent page (oauth2/authorize) or QR login
// page (qrconnect) as the stand-in shows it: a form that approves as the
// user named in it, or denies.
var authorizePage = template.Must(template.New("authorize").Parse(`<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{if .QR}}微信扫码登录{{else}}微信授权{{end}} · wxmock</title>
<style>body{font-family:system-ui,sans-serif;max-width:28em;margin:3em auto;padding:0 1em;line-height:1.5}
.qr{width:10em;height:10em;margin:1em 0;background:repeating-linear-gradient(45deg,#222 0 6px,#fff 6px 12px)}
button{font-size:1em;padding:.5em 1.2em;margin:.3em .3em 0 0}#approve{background:#07c160;color:#fff;border:0}</style>
</head>
<body>
<h1>{{if .QR}}微信扫码登录 · Scan to log in{{else}}微信授权 · Authorize{{end}}</h1>
<p>wxmock stands in for WeChat. App <code>{{.AppID}}</code> asks for <code>{{.Scope}}</code>.</p>
{{if .QR}}<div class="qr" aria-label="QR code"></div>{{end}}
<form method="get" action="">
<input type="hidden" name="appid" value="{{.AppID}}">
<input type="hidden" name="redirect_uri" value="{{.RedirectURI}}">
<input type="hidden" name="response_type" value="code">
<input type="hidden" name="scope" value="{{.Scope}}">
<input type="hidden" name="state" value="{{.State}}">
<p><label>用户 · User <input id="user" name="user" value="alice" required pattern="[A-Za-z0-9_.\-]{1,64}"></label></p>
{{if not .QR}}<p><label><input id="snapshot" type="checkbox" name="snapshot" value="1"> 快照页访客 · snapshot page visitor</label></p>{{end}}
<button id="approve" type="submit">同意 · Approve</button>
<button id="deny" type="submit" name="deny" value="1" formnovalidate>拒绝 · Deny</button>
</form>
</body>
</html>
`))

// problemPage is the stand-in's page for an authorize request WeChat would
// refuse on its own page.
var problemPage = template.Must(template.New("problem").Parse(`<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>wxmock</title></head>
<body><h1>出错了 · Error</h1><p>{{.}}</p></body></html>
`))

// authorize serves WeChat's authorize page (qr false) or QR login page:
// with user= it approves at once as that user, with deny=1 it denies, and
// without either it shows the page. Like WeChat, it sends the browser
// back to redirect_uri with code and state, or with state alone when the
// user denied. snapshot=1 makes the code one of a snapshot page's
// visitor. Errors are pages, as at WeChat: they never reach the app.
func (h *Handler) authorize(w http.ResponseWriter, r *http.Request, qr bool) {
	if !allow(w, r, http.MethodGet) {
		return
	}
	q := r.URL.Query()
	appID, scope, state := q.Get("appid"), q.Get("scope"), q.Get("state")
	back, err := url.Parse(q.Get("redirect_uri"))
	scopeOK := scope == "snsapi_login"
	if !qr {
		scopeOK = scope == "snsapi_base" || scope == "snsapi_userinfo"
	}
	var problem string
	switch {
	case h.checkWebApp(appID, "", false) != 0:
		problem = "appid 参数错误 · the appid is missing or not a web app of this WeChat"
	case err != nil || (back.Scheme != "http" && back.Scheme != "https") || back.Host == "":
		problem = "redirect_uri 参数错误 · redirect_uri is not an absolute http(s) URL"
	case !h.webDomainOK(appID, back.Hostname()):
		problem = "10003 redirect_uri 域名与后台配置不一致 · redirect_uri's host is not the domain configured for this app"
	case q.Get("response_type") != "code":
		problem = "response_type 参数错误 · response_type must be code"
	case !scopeOK:
		problem = "scope 参数错误或没有 scope 权限 · the scope is wrong for this page"
	case len(state) > maxState || !alphanumeric(state):
		problem = "state 参数错误 · state is at most 128 characters of a-z, A-Z, 0-9"
	case q.Get("user") != "" && !validUserName(q.Get("user")):
		problem = "user: letters, digits, '_', '-' and '.', at most 64"
	}
	if problem != "" {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusBadRequest)
		_ = problemPage.Execute(w, problem)
		return
	}
	back.Fragment = ""
	v := back.Query()
	switch user := q.Get("user"); {
	case q.Get("deny") == "1":
	case user != "":
		v.Set("code", h.state.newWebCode(appID, user, scope, q.Get("snapshot") == "1"))
	default:
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = authorizePage.Execute(w, struct {
			QR                               bool
			AppID, Scope, RedirectURI, State string
		}{qr, appID, scope, back.String(), state})
		return
	}
	v.Set("state", state)
	back.RawQuery = v.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

// alphanumeric reports whether s holds only [A-Za-z0-9].
func alphanumeric(s string) bool {
	for _, c := range s {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// oauthReply is sns/oauth2/access_token's and refresh_token's success answer.
type oauthReply struct {
	AccessToken    string `json:"access_token"`
	ExpiresIn      int    `json:"expires_in"`
	RefreshToken   string `json:"refresh_token"`
	OpenID         string `json:"openid"`
	Scope          string `json:"scope"`
	UnionID        string `json:"unionid,omitempty"`
	IsSnapshotUser int    `json:"is_snapshotuser,omitempty"`
}

// oauthAccessToken serves GET /sns/oauth2/access_token: a web login code
// for the user's access_token and openid.
func (h *Handler) oauthAccessToken(w http.ResponseWriter, r *http.Request) {
	h.state.count(func(c *counters) { c.OAuthAccessToken++ })
	q := r.URL.Query()
	appID, code := q.Get("appid"), q.Get("code")
	errcode := h.checkWebApp(appID, q.Get("secret"), true)
	switch {
	case errcode != 0:
	case code == "":
		errcode = errCodeMissing
	case q.Get("grant_type") != "authorization_code":
		errcode = errInvalidGrantType
	case code == "invalid":
		errcode = errInvalidCode
	case code == "used":
		errcode = errCodeUsed
	case code == "busy":
		errcode = errSystem
	case code == "limit":
		errcode = errQuota
	}
	var reply oauthReply
	if errcode == 0 {
		reply, errcode = h.state.exchangeWebCode(code, appID)
	}
	h.logCall("sns/oauth2/access_token", errcode)
	if errcode != 0 {
		writeWebError(w, errcode)
		return
	}
	writeJSON(w, textPlain, http.StatusOK, reply)
}

// oauthRefreshToken serves GET /sns/oauth2/refresh_token: a new
// access_token for a refresh_token, which stays the same.
func (h *Handler) oauthRefreshToken(w http.ResponseWriter, r *http.Request) {
	h.state.count(func(c *counters) { c.OAuthRefreshToken++ })
	q := r.URL.Query()
	appID, rt := q.Get("appid"), q.Get("refresh_token")
	errcode := h.checkWebApp(appID, "", false)
	switch {
	case errcode != 0:
	case rt == "":
		errcode = errRefreshTokenMissing
	case q.Get("grant_type") != "refresh_token":
		errcode = errInvalidGrantType
	}
	var reply oauthReply
	if errcode == 0 {
		reply, errcode = h.state.refreshWebToken(rt, appID)
	}
	h.logCall("sns/oauth2/refresh_token", errcode)
	if errcode != 0 {
		writeWebError(w, errcode)
		return
	}
	writeJSON(w, textPlain, http.StatusOK, reply)
}

// snsProfile is sns/userinfo's success answer.
type snsProfile struct {
	OpenID     string   `json:"openid"`
	Nickname   string   `json:"nickname"`
	Sex        int      `json:"sex"`
	Province   string   `json:"province"`
	City       string   `json:"city"`
	Country    string   `json:"country"`
	HeadImgURL string   `json:"headimgurl"`
	Privilege  []string `json:"privilege"`
	UnionID    string   `json:"unionid,omitempty"`
}

// snsUserInfo serves GET /sns/userinfo: the profile of the user a web
// login's access_token stands for. A snsapi_base token gets 48001, as at
// WeChat.
func (h *Handler) snsUserInfo(w http.ResponseWriter, r *http.Request) {
	h.state.count(func(c *counters) { c.UserInfo++ })
	q := r.URL.Query()
	g, errcode := h.state.webGrantOf(q.Get("access_token"))
	switch {
	case errcode != 0:
	case q.Get("openid") != g.openID():
		errcode = errInvalidOpenID
	case g.scope == "snsapi_base":
		errcode = errAPIUnauthorized
	}
	h.logCall("sns/userinfo", errcode)
	if errcode != 0 {
		writeWebError(w, errcode)
		return
	}
	p := snsProfile{OpenID: g.openID(), Nickname: g.user, Province: "Guangdong", City: "Shenzhen", Country: "CN", Privilege: []string{}}
	if g.withUnionID() {
		p.UnionID = unionID(g.user)
	}
	writeJSON(w, textPlain, http.StatusOK, p)
}

// newWebCode issues a one-time web login code of user for appID.
func (s *state) newWebCode(appID, user, scope string, snapshot bool) string {
	code := randomToken(24)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for c, wc := range s.web.codes {
		if now.After(wc.expires) {
			delete(s.web.codes, c)
		}
	}
	s.web.codes[code] = &webCode{appID: appID, user: user, scope: scope, snapshot: snapshot, expires: now.Add(codeTTL)}
	return code
}

// exchangeWebCode redeems a web login code of appID once.
func (s *state) exchangeWebCode(code, appID string) (oauthReply, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	wc, ok := s.web.codes[code]
	switch {
	case !ok || wc.appID != appID || s.now().After(wc.expires):
		return oauthReply{}, errInvalidCode
	case wc.used:
		return oauthReply{}, errCodeUsed
	}
	wc.used = true
	g := webGrant{appID: appID, user: wc.user, scope: wc.scope, snapshot: wc.snapshot}
	rt := randomToken(48)
	rg := g
	rg.expires = s.now().Add(refreshTTL)
	s.web.refresh[rt] = &rg
	return s.grantLocked(g, rt), 0
}

// refreshWebToken issues a new access_token for a refresh_token of appID.
func (s *state) refreshWebToken(rt, appID string) (oauthReply, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.web.refresh[rt]
	if !ok || g.appID != appID || s.now().After(g.expires) {
		return oauthReply{}, errInvalidRefreshToken
	}
	return s.grantLocked(*g, rt), 0
}

// grantLocked issues an access_token for g, with refresh token rt.
func (s *state) grantLocked(g webGrant, rt string) oauthReply {
	tok := randomToken(48)
	now := s.now()
	for t, old := range s.web.tokens {
		if now.After(old.expires) {
			delete(s.web.tokens, t)
		}
	}
	g.expires = now.Add(webTokenTTL)
	s.web.tokens[tok] = &g
	reply := oauthReply{AccessToken: tok, ExpiresIn: int(webTokenTTL / time.Second), RefreshToken: rt, OpenID: g.openID(), Scope: g.scope}
	if g.withUnionID() {
		reply.UnionID = unionID(g.user)
	}
	if g.snapshot {
		reply.IsSnapshotUser = 1
	}
	return reply
}

// webGrantOf returns the grant of a valid web login access_token.
func (s *state) webGrantOf(tok string) (webGrant, int) {
	if tok == "" {
		return webGrant{}, errAccessTokenMissing
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.web.tokens[tok]
	switch {
	case !ok:
		return webGrant{}, errInvalidCredential
	case !s.now().Before(g.expires):
		return webGrant{}, errTokenExpired
	}
	return *g, 0
}
