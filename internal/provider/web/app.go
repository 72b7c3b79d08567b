// Package web is WeChat login in the browser: the official account's OAuth
// for pages opened inside WeChat (mode oa) and the open platform's QR login
// for websites (mode qr). It holds the login Provider of one web app (the
// code exchange at sns/oauth2/access_token, and sns/userinfo for the
// profile) and the browser routes around it (Routes): the redirect to
// WeChat with a state bound to the browser, the callback that turns the
// code into a session cookie, and the logout.
//
// It is plain Go: the Caddy glue hands it the session store and a Sessions
// implementation that runs the login flow and issues tokens.
package web

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/wxauth/caddy-wxauth/internal/users"
	wx "github.com/wxauth/caddy-wxauth/wechat"
)

// Platform is the platform of a web login's Identity: web logins are
// WeChat's, on another surface than the mini-program.
const Platform = "wechat"

// The modes of a web app, which are also the surfaces of its logins.
const (
	// ModeOA is an official account's OAuth, in WeChat's in-app browser.
	ModeOA = "oa"
	// ModeQR is a website app's QR login, in any browser.
	ModeQR = "qr"
)

// DefaultOpenBase is where WeChat's authorize and QR login pages live.
const DefaultOpenBase = "https://open.weixin.qq.com"

// maxName bounds a web app's name, which goes into paths and cookie names.
const maxName = 32

// App is one web app's login, a web_login block: which WeChat app it logs
// users in with, and where its routes and cookie live. Prepare fills in
// the defaults and checks it.
type App struct {
	// Name tells the handler's web logins apart, in paths, cookies, logs
	// and store keys: letters, digits, '_' and '-'.
	Name string
	// AppID is the official account's (oa) or website app's (qr) AppID.
	AppID string
	// AppSecret is that app's AppSecret, placeholders already replaced.
	AppSecret string
	// Mode is ModeOA or ModeQR.
	Mode string
	// Scope is what the login asks for: snsapi_base (default) or
	// snsapi_userinfo for oa; qr is always snsapi_login.
	Scope string
	// Prefix is where the routes live: Prefix+"/login", "/callback",
	// "/logout". Default /wx/web/<name>.
	Prefix string
	// Cookie is the session cookie's name. Default wxauth_<name>.
	Cookie string
	// OpenBase is the origin of WeChat's authorize and QR login pages.
	// Default https://open.weixin.qq.com; a wxmock site in tests.
	OpenBase string
	// PublicURL is the site's origin (scheme://host[:port]) as browsers
	// see it; empty means taken from each request.
	PublicURL string
}

// Prepare fills in App's defaults and checks it. Its errors name the block
// and the field, never the secret.
func (a *App) Prepare() error {
	if !users.PlainName(a.Name) || len(a.Name) > maxName {
		return fmt.Errorf("web_login %q: the name must be 1 to %d letters, digits, '_' or '-'", a.Name, maxName)
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("web_login %s: "+format, append([]any{a.Name}, args...)...)
	}
	switch {
	case a.AppID == "":
		return fail("app_id is required")
	case !users.PlainName(a.AppID):
		return fail("app_id %q must be letters, digits, '-' or '_' (e.g. wx0123456789abcdef)", a.AppID)
	case a.AppSecret == "":
		return fail("app_secret is required")
	}
	switch a.Mode {
	case ModeOA:
		if a.Scope == "" {
			a.Scope = wx.ScopeBase
		}
		if a.Scope != wx.ScopeBase && a.Scope != wx.ScopeUserInfo {
			return fail("mode oa takes scope snsapi_base or snsapi_userinfo, not %q", a.Scope)
		}
	case ModeQR:
		if a.Scope == "" {
			a.Scope = wx.ScopeLogin
		}
		if a.Scope != wx.ScopeLogin {
			return fail("mode qr is always scope snsapi_login, not %q", a.Scope)
		}
	case "":
		return fail("mode is required: oa (an official account's OAuth, inside WeChat) or qr (a website app's QR login)")
	default:
		return fail("mode must be oa or qr, not %q", a.Mode)
	}
	if a.Prefix == "" {
		a.Prefix = "/wx/web/" + a.Name
	}
	if !strings.HasPrefix(a.Prefix, "/") || strings.HasSuffix(a.Prefix, "/") || strings.ContainsAny(a.Prefix, "?#%\\ ") {
		return fail("path %q must start with / and hold no trailing /, '?', '#', '%%', '\\' or space", a.Prefix)
	}
	if a.Cookie == "" {
		a.Cookie = "wxauth_" + a.Name
	}
	if !users.PlainName(a.Cookie) {
		return fail("cookie %q must be letters, digits, '_' or '-'", a.Cookie)
	}
	if a.OpenBase == "" {
		a.OpenBase = DefaultOpenBase
	}
	u, err := url.Parse(a.OpenBase)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fail("open_base %q is not an http(s) URL without a query", a.OpenBase)
	}
	a.OpenBase = strings.TrimRight(a.OpenBase, "/")
	if a.PublicURL != "" {
		u, err := url.Parse(a.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return fail("public_url %q must be the site's origin, scheme://host[:port], without a path", a.PublicURL)
		}
		a.PublicURL = normalOrigin(u.Scheme, u.Host)
	}
	return nil
}

// Paths are the routes' paths: login, callback and logout.
func (a *App) Paths() []string { return []string{a.loginPath(), a.callbackPath(), a.logoutPath()} }

// loginPath, callbackPath and logoutPath are the routes of a.
func (a *App) loginPath() string    { return a.Prefix + "/login" }
func (a *App) callbackPath() string { return a.Prefix + "/callback" }
func (a *App) logoutPath() string   { return a.Prefix + "/logout" }

// authorizePath is WeChat's page for the mode: the OAuth consent page
// inside WeChat, or the QR login page.
func (a *App) authorizePath() string {
	if a.Mode == ModeQR {
		return "/connect/qrconnect"
	}
	return "/connect/oauth2/authorize"
}
