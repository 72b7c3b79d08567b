// Package wxauth is a Caddy module for WeChat mini-program login. It serves
// the login endpoint (code2Session with the app secret, which never leaves the
// server), issues its own signed tokens, and guards every other request that
// reaches it, handing the app behind Caddy the caller's openid in X-Wx-Openid.
//
// Importing this package registers http.handlers.wxauth only, so a
// production build carries no mock. The WeChat stand-in http.handlers.wxmock
// is the package github.com/wxauth/caddy-wxauth/wxmock, imported on its own
// by development and test builds.
package wxauth

import (
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/wxauth/caddy-wxauth/internal/background"
	"github.com/wxauth/caddy-wxauth/internal/clock"
	"github.com/wxauth/caddy-wxauth/internal/guard"
	"github.com/wxauth/caddy-wxauth/internal/keys"
	"github.com/wxauth/caddy-wxauth/internal/quota"
	"github.com/wxauth/caddy-wxauth/internal/users"
	"github.com/wxauth/caddy-wxauth/session"
	"github.com/wxauth/caddy-wxauth/token"
	"github.com/wxauth/caddy-wxauth/wechat"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Defaults of the contract, kept where the plain packages define them.
const (
	// DefaultAPIBase is the WeChat server API, where api_base points unless set.
	DefaultAPIBase = wechat.DefaultBaseURL
	// DefaultTokenTTL is how long an issued token is valid unless token_ttl is set.
	DefaultTokenTTL = token.DefaultTTL
	// DefaultSessionMaxAge is how long a session may be refreshed after its
	// login unless session_max_age is set.
	DefaultSessionMaxAge = 30 * 24 * time.Hour
	// DefaultCacheSize bounds the verified-token cache of each wxauth
	// handler unless cache_size is set.
	DefaultCacheSize = guard.DefaultCacheSize
)

// Handler is the wxauth middleware: it serves the login, refresh, logout,
// decrypt, phone and session endpoints and requires a valid token on every
// other request that reaches it.
type Handler struct {
	// Config is every setting of the handler, inlined in its JSON.
	Config

	prefix   string
	app      *appState // shared with this app's other handlers in the process
	store    session.Store
	strip    []string // extra client headers to remove, from claim_headers
	keys     *keys.Source
	sessions *session.Manager
	users    *users.Store
	logins   map[string]*platformLogin // by platform: its provider and login flow
	web      []*webLogin               // the web logins, by name
	guard    *guard.Guard
	limiter  *quota.Login
	phone    *quota.Phone
	routes   map[string]endpoint
	release  func() error
	unshare  func() // releases app
	logger   *zap.Logger
	bg       background.Runner // one-shot background work
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.wxauth",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision checks the config, then wires the packages once: the sealed
// store, the state shared across reloads, the signing keys, the background
// jobs, the token check, the login flow and the limits.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	if err := h.Config.prepare(); err != nil {
		return err
	}
	h.strip = h.stripHeaders()
	if err := registerMetrics(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("wxauth: registering metrics: %w", err)
	}
	opened, sealKey, err := h.openStore(ctx)
	if err != nil {
		return err
	}
	appKey, err := h.shareAppState(opened, sealKey)
	if err != nil {
		return err
	}
	if err := h.provisionTokens(ctx); err != nil {
		return err
	}
	if err := h.addBackgroundJobs(ctx, appKey, opened); err != nil {
		return err
	}
	h.guard = guard.New(h.guardConfig(ctx))
	if err := h.provisionLogin(h.store, h.prefix, sealKey); err != nil {
		return err
	}
	h.provisionLimits()
	h.routes = h.buildRoutes()
	return nil
}

// guardConfig is the token check's configuration, from the handler's.
func (h *Handler) guardConfig(ctx caddy.Context) guard.Config {
	return guard.Config{
		Ctx:          ctx,
		Verify:       h.verifyToken,
		Lookup:       h.users.Live,
		Now:          clock.Coarse.Now,
		Fresh:        guard.FeedFreshness{Feed: h.app.changes, Bound: h.Store.changeBound(), Lag: h.Store.feedLag()},
		Ended:        h.app.ended,
		Keys:         h.keyRule(),
		Placeholders: mapPlaceholders,
		Counters:     metrics.guardCounters(),
		Sources:      h.tokenSources(),
		Refused:      h.dropWebCookie,
		Strip:        h.strip,
		ClaimHeaders: h.claimHeaders(),
		Optional:     h.Optional,
		CacheSize:    h.CacheSize,
		ForwardToken: h.ForwardToken,
		Logger:       h.logger,
	}
}

// Cleanup releases the store.
func (h *Handler) Cleanup() error {
	if h.guard != nil {
		h.guard.Close()
	}
	if h.unshare != nil {
		h.unshare()
	}
	if h.release != nil {
		return h.release()
	}
	return nil
}

// ServeHTTP serves the plugin's endpoints and guards everything else.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if ep, ok := h.routes[r.URL.Path]; ok {
		return h.serveEndpoint(w, r, ep)
	}
	id, src, pass, err := h.guard.Serve(w, r)
	if !pass {
		return err
	}
	if wl := h.webOf(src); wl != nil && id != nil {
		h.renewCookie(w, r, wl, id)
	}
	return next.ServeHTTP(w, r)
}

// mapPlaceholders hands the guard's {http.auth.user.*} values to the
// request's Caddy replacer.
func mapPlaceholders(r *http.Request, lookup func(key string) (any, bool)) {
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Map(lookup)
	}
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)

// tokenSources are where the guard reads tokens: token_from's, then each
// web login's session cookie.
func (h *Handler) tokenSources() []guard.TokenSource {
	out := slices.Clone(h.TokenSources)
	for _, name := range webLoginNames(h.WebLogins) {
		out = append(out, guard.TokenSource{From: "cookie", Name: h.WebLogins[name].app.Cookie})
	}
	return out
}

// claimHeaders maps claims to header names, from the app hook's config.
func (h *Handler) claimHeaders() map[string]string {
	if h.AppHook == nil {
		return nil
	}
	return h.AppHook.ClaimHeaders
}
