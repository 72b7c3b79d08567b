package wxauth

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/wxauth/caddy-wxauth/internal/apierr"
	"github.com/wxauth/caddy-wxauth/internal/changes"
	"github.com/wxauth/caddy-wxauth/internal/clock"
	"github.com/wxauth/caddy-wxauth/internal/guard"
	"github.com/wxauth/caddy-wxauth/internal/login"
	"github.com/wxauth/caddy-wxauth/internal/platforms"
	"github.com/wxauth/caddy-wxauth/internal/provider/web"
	wxlogin "github.com/wxauth/caddy-wxauth/internal/provider/wechat"
	"github.com/wxauth/caddy-wxauth/wechat"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/wxauth/caddy-wxauth/session"
	"github.com/wxauth/caddy-wxauth/token"
)

// storeTimeout bounds each store operation of an endpoint.
const storeTimeout = 3 * time.Second

// loginReply is the contract's answer to login and refresh.
type loginReply struct {
	Token     string `json:"token"`
	TokenType string `json:"token_type"`
	ExpiresIn int64  `json:"expires_in"`
	OpenID    string `json:"openid"`
	UnionID   string `json:"unionid,omitempty"`
}

// serveLogin exchanges a wx.login code for a session and a token.
func (h *Handler) serveLogin(w http.ResponseWriter, r *http.Request, _ *guard.Identity) error {
	reply, plt, err := h.loginRequest(r)
	countLogin(plt, err)
	if err != nil {
		return err
	}
	return apierr.WriteJSON(w, http.StatusOK, reply)
}

// loginRequest serves a login, and names its platform once known to be
// one the handler serves.
func (h *Handler) loginRequest(r *http.Request) (_ *loginReply, served string, _ error) {
	if err := h.checkLoginLimit(r); err != nil {
		return nil, "", err
	}
	f, err := readFields(r, "code", "nonce", "platform", "anonymous_code")
	if err != nil {
		return nil, "", err
	}
	code, nonce, plt, anon := f[0], f[1], f[2], f[3]
	pl, err := h.platformLogin(plt)
	if err != nil {
		return nil, "", err
	}
	reply, err := h.loginWith(r, pl, code, anon, nonce)
	return reply, pl.name, err
}

// loginWith checks a login's fields for platform login pl, then logs in.
func (h *Handler) loginWith(r *http.Request, pl *platformLogin, code, anon, nonce string) (*loginReply, error) {
	plt := pl.name
	switch {
	case anon != "" && plt != "douyin":
		return nil, apierr.InvalidRequest(`"anonymous_code" is Douyin's (tt.login); other platforms log in with "code"`)
	case anon != "" && !validCode(anon):
		return nil, apierr.InvalidRequest(`"anonymous_code" from tt.login is malformed`)
	case code == "" && anon != "":
		// A Douyin guest: the device's anonymous openid logs in.
	case !validCode(code):
		return nil, apierr.InvalidRequest(`"code" from ` + loginCall(plt) + ` is missing or malformed`)
	}
	if nonce != "" && !login.ValidNonce(nonce) {
		return nil, apierr.InvalidRequest(`"nonce" must be 16 to 64 characters of A-Z, a-z, 0-9, '_' and '-'`)
	}
	// Without keys the token could not be signed: keep the user's code.
	if _, err := h.signer(); err != nil {
		return nil, err
	}
	s, err := pl.flow.Do(r.Context(), h.requestLogger(r), login.Code{Code: code, AnonymousCode: anon}, nonce)
	if err != nil {
		return nil, err
	}
	return h.issue(s)
}

// platformLogin is one platform's login: its provider (with its optional
// capabilities) and the flow over it.
type platformLogin struct {
	name     string // the platform
	provider login.Provider
	flow     *login.Flow
}

// platformLogin returns the login of platform plt ("" is WeChat), or the
// contract's error for a platform the handler does not serve.
func (h *Handler) platformLogin(plt string) (*platformLogin, error) {
	if plt == "" {
		plt = platforms.WeChat
	}
	if pl, ok := h.logins[plt]; ok {
		return pl, nil
	}
	served := make([]string, 0, len(h.logins))
	for name := range h.logins {
		served = append(served, name)
	}
	sort.Strings(served)
	return nil, apierr.InvalidRequest(fmt.Sprintf(`"platform" %q is not served here; this server serves %s`, plt, strings.Join(served, ", ")))
}

// loginCall names the client call that gives plt's login code, for messages.
func loginCall(plt string) string {
	switch plt {
	case "", platforms.WeChat:
		return "wx.login"
	case "alipay":
		return "my.getAuthCode"
	case "baidu":
		return "swan.getLoginCode"
	case "douyin":
		return "tt.login"
	case "kuaishou":
		return "ks.login"
	}
	return plt + ".login"
}

// provisionLogin sets up each platform's provider and the login flow over
// it: WeChat's from app_id, the others from their platform blocks.
func (h *Handler) provisionLogin(store session.Store, prefix string, sealKey []byte) error {
	var hook login.App
	if h.AppHook.wants(hookLogin) {
		hook = loginHook{h}
	}
	flow := func(p login.Provider, prefix string) *login.Flow { return h.newFlow(p, prefix, hook) }
	h.logins = map[string]*platformLogin{}
	if h.AppID != "" {
		wx := wechat.NewClient(wechat.Config{
			AppID:     h.AppID,
			AppSecret: h.secret,
			BaseURL:   h.APIBase,
			Timeout:   time.Duration(h.WeChatTimeout),
			Observe:   observeWeChat,
		})
		p := wxlogin.New(wxlogin.Config{
			AppID: h.AppID, Client: wx, Log: h.logger, ConfigError: countWeChatConfigError,
			Access: wechat.NewAccessTokens(wx, store, prefix+"/access_token", metrics.tokenRefresh.Inc,
				wechat.CountForced(metrics.tokenForced.Inc)),
		})
		h.logins[platforms.WeChat] = &platformLogin{name: platforms.WeChat, provider: p, flow: flow(p, prefix)}
	}
	providers, err := platforms.Providers(h.Platforms, platforms.Settings{
		Timeout: time.Duration(h.WeChatTimeout), ConfigError: countPlatformConfigError, Observe: observePlatform})
	if err != nil {
		return err
	}
	for name, p := range providers {
		h.logins[name] = &platformLogin{name: name, provider: p, flow: flow(p, prefix+"/platforms/"+name)}
	}
	return h.provisionWeb(sealKey)
}

// newFlow is the login flow over provider p, keeping its codes under prefix.
func (h *Handler) newFlow(p login.Provider, prefix string, hook login.App) *login.Flow {
	return login.New(login.Config{Provider: p, Store: h.store, Prefix: prefix, Sessions: h.sessions,
		Users: h.users, Keys: h.keyRule(), App: hook, TTL: time.Duration(h.TokenTTL), Timeout: storeTimeout})
}

// issue signs a token for s, which expires after token_ttl or at the
// session's age limit, whichever comes first.
func (h *Handler) issue(s *session.Session) (*loginReply, error) {
	now := clock.Real()
	tok, exp, err := h.issueAt(s, now)
	if err != nil {
		return nil, err
	}
	return &loginReply{
		Token:     tok,
		TokenType: "Bearer",
		// exp - iat, both whole seconds: token_ttl exactly unless capped.
		ExpiresIn: exp.Unix() - now.Unix(),
		OpenID:    s.OpenID,
		UnionID:   s.UnionID,
	}, nil
}

// issueAt signs a token for s at now; see issue.
func (h *Handler) issueAt(s *session.Session, now time.Time) (string, time.Time, error) {
	t, err := h.signer()
	if err != nil {
		return "", time.Time{}, err
	}
	tok, exp, err := t.IssueFor(token.Subject{
		OpenID: s.OpenID, UnionID: s.UnionID, SessionID: s.ID, Platform: s.PlatformName(), AppID: h.appOf(s),
		Surface: s.SurfaceName(), Anonymous: s.Anonymous, Extra: guard.TokenClaims(s.Claims),
	}, now, s.Created.Add(time.Duration(h.SessionMaxAge)))
	if errors.Is(err, token.ErrNoLifetime) {
		return "", time.Time{}, apierr.InvalidToken("the session has reached session_max_age; log in again")
	}
	return tok, exp, err
}

// sessionKeyName names where the session key of openid of appID on plt is
// kept: a session key belongs to one app, even when link_by joins its user
// with others.
func (h *Handler) sessionKeyName(plt, appID, openid string) string {
	return h.keyRule().Local(plt, appID, openid)
}

// callerSession loads the session of the caller's token, with the user's
// current claims.
func (h *Handler) callerSession(ctx context.Context, id *guard.Identity) (*session.Session, error) {
	return h.callerSessionOf(ctx, id.SID())
}

// callerSessionOf loads session sid, with the user's current claims.
func (h *Handler) callerSessionOf(ctx context.Context, sid string) (*session.Session, error) {
	s, err := h.users.Live(ctx, sid)
	if errors.Is(err, session.ErrNotFound) {
		return nil, apierr.InvalidToken("the session has ended")
	}
	if err != nil {
		return nil, apierr.StoreUnavailable
	}
	return s, nil
}

// serveRefresh issues a new token for the caller's session.
func (h *Handler) serveRefresh(w http.ResponseWriter, r *http.Request, id *guard.Identity) error {
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	s, err := h.callerSession(ctx, id)
	if err != nil {
		return h.refreshRefused(id, err)
	}
	ttl := time.Duration(h.TokenTTL)
	if err := h.sessions.Extend(ctx, s, ttl); err != nil {
		if errors.Is(err, session.ErrNotFound) {
			// Ended meanwhile, or at its age limit.
			return h.refreshRefused(id, apierr.InvalidToken("the session has ended"))
		}
		return apierr.StoreUnavailable
	}
	skey := h.sessionKeyName(s.PlatformName(), h.appOf(s), s.OpenID)
	if key, err := h.sessions.SessionKey(ctx, skey); err == nil {
		// Keep the newest session_key as long as the session that may use it.
		_ = h.sessions.SetSessionKey(ctx, skey, key, ttl)
	}
	reply, err := h.issue(s)
	if err != nil {
		return h.refreshRefused(id, err)
	}
	return apierr.WriteJSON(w, http.StatusOK, reply)
}

// refreshRefused is the answer to a refresh refused with err: a token past
// its expiry (accepted within the leeway) whose session ended or cannot be
// extended has expired, and the app must log in again; other errors as is.
func (h *Handler) refreshRefused(id *guard.Identity, err error) error {
	var ae *apierr.Error
	if errors.As(err, &ae) && ae.Code == "invalid_token" && h.guard.PastExpiry(id) {
		return guard.TokenExpired
	}
	return err
}

// serveLogout ends the caller's session everywhere.
func (h *Handler) serveLogout(w http.ResponseWriter, r *http.Request, id *guard.Identity) error {
	if err := h.endSession(r.Context(), h.requestLogger(r), id); err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// endSession ends the session of id everywhere and tells the app.
func (h *Handler) endSession(ctx context.Context, log *zap.Logger, id *guard.Identity) error {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	s, err := h.callerSession(ctx, id)
	if err != nil {
		return err
	}
	if err := h.sessions.Revoke(ctx, id.SID()); err != nil {
		log.Error("ending session failed", zap.Error(err))
		return apierr.StoreUnavailable
	}
	// Refused here at once, and by every instance once the event is read.
	if err := h.app.changes.Publish(ctx, changes.Event{Type: changes.EndSession, OpenID: s.UserKey(), SID: id.SID()}); err != nil {
		log.Error("publishing the logout failed; retrying in the background", zap.Error(err))
		return apierr.StoreUnavailable
	}
	h.sendLogout(s, s.Claims)
	return nil
}

// webLogin is one web_login block at work: its browser routes and the
// login flow over its provider.
type webLogin struct {
	app    web.App
	routes *web.Routes
	flow   *login.Flow
}

// provisionWeb sets up each web login: its provider (the sns calls, at
// api_base), the login flow over it, and its browser routes, whose state
// cookies are signed with a key derived from the store's (sealKey) and the
// web app's secret.
func (h *Handler) provisionWeb(sealKey []byte) error {
	var hook login.App
	if h.AppHook.wants(hookLogin) || h.AppHook.wants(hookUserInfo) {
		hook = webHook{h}
	}
	h.web = nil
	for _, name := range webLoginNames(h.WebLogins) {
		app := h.WebLogins[name].app
		if h.LinkBy == "unionid" && app.Mode == web.ModeOA && app.Scope == wechat.ScopeBase {
			h.logger.Warn("web_login with scope snsapi_base never gets a unionid, so link_by unionid cannot join its users with "+
				"the mini-program's: each stays a user of its own openid; use scope snsapi_userinfo to link them",
				zap.String("web_login", name))
		}
		p := web.New(web.Config{App: app, APIBase: h.APIBase, Timeout: time.Duration(h.WeChatTimeout),
			Observe: observeWeChat, Log: h.logger, ConfigError: countWeChatConfigError})
		wl := &webLogin{app: app, flow: h.newFlow(p, h.prefix+"/web/"+name, hook)}
		routes, err := web.NewRoutes(web.RoutesConfig{App: app, Sessions: webSessions{h, wl}, Store: h.store, KeyPrefix: h.prefix,
			StateKey: web.StateKey(sealKey, &app), Trusted: trustedProxy, Logger: h.logger})
		if err != nil {
			return fmt.Errorf("wxauth: %w", err)
		}
		wl.routes = routes
		h.web = append(h.web, wl)
	}
	return nil
}

// trustedProxy reports whether Caddy found r to come through one of its
// trusted_proxies, whose X-Forwarded-Proto a web login then believes.
func trustedProxy(r *http.Request) bool {
	trusted, _ := caddyhttp.GetVar(r.Context(), caddyhttp.TrustedProxyVarKey).(bool)
	return trusted
}

// webSessions is the handler's side of a web login's routes: its login
// flow, and the tokens of its app.
type webSessions struct {
	h  *Handler
	wl *webLogin
}

// Login logs the user of a web login code in, under the handler's login
// limit, and issues the session's token.
func (ws webSessions) Login(r *http.Request, log *zap.Logger, code, nonce string) (web.Issued, error) {
	iss, err := ws.login(r, log, code, nonce)
	countLogin(platforms.WeChat, err)
	return iss, err
}

func (ws webSessions) login(r *http.Request, log *zap.Logger, code, nonce string) (web.Issued, error) {
	h := ws.h
	if err := h.checkLoginLimit(r); err != nil {
		return web.Issued{}, err
	}
	// Without keys the token could not be signed: keep the user's code.
	if _, err := h.signer(); err != nil {
		return web.Issued{}, err
	}
	s, err := ws.wl.flow.Do(r.Context(), log, login.Code{Code: code}, nonce)
	if err != nil {
		return web.Issued{}, err
	}
	tok, exp, err := h.issueAt(s, clock.Real())
	if err != nil {
		return web.Issued{}, err
	}
	return web.Issued{Token: tok, SID: s.ID, Expires: exp}, nil
}

// identity checks tok as a token of this web login's app.
func (ws webSessions) identity(ctx context.Context, tok string) (*guard.Identity, *apierr.Error) {
	id, aerr := ws.h.guard.Check(ctx, tok)
	if aerr != nil {
		return nil, aerr
	}
	if id.Platform() != platforms.WeChat || id.AppID() != ws.wl.app.AppID {
		return nil, apierr.InvalidToken("the token is not one of this web login")
	}
	return id, nil
}

// SID returns the session of tok, a live token of this web login's app.
func (ws webSessions) SID(ctx context.Context, tok string) string {
	if id, aerr := ws.identity(ctx, tok); aerr == nil {
		return id.SID()
	}
	return ""
}

// Logout ends the session of tok, when it is a live one of this web
// login's app; the store's failure is the only error.
func (ws webSessions) Logout(ctx context.Context, log *zap.Logger, tok string) error {
	id, aerr := ws.identity(ctx, tok)
	switch {
	case aerr != nil && aerr.Status == http.StatusServiceUnavailable:
		return aerr
	case aerr != nil:
		return nil // nothing to end
	}
	err := ws.h.endSession(ctx, log, id)
	if ae := apierr.As(err); err != nil && ae.Code == "invalid_token" {
		return nil // ended meanwhile
	}
	return err
}

// webHook asks the app hook about a web login: the login event, then the
// userinfo event with the profile the login gave, each when the app takes
// it. The claims changes of both answers apply, the later one winning.
type webHook struct{ h *Handler }

func (a webHook) AskLogin(ctx context.Context, log *zap.Logger, s *session.Session, id *login.Identity, claims map[string]any, first bool) (map[string]any, error) {
	var change map[string]any
	if a.h.AppHook.wants(hookLogin) {
		var err error
		if change, err = loginHook(a).AskLogin(ctx, log, s, id, claims, first); err != nil {
			return nil, err
		}
	}
	if !a.h.AppHook.wants(hookUserInfo) || len(id.UserInfo) == 0 {
		return change, nil
	}
	ev := a.h.newHookEvent(hookUserInfo, s, claims)
	ev.UserInfo = id.UserInfo
	more, err := a.h.askApp(ctx, log, ev)
	if err != nil {
		return nil, err
	}
	if change == nil {
		return more, nil
	}
	maps.Copy(change, more)
	return change, nil
}

// webOf is the web login whose session cookie is token source src (the
// guard's sources are token_from's, then each web login's cookie), or nil.
func (h *Handler) webOf(src int) *webLogin {
	if i := src - len(h.TokenSources); i >= 0 && i < len(h.web) {
		return h.web[i]
	}
	return nil
}

// dropWebCookie tells the browser to drop a web login's session cookie
// whose session ended or expired (a page cannot: it is HttpOnly), so the
// guard serves the request without it (anonymous on an optional site)
// rather than every page answering 401 to it. Other sources keep the
// refusal.
func (h *Handler) dropWebCookie(w http.ResponseWriter, r *http.Request, src int) bool {
	wl := h.webOf(src)
	if wl == nil {
		return false
	}
	wl.routes.ClearCookie(w, r)
	return true
}

// renewCookie re-issues the session cookie of wl on the response when the
// token the guard accepted (id) is past half its life: a browser that keeps
// using the site stays logged in up to session_max_age, as a mini-program
// that refreshes does. A failure leaves the cookie as it is.
func (h *Handler) renewCookie(w http.ResponseWriter, r *http.Request, wl *webLogin, id *guard.Identity) {
	now := clock.Real()
	if !id.PastHalfLife(now) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	s, err := h.callerSessionOf(ctx, id.SID())
	if err == nil {
		err = h.sessions.Extend(ctx, s, time.Duration(h.TokenTTL))
	}
	var fresh string
	var exp time.Time
	if err == nil {
		fresh, exp, err = h.issueAt(s, now)
	}
	if err != nil {
		h.requestLogger(r).Debug("the session cookie was not renewed", zap.String("web_login", wl.app.Name), zap.Error(err))
		return
	}
	wl.routes.SetCookie(w, r, fresh, exp)
}
