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
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/wxauth/caddy-wxauth/internal/background"
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
)

// Handler is the wxauth middleware: it serves the login, refresh, logout,
// decrypt, phone and session endpoints and requires a valid token on every
// other request that reaches it.
type Handler struct {
	// The mini-program's AppID. Required.
	AppID string `json:"app_id,omitempty"`
	// The mini-program's AppSecret. Required. {env.*} and {file.*}
	// placeholders are replaced at provision time, so the secret can stay out
	// of the config.
	AppSecret string `json:"app_secret,omitempty"`
	// Base URL of the WeChat server API. Default https://api.weixin.qq.com;
	// point it at a wxmock site for development and tests.
	APIBase string `json:"api_base,omitempty"`
	// How long an issued token is valid. Default 2h.
	TokenTTL caddy.Duration `json:"token_ttl,omitempty"`
	// How long a session lasts from its login however often it is
	// refreshed: no token expires later than login + session_max_age. At
	// least token_ttl. Default 30 days.
	SessionMaxAge caddy.Duration `json:"session_max_age,omitempty"`
	// Timeout of each call to WeChat. Default 5s.
	WeChatTimeout caddy.Duration `json:"wechat_timeout,omitempty"`

	// Fixed signing keys; the first signs, all verify. When empty, a key is
	// generated once per app_id and kept in the store, so every instance that
	// shares the store agrees on it and restarts keep tokens valid.
	SigningKeys []SigningKey `json:"signing_keys,omitempty"`
	// Algorithm of generated signing keys: HS256 (default) or EdDSA. EdDSA
	// public keys are published at jwks_path for upstream verification.
	SigningAlg string `json:"signing_alg,omitempty"`
	// How often generated signing keys rotate; 0 (default) never rotates.
	// The previous key keeps verifying until its tokens have expired.
	KeyRotation caddy.Duration `json:"key_rotation,omitempty"`

	// Where sessions, session_keys, keys and the access_token live.
	// Default: Caddy's configured storage.
	Store *StoreConfig `json:"store,omitempty"`

	// When true, requests without a token go on anonymously (identity
	// headers still stripped); a bad token is still refused.
	Optional bool `json:"optional,omitempty"`
	// Where tokens are read from, tried in order. Default: the
	// Authorization header with the Bearer scheme.
	TokenSources []TokenSource `json:"token_from,omitempty"`
	// When true, the token stays on the request for the next handler, for
	// upstreams that verify it themselves (see jwks_path). By default it is
	// removed once checked (the header, the cookie or the query parameter it
	// came from), so it reaches no upstream and no later handler's log.
	ForwardToken bool `json:"forward_token,omitempty"`

	// Path of the login endpoint (wx.login code in, token out). Default /wx/login.
	LoginPath string `json:"login_path,omitempty"`
	// Path of the token refresh endpoint. Default /wx/refresh.
	RefreshPath string `json:"refresh_path,omitempty"`
	// Path of the logout endpoint, which ends the session. Default /wx/logout.
	LogoutPath string `json:"logout_path,omitempty"`
	// Path of the encryptedData decryption endpoint. Default /wx/decrypt.
	DecryptPath string `json:"decrypt_path,omitempty"`
	// Path of the getPhoneNumber code endpoint. Default /wx/phone.
	PhonePath string `json:"phone_path,omitempty"`
	// Path of the session info endpoint (with session_key validity). Default /wx/session.
	SessionPath string `json:"session_path,omitempty"`
	// Path where the JWKS (public EdDSA keys) is served; empty = not served.
	JWKSPath string `json:"jwks_path,omitempty"`

	// Sends the app behind Caddy the verified login, phone number,
	// decrypted data and logout events; see AppHook.
	AppHook *AppHook `json:"app_hook,omitempty"`
	// Path where the app calls wxauth, signed with the app hook's secret:
	// set a user's claims, end a user's sessions. Empty = not served;
	// needs app_hook.
	AppAPI string `json:"app_api,omitempty"`

	// Optional per-client-IP cap on logins; off by default.
	LoginLimit *LoginLimit `json:"login_limit,omitempty"`
	// Cap on the WeChat phone number calls each user (openid) causes,
	// counted in the store across sessions and instances; over it the phone
	// endpoint answers 429 without calling WeChat, which bills each call.
	// Default 5 per 10 minutes.
	PhoneLimit *PhoneLimit `json:"phone_limit,omitempty"`

	// How many verified tokens each wxauth handler keeps cached. When full,
	// tokens not used lately make room one at a time. Default 100000.
	CacheSize int `json:"cache_size,omitempty"`

	// Largest accepted request body on the endpoints, in bytes. Default 64 KiB.
	MaxBodyBytes int64 `json:"max_body_bytes,omitempty"`

	secret   string
	prefix   string
	app      *appState // shared with this app's other handlers in the process
	store    session.Store
	strip    []string // extra client headers to remove, from claim_headers
	keys     *keySource
	sessions *session.Manager
	wx       *wechat.Client
	access   *wechat.AccessTokens
	guard    *guard
	logins   *loginFlight
	limiter  *loginLimit
	phone    *phoneQuota
	routes   map[string]endpoint
	release  func() error
	unshare  func() // releases app
	logger   *zap.Logger
	bg       background.Runner // one-shot background work
}

// SigningKey is one fixed token signing key.
type SigningKey struct {
	// Key id, sent as the token's kid header. Default "k<index>".
	ID string `json:"id,omitempty"`
	// The HS256 secret, base64 (std or url alphabet), at least 32 bytes decoded.
	Key string `json:"key"`
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.wxauth",
		New: func() caddy.Module { return new(Handler) },
	}
}

func (h *Handler) setDefaults() {
	if h.APIBase == "" {
		h.APIBase = DefaultAPIBase
	}
	if h.TokenTTL == 0 {
		h.TokenTTL = caddy.Duration(DefaultTokenTTL)
	}
	if h.SessionMaxAge == 0 {
		h.SessionMaxAge = caddy.Duration(DefaultSessionMaxAge)
	}
	if h.WeChatTimeout == 0 {
		h.WeChatTimeout = caddy.Duration(wechat.DefaultTimeout)
	}
	if h.SigningAlg == "" {
		h.SigningAlg = token.HS256
	}
	if h.PhoneLimit == nil {
		h.PhoneLimit = &PhoneLimit{Calls: DefaultPhoneCalls, Window: caddy.Duration(DefaultPhoneWindow)}
	}
	if h.MaxBodyBytes == 0 {
		h.MaxBodyBytes = 64 << 10
	}
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&h.LoginPath, "/wx/login")
	def(&h.RefreshPath, "/wx/refresh")
	def(&h.LogoutPath, "/wx/logout")
	def(&h.DecryptPath, "/wx/decrypt")
	def(&h.PhonePath, "/wx/phone")
	def(&h.SessionPath, "/wx/session")
	if len(h.TokenSources) == 0 {
		h.TokenSources = []TokenSource{{From: "header", Name: "Authorization", Scheme: "Bearer"}}
	}
	if h.Store == nil {
		h.Store = &StoreConfig{Type: "caddy"}
	}
}

// replacePlaceholders replaces the {env.*} and {file.*} placeholders of
// app_id, app_secret (into h.secret, so the config keeps the placeholder)
// and the signing keys. A value that expands to nothing is an error that
// names it, not a "required" one: the variable is unset or the file empty.
func (h *Handler) replacePlaceholders(repl *caddy.Replacer) error {
	expand := func(name, v string) (string, error) { return expandPlaceholders(repl, name, v) }
	var err error
	if h.AppID, err = expand("app_id", h.AppID); err != nil {
		return err
	}
	if h.secret, err = expand("app_secret", h.AppSecret); err != nil {
		return err
	}
	for i := range h.SigningKeys {
		if h.SigningKeys[i].Key, err = expand(fmt.Sprintf("signing_key %d", i+1), h.SigningKeys[i].Key); err != nil {
			return err
		}
	}
	if h.AppHook != nil {
		if h.AppHook.secret, err = expand("app_hook secret", h.AppHook.Secret); err != nil {
			return err
		}
	}
	return nil
}

// expandPlaceholders replaces the {env.*} and {file.*} placeholders of the
// config field name; a field that held something and comes out empty (an
// unset variable, an empty file) is an error, not a silent default.
func expandPlaceholders(repl *caddy.Replacer, name, v string) (string, error) {
	out := repl.ReplaceKnown(v, "")
	if v != "" && out == "" {
		return "", fmt.Errorf("wxauth: %s is empty after replacing placeholders in %q", name, v)
	}
	return out, nil
}

// validate checks the configuration after defaults and placeholders are
// applied; Provision runs it before opening anything.
func (h *Handler) validate() error {
	if h.AppID == "" {
		return fmt.Errorf("wxauth: app_id is required")
	}
	if !isPlainName(h.AppID) {
		// It names the app's keys in the store, so it must be a plain word.
		return fmt.Errorf("wxauth: app_id %q must be letters, digits, '-' or '_' (e.g. wx0123456789abcdef)", h.AppID)
	}
	if h.AppSecret == "" {
		return fmt.Errorf("wxauth: app_secret is required")
	}
	u, err := url.Parse(h.APIBase)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("wxauth: api_base %q is not an http(s) URL", h.APIBase)
	}
	if h.TokenTTL < caddy.Duration(time.Minute) {
		return fmt.Errorf("wxauth: token_ttl must be at least 1m")
	}
	if h.SessionMaxAge < h.TokenTTL {
		return fmt.Errorf("wxauth: session_max_age %s is shorter than token_ttl %s; it must be at least token_ttl",
			time.Duration(h.SessionMaxAge), time.Duration(h.TokenTTL))
	}
	if h.WeChatTimeout < 0 || h.KeyRotation < 0 {
		return fmt.Errorf("wxauth: durations must not be negative")
	}
	if least := token.MinRotation(time.Duration(h.TokenTTL)); h.KeyRotation > 0 && len(h.SigningKeys) == 0 && time.Duration(h.KeyRotation) < least {
		return fmt.Errorf("wxauth: key_rotation %s is too short for token_ttl %s: a key is kept until its tokens have expired, "+
			"at most 32 keys are kept, so key_rotation must be at least %s (e.g. 24h)", time.Duration(h.KeyRotation), time.Duration(h.TokenTTL), least)
	}
	if h.SigningAlg != "HS256" && h.SigningAlg != "EdDSA" {
		return fmt.Errorf("wxauth: signing_alg must be HS256 or EdDSA, not %q", h.SigningAlg)
	}
	if h.JWKSPath != "" && (len(h.SigningKeys) > 0 || h.SigningAlg != token.EdDSA) {
		return fmt.Errorf("wxauth: jwks_path publishes EdDSA public keys, but the tokens are signed with HS256 secrets, which are never published: " +
			"use signing_alg EdDSA with generated keys, or remove jwks_path")
	}
	if l := h.LoginLimit; l != nil && (l.Events < 1 || l.Window < caddy.Duration(time.Second)) {
		return fmt.Errorf("wxauth: login_limit needs at least 1 login per window of at least 1s")
	}
	if h.CacheSize < 0 {
		return fmt.Errorf("wxauth: cache_size must not be negative")
	}
	if l := h.PhoneLimit; l.Calls < 1 || l.Window < caddy.Duration(time.Second) {
		return fmt.Errorf("wxauth: phone_limit needs at least 1 call per window of at least 1s")
	}
	if h.MaxBodyBytes < 0 {
		return fmt.Errorf("wxauth: max_body_bytes must not be negative")
	}
	seen := map[string]bool{}
	for _, p := range h.endpointPaths() {
		if p == "" {
			continue
		}
		if !strings.HasPrefix(p, "/") {
			return fmt.Errorf("wxauth: endpoint path %q must start with /", p)
		}
		if seen[p] {
			return fmt.Errorf("wxauth: endpoint path %q is used twice", p)
		}
		seen[p] = true
	}
	for i := range h.TokenSources {
		if err := h.TokenSources[i].validate(); err != nil {
			return err
		}
	}
	return h.Store.validate()
}

func (h *Handler) endpointPaths() []string {
	return []string{h.LoginPath, h.RefreshPath, h.LogoutPath, h.DecryptPath, h.PhonePath, h.SessionPath, h.JWKSPath, h.AppAPI}
}

// Provision sets up the store, keys and WeChat client.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	h.setDefaults()
	repl := caddy.NewReplacer()
	if err := h.replacePlaceholders(repl); err != nil {
		return err
	}
	if err := h.Store.replacePlaceholders(repl); err != nil {
		return err
	}
	if err := h.validate(); err != nil {
		return err
	}
	if h.AppAPI != "" && h.AppHook == nil {
		return fmt.Errorf("wxauth: app_api needs app_hook, whose secret signs the app's calls")
	}
	if h.AppHook != nil {
		if err := h.AppHook.provision(); err != nil {
			return err
		}
		for _, name := range h.AppHook.ClaimHeaders {
			name = textproto.CanonicalMIMEHeaderKey(name)
			for _, src := range h.TokenSources {
				if src.From == "header" && src.Name == name {
					return fmt.Errorf("wxauth: app_hook claim_header: %s carries the token", name)
				}
			}
			h.strip = append(h.strip, name)
		}
	}

	prefix := "wxauth/" + h.AppID
	opened, release, err := h.Store.open(ctx, prefix)
	if err != nil {
		return err
	}
	h.release = release
	// Everything is sealed with a key derived from the app secret, which
	// lives in the config, not in the store: a copy of the store gives away
	// no session_key, signing key or access_token.
	sealKey, err := hkdf.Key(sha256.New, []byte(h.secret), nil, "caddy-wxauth store "+h.AppID, 32)
	if err != nil {
		return fmt.Errorf("wxauth: deriving the store key: %w", err)
	}
	store, err := session.Sealed(opened.Store, sealKey)
	if err != nil {
		return fmt.Errorf("wxauth: sealing the store: %w", err)
	}
	h.prefix, h.store = prefix, store
	h.sessions = session.NewManager(store, prefix)
	h.sessions.SetMaxAge(time.Duration(h.SessionMaxAge))

	// Events of the app: a logout, a user's sessions ended, a claim change.
	// Ended records are kept as long as a token can live.
	keep := time.Duration(h.TokenTTL) + token.DefaultLeeway
	feed, err := session.SealedFeed(opened.feed(prefix+"/feed", keep), sealKey)
	if err != nil {
		return fmt.Errorf("wxauth: sealing the feed: %w", err)
	}

	// The state kept across reloads is tied to the store key, so a reset
	// app secret never reuses keys of the old one.
	sealID := sha256.Sum256(sealKey)
	appKey := fmt.Sprintf("%s|%s|%s|%x", h.Store.identity(), prefix, h.SigningAlg, sealID[:8])
	h.app, h.unshare = loadAppState(appKey, feed, keep, h.logger)
	fresh := feedFreshness{health: h.app.changes.health, bound: h.Store.changeBound(), lag: h.Store.feedLag()}
	if err := h.provisionTokens(ctx); err != nil {
		return err
	}

	// Background work runs in the wxauth app, which Caddy starts with the
	// config (never on `caddy validate`).
	appMod, err := ctx.App("wxauth")
	if err != nil {
		return fmt.Errorf("wxauth: loading the wxauth app: %w", err)
	}
	bg := appMod.(*App)
	bg.add("feed "+appKey, h.app.changes.follow)
	bg.add("retry "+appKey, h.app.changes.retry)
	h.bg = bg.run
	if opened.sweep != nil {
		bg.add("sweep "+appKey, sweeper(opened.Store, prefix, opened.sweep))
	}
	if h.keys.m != nil {
		bg.add("keys "+appKey, func(ctx context.Context) { h.keys.maintain(ctx, time.Duration(h.KeyRotation)) })
		check := func() { _ = h.keys.check(context.Background()) }
		h.app.changes.onGap.Store(&check)
		h.keys.onWipe = h.app.changes.gapped
	}

	if err := registerMetrics(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("wxauth: registering metrics: %w", err)
	}
	h.wx = wechat.NewClient(wechat.Config{
		AppID:     h.AppID,
		AppSecret: h.secret,
		BaseURL:   h.APIBase,
		Timeout:   time.Duration(h.WeChatTimeout),
		Observe:   observeWeChat,
	})
	h.access = wechat.NewAccessTokens(h.wx, store, prefix+"/access_token", metrics.tokenRefresh.Inc)
	h.guard = newGuard(guardConfig{
		ctx:          ctx,
		verify:       h.verifyToken,
		lookup:       h.liveSession,
		now:          time.Now,
		fresh:        fresh,
		ended:        h.app.ended,
		sources:      h.TokenSources,
		strip:        h.strip,
		claimHeaders: h.claimHeaders(),
		optional:     h.Optional,
		cacheSize:    h.CacheSize,
		forwardToken: h.ForwardToken,
		logger:       h.logger,
	})
	h.logins = newLoginFlight(store, prefix, h.liveSession)
	h.limiter = newLoginLimit(h.LoginLimit, store, prefix, time.Now)
	h.phone = &phoneQuota{prefix: prefix, windowCounter: windowCounter{
		store: store, limit: h.PhoneLimit.Calls, window: time.Duration(h.PhoneLimit.Window), now: time.Now}}
	h.routes = h.buildRoutes()
	return nil
}

// Cleanup releases the store.
func (h *Handler) Cleanup() error {
	if h.guard != nil {
		h.guard.close()
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
	return h.guard.serve(w, r, next)
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)

// claimHeaders maps claims to header names, from the app hook's config.
func (h *Handler) claimHeaders() map[string]string {
	if h.AppHook == nil {
		return nil
	}
	return h.AppHook.ClaimHeaders
}
