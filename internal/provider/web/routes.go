package web

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/wxauth/caddy-wxauth/internal/apierr"
	"github.com/wxauth/caddy-wxauth/internal/clock"
	"github.com/wxauth/caddy-wxauth/session"
)

// storeTimeout bounds each store operation of a route.
const storeTimeout = 3 * time.Second

// maxLogoutBody bounds the logout form: a next field at most.
const maxLogoutBody = 16 << 10

// Issued is a session a web login made, and the token that carries it.
type Issued struct {
	// Token is the session's token, which the session cookie holds.
	Token string
	// SID names the session.
	SID string
	// Expires is when Token expires.
	Expires time.Time
}

// Sessions is what the routes need of the handler: its login flow and its
// tokens. Its errors are *apierr.Error values.
type Sessions interface {
	// Login runs the login flow with a web login code, for the callback
	// request r (its context, its client for the login limit): the code
	// exchange through this app's Provider, the user record, the app hook,
	// the session; then it issues the session's token. A second call with
	// the same code and nonce gets a token for the session the first one
	// made.
	Login(r *http.Request, log *zap.Logger, code, nonce string) (Issued, error)
	// SID returns the session id of tok when it is a valid token of a live
	// session of this web app, "" otherwise.
	SID(ctx context.Context, tok string) string
	// Logout ends the session of tok everywhere. A token that is not a
	// valid one of this web app, or whose session has ended, is no error:
	// there is nothing to end. Errors are the store's.
	Logout(ctx context.Context, log *zap.Logger, tok string) error
}

// RoutesConfig is what Routes are built from.
type RoutesConfig struct {
	// App is the web app, prepared (see App.Prepare).
	App App
	// Sessions logs users in and out.
	Sessions Sessions
	// Store keeps the used states, under KeyPrefix.
	Store session.Store
	// KeyPrefix is the handler's prefix of store keys.
	KeyPrefix string
	// StateKey signs the state cookies: at least 32 random bytes, the same
	// on every instance that shares the store, since the callback may reach
	// another instance than the login.
	StateKey []byte
	// Trusted reports whether r came through a trusted proxy, whose
	// X-Forwarded-Proto then says whether the site is https; nil trusts none.
	Trusted func(r *http.Request) bool
	// Logger is the routes' logger when the caller gives none.
	Logger *zap.Logger
	// Now is the clock; nil means clock.Real.
	Now clock.Clock
}

// Routes are a web app's browser routes: GET Prefix/login, GET
// Prefix/callback and POST Prefix/logout.
type Routes struct {
	app       App
	sessions  Sessions
	store     session.Store
	keyPrefix string
	key       []byte
	trusted   func(*http.Request) bool
	log       *zap.Logger
	now       clock.Clock
}

// NewRoutes returns the routes of cfg.
func NewRoutes(cfg RoutesConfig) (*Routes, error) {
	if len(cfg.StateKey) < 32 {
		return nil, fmt.Errorf("web_login %s: the state key must be at least 32 bytes", cfg.App.Name)
	}
	if cfg.Sessions == nil || cfg.Store == nil {
		return nil, fmt.Errorf("web_login %s: routes need sessions and a store", cfg.App.Name)
	}
	rt := &Routes{app: cfg.App, sessions: cfg.Sessions, store: cfg.Store, keyPrefix: cfg.KeyPrefix,
		key: cfg.StateKey, trusted: cfg.Trusted, log: cfg.Logger, now: cfg.Now}
	if rt.trusted == nil {
		rt.trusted = func(*http.Request) bool { return false }
	}
	if rt.log == nil {
		rt.log = zap.NewNop()
	}
	if rt.now == nil {
		rt.now = clock.Real
	}
	return rt, nil
}

// Match reports whether path is one of the routes.
func (rt *Routes) Match(path string) bool {
	return path == rt.app.loginPath() || path == rt.app.callbackPath() || path == rt.app.logoutPath()
}

// CookieName is the session cookie's name.
func (rt *Routes) CookieName() string { return rt.app.Cookie }

// ServeHTTP serves the routes with the routes' own logger.
func (rt *Routes) ServeHTTP(w http.ResponseWriter, r *http.Request) { rt.Serve(w, r, rt.log) }

// Serve answers r, a request to one of the routes (see Match); any other
// path answers 404. Every answer is kept from caches and sends no
// Referer onwards: the callback's URL holds the login code.
func (rt *Routes) Serve(w http.ResponseWriter, r *http.Request, log *zap.Logger) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	method := http.MethodGet
	if r.URL.Path == rt.app.logoutPath() {
		method = http.MethodPost
	}
	switch {
	case !rt.Match(r.URL.Path):
		http.NotFound(w, r)
	case r.Method != method:
		_ = apierr.Write(w, apierr.MethodNotAllowed(method))
	case r.URL.Path == rt.app.loginPath():
		rt.serveLogin(w, r)
	case r.URL.Path == rt.app.callbackPath():
		rt.serveCallback(w, r, log.With(zap.String("web_login", rt.app.Name)))
	default:
		rt.serveLogout(w, r, log.With(zap.String("web_login", rt.app.Name)))
	}
}

// embedReply is the answer to login?embed=1: what WeChat's wxLogin.js
// needs to show the QR code in the site's own page.
type embedReply struct {
	AppID string `json:"appid"`
	Scope string `json:"scope"`
	// RedirectURI is URL-encoded, as WxLogin wants it.
	RedirectURI string `json:"redirect_uri"`
	State       string `json:"state"`
}

// serveLogin starts a login: a new state, bound to the browser by the
// state cookie, then the redirect to WeChat's page (or, with embed=1, what
// the site's page needs to embed WeChat's QR code).
func (rt *Routes) serveLogin(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	c := stateCookie{state: newState(), next: SafeNext(q.Get("next")), expires: rt.now().Add(stateLife)}
	http.SetCookie(w, &http.Cookie{
		Name: rt.stateCookieName(), Value: rt.encodeState(c), Path: rt.app.Prefix,
		MaxAge: int(stateLife / time.Second), HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: rt.secure(r),
	})
	redirectURI := url.QueryEscape(rt.origin(r) + rt.app.callbackPath())
	if q.Get("embed") == "1" {
		_ = apierr.WriteJSON(w, http.StatusOK, embedReply{AppID: rt.app.AppID, Scope: rt.app.Scope, RedirectURI: redirectURI, State: c.state})
		return
	}
	// WeChat wants the parameters in this order, and #wechat_redirect.
	target := rt.app.OpenBase + rt.app.authorizePath() +
		"?appid=" + url.QueryEscape(rt.app.AppID) +
		"&redirect_uri=" + redirectURI +
		"&response_type=code" +
		"&scope=" + rt.app.Scope +
		"&state=" + c.state +
		"#wechat_redirect"
	w.Header().Set("Location", target)
	w.WriteHeader(http.StatusFound)
}

// stateCookieName is the state cookie's name; its Path is the prefix, so
// only the routes get it.
func (rt *Routes) stateCookieName() string { return rt.app.Cookie + "_state" }

// readState returns the browser's state cookie, if it holds a valid one.
func (rt *Routes) readState(r *http.Request) (stateCookie, bool) {
	c, err := r.Cookie(rt.stateCookieName())
	if err != nil {
		return stateCookie{}, false
	}
	return rt.decodeState(c.Value)
}

// serveCallback is where WeChat sends the browser back: with a code and
// the state, or with the state alone when the user declined.
func (rt *Routes) serveCallback(w http.ResponseWriter, r *http.Request, log *zap.Logger) {
	q := r.URL.Query()
	code, state := q.Get("code"), q.Get("state")
	sc, held := rt.readState(r)
	next := ""
	if held {
		next = sc.next
	}
	switch {
	case code == "":
		rt.writePage(w, deniedPage, next)
		return
	case !validState(state) || !validCode(code):
		rt.writePage(w, badStatePage, next)
		return
	}
	held = held && subtle.ConstantTimeCompare([]byte(sc.state), []byte(state)) == 1
	if held {
		rec := usedState{Code: codeHash(code), Next: sc.next, At: rt.now().UnixNano()}
		first, err := rt.claimState(r.Context(), sc, rec)
		if err != nil {
			log.Error("recording a used login state failed", zap.Error(err))
			rt.writeFailure(w, apierr.StoreUnavailable, sc.next)
			return
		}
		if first {
			rt.login(w, r, log, sc, rec)
			return
		}
	}
	rt.again(w, r, log, code, state, sc, held)
}

// login exchanges the code of a callback whose state the browser proved
// it holds, and sets the session cookie.
func (rt *Routes) login(w http.ResponseWriter, r *http.Request, log *zap.Logger, sc stateCookie, rec usedState) {
	rt.clearState(w, r)
	iss, err := rt.sessions.Login(r, log, r.URL.Query().Get("code"), rt.nonce(sc.state))
	if err != nil {
		log.Info("web login failed", zap.String("error", apierr.As(err).Code))
		rt.writeFailure(w, err, sc.next)
		return
	}
	rec.SID = iss.SID
	if err := rt.recordSession(r.Context(), sc, rec); err != nil {
		// The login stands; only a second load of the callback is refused.
		log.Warn("recording the session of a login state failed", zap.Error(err))
	}
	rt.signedIn(w, r, iss, sc.next)
}

// again answers a callback whose state was used before, or that the
// browser does not prove it holds. Only the browser whose session that
// state made, within the replay window, goes on to next: WeChat's in-app
// browser sometimes loads the callback twice. It proves it either with the
// session cookie the first load set, or, when the two loads ran at once,
// with the state cookie, and then gets the same session again.
func (rt *Routes) again(w http.ResponseWriter, r *http.Request, log *zap.Logger, code, state string, sc stateCookie, held bool) {
	rec, err := rt.usedRecord(r.Context(), state, code)
	switch {
	case errors.Is(err, errNoState):
		rt.writePage(w, badStatePage, sc.next)
		return
	case err != nil:
		log.Error("reading a used login state failed", zap.Error(err))
		rt.writeFailure(w, apierr.StoreUnavailable, sc.next)
		return
	}
	if c, err := r.Cookie(rt.app.Cookie); err == nil && rec.SID != "" && rt.sessions.SID(r.Context(), c.Value) == rec.SID {
		if held {
			rt.clearState(w, r)
		}
		redirect(w, rec.Next, http.StatusFound)
		return
	}
	if !held {
		log.Info("a used login state came back from another browser, or too late")
		rt.writePage(w, badStatePage, rec.Next)
		return
	}
	rt.clearState(w, r)
	iss, err := rt.sessions.Login(r, log, code, rt.nonce(state))
	switch {
	case err != nil:
		log.Info("web login failed", zap.String("error", apierr.As(err).Code))
		rt.writeFailure(w, err, rec.Next)
	case rec.SID != "" && iss.SID != rec.SID:
		rt.writePage(w, badStatePage, rec.Next)
	default:
		rt.signedIn(w, r, iss, rec.Next)
	}
}

// signedIn sets the session cookie and sends the browser on at once, so
// the callback's URL, which holds the code, is on no page.
func (rt *Routes) signedIn(w http.ResponseWriter, r *http.Request, iss Issued, next string) {
	rt.SetCookie(w, r, iss.Token, iss.Expires)
	redirect(w, next, http.StatusFound)
}

// SetCookie sets the session cookie to tok, which expires at exp: the
// whole site's, HttpOnly, SameSite=Lax, Secure unless the site is plain
// http, kept as long as the token.
func (rt *Routes) SetCookie(w http.ResponseWriter, r *http.Request, tok string, exp time.Time) {
	http.SetCookie(w, &http.Cookie{
		Name: rt.app.Cookie, Value: tok, Path: "/", MaxAge: maxAge(exp.Sub(rt.now())),
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: rt.secure(r),
	})
}

// maxAge is a cookie's Max-Age for a token with left to live: in whole
// seconds rounded up, since a token's expiry is a whole second and the
// clock is not, and at least 1 (0 would delete the cookie).
func maxAge(left time.Duration) int {
	return max(int((left+time.Second-1)/time.Second), 1)
}

// clearState removes the state cookie: it has been used.
func (rt *Routes) clearState(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: rt.stateCookieName(), Path: rt.app.Prefix, MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: rt.secure(r)})
}

// writeFailure answers a login that failed with err: the snapshot page, or
// a page with the error's status and message.
func (rt *Routes) writeFailure(w http.ResponseWriter, err error, next string) {
	if errors.Is(err, ErrSnapshotUser) {
		rt.writePage(w, snapshotPage, next)
		return
	}
	e := apierr.As(err)
	if name, value := e.Header(); name == "Retry-After" {
		w.Header().Set(name, value)
	}
	rt.writePage(w, failedPage(e.Status, e.Message), next)
}

// serveLogout ends the browser's session: only when the request comes
// from a page of this site, so that another site cannot log the user out.
func (rt *Routes) serveLogout(w http.ResponseWriter, r *http.Request, log *zap.Logger) {
	if !rt.sameSite(r) {
		log.Info("a logout from another site refused")
		_ = apierr.Write(w, apierr.Forbidden("a logout must be sent by a page of this site ("+rt.origin(r)+"): Origin or Referer named another site, or none"))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxLogoutBody)
	next := "/"
	if err := r.ParseForm(); err == nil {
		next = SafeNext(r.PostForm.Get("next"))
	}
	if c, err := r.Cookie(rt.app.Cookie); err == nil && c.Value != "" {
		if err := rt.sessions.Logout(r.Context(), log, c.Value); err != nil {
			// The session goes on, so the cookie stays: a retry can end it.
			_ = apierr.Write(w, err)
			return
		}
	}
	rt.ClearCookie(w, r)
	redirect(w, next, http.StatusSeeOther)
}

// ClearCookie tells the browser to drop the session cookie: its session
// has ended, and an HttpOnly cookie is one a page cannot delete itself.
func (rt *Routes) ClearCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: rt.app.Cookie, Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: rt.secure(r)})
}

// redirect sends the browser to next, a path SafeNext passed.
func redirect(w http.ResponseWriter, next string, status int) {
	w.Header().Set("Location", next)
	w.WriteHeader(status)
}

// codeHash names a code in the store without keeping it.
func codeHash(code string) string { return session.HashKey(code) }

// validCode reports whether a code looks like one before it costs a
// WeChat call: bounded and printable.
func validCode(code string) bool {
	return len(code) <= 256 && !strings.ContainsFunc(code, func(c rune) bool { return c <= ' ' || c >= 0x7f })
}
