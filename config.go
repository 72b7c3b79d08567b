package wxauth

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/textproto"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/wxauth/caddy-wxauth/internal/guard"
	"github.com/wxauth/caddy-wxauth/internal/platforms"
	"github.com/wxauth/caddy-wxauth/internal/provider/web"
	"github.com/wxauth/caddy-wxauth/internal/users"
	"github.com/wxauth/caddy-wxauth/session"
	"github.com/wxauth/caddy-wxauth/token"
	"github.com/wxauth/caddy-wxauth/wechat"
)

// Config is the wxauth handler's configuration, the JSON of
// http.handlers.wxauth. It is checked in one place, validate, after
// defaults and placeholders are applied.
type Config struct {
	// The WeChat mini-program's AppID. Required unless the handler serves
	// only other platforms (platforms).
	AppID string `json:"app_id,omitempty"`
	// The WeChat mini-program's AppSecret. Required with app_id. {env.*} and {file.*}
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
	// Timeout of each call to WeChat, and to the other platforms. Default 5s.
	WeChatTimeout caddy.Duration `json:"wechat_timeout,omitempty"`

	// The mini-program platforms served besides WeChat, by name (qq,
	// douyin, alipay, baidu, kuaishou): one app each. A handler may serve
	// WeChat (app_id), any of these, or only these; a login names its
	// platform, and a token of a platform the handler does not serve is
	// refused.
	Platforms map[string]*platforms.Block `json:"platforms,omitempty"`
	// LinkBy joins one person's logins across the WeChat apps of one open
	// platform account (the mini-program and web logins): "unionid" keys a
	// user by unionid whenever WeChat gives one, so claims, end_sessions
	// and events follow the person. Empty (default): each app's users are
	// its own.
	LinkBy string `json:"link_by,omitempty"`
	// WeChat logins in the browser, by name (letters, digits, '_', '-'):
	// an official account's OAuth for pages inside WeChat (mode oa) or a
	// website app's QR login (mode qr). Each serves GET <path>/login, GET
	// <path>/callback and POST <path>/logout, and its session cookie is a
	// token source like token_from's. Its sns calls go to api_base.
	WebLogins map[string]*WebLogin `json:"web_logins,omitempty"`

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

	secret string // app_secret with its placeholders replaced
}

// WebLogin is one web_login block: WeChat login in the browser with one
// official account or website app. Its users are WeChat's, of its app id
// and surface (oa or qr); with link_by unionid one person is one user
// across the mini-program and every web login.
type WebLogin struct {
	// The official account's (mode oa) or website app's (mode qr) AppID.
	// Required.
	AppID string `json:"app_id,omitempty"`
	// That app's AppSecret. Required; {env.*} and {file.*} placeholders
	// are replaced at provision time.
	AppSecret string `json:"app_secret,omitempty"`
	// oa: the official account's OAuth, inside WeChat's browser
	// (open.weixin.qq.com/connect/oauth2/authorize); qr: the website's QR
	// login (.../connect/qrconnect). Required.
	Mode string `json:"mode,omitempty"`
	// What an oa login asks: snsapi_base (default; silent, the openid only,
	// never a unionid) or snsapi_userinfo (the user confirms; profile and
	// unionid). qr is always snsapi_login (profile and unionid).
	Scope string `json:"scope,omitempty"`
	// Where the routes live: <path>/login?next=, <path>/callback and
	// <path>/logout. Default /wx/web/<name>.
	Path string `json:"path,omitempty"`
	// The session cookie's name: HttpOnly, SameSite=Lax, Path=/, Secure
	// unless the site is plain http. Default wxauth_<name>.
	Cookie string `json:"cookie,omitempty"`
	// Origin of WeChat's authorize and QR login pages. Default
	// https://open.weixin.qq.com; a wxmock site in development and tests.
	OpenBase string `json:"open_base,omitempty"`
	// The site's origin as browsers see it (https://example.com), which
	// redirect_uri and the logout's Origin check use. Default: the
	// request's Host, https when it came over TLS or through a trusted
	// proxy (Caddy's trusted_proxies) saying X-Forwarded-Proto: https.
	PublicURL string `json:"public_url,omitempty"`

	app web.App // prepared: placeholders replaced, defaults filled in
}

// TokenSource says where a token is read from (token_from).
type TokenSource = guard.TokenSource

// SigningKey is one fixed token signing key.
type SigningKey struct {
	// Key id, sent as the token's kid header. Default "k<index>".
	ID string `json:"id,omitempty"`
	// The HS256 secret, base64 (std or url alphabet), at least 32 bytes decoded.
	Key string `json:"key"`
}

func (c *Config) setDefaults() {
	if c.APIBase == "" {
		c.APIBase = DefaultAPIBase
	}
	if c.TokenTTL == 0 {
		c.TokenTTL = caddy.Duration(DefaultTokenTTL)
	}
	if c.SessionMaxAge == 0 {
		c.SessionMaxAge = caddy.Duration(DefaultSessionMaxAge)
	}
	if c.WeChatTimeout == 0 {
		c.WeChatTimeout = caddy.Duration(wechat.DefaultTimeout)
	}
	if c.SigningAlg == "" {
		c.SigningAlg = token.HS256
	}
	if c.PhoneLimit == nil {
		c.PhoneLimit = &PhoneLimit{Calls: DefaultPhoneCalls, Window: caddy.Duration(DefaultPhoneWindow)}
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 64 << 10
	}
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&c.LoginPath, "/wx/login")
	def(&c.RefreshPath, "/wx/refresh")
	def(&c.LogoutPath, "/wx/logout")
	def(&c.DecryptPath, "/wx/decrypt")
	def(&c.PhonePath, "/wx/phone")
	def(&c.SessionPath, "/wx/session")
	if len(c.TokenSources) == 0 {
		c.TokenSources = []TokenSource{{From: "header", Name: "Authorization", Scheme: "Bearer"}}
	}
	if c.Store == nil {
		c.Store = &StoreConfig{Type: "caddy"}
	}
}

// replacePlaceholders replaces the {env.*} and {file.*} placeholders of
// app_id, app_secret (into c.secret, so the config keeps the placeholder)
// and the signing keys. A value that expands to nothing is an error that
// names it, not a "required" one: the variable is unset or the file empty.
func (c *Config) replacePlaceholders(repl *caddy.Replacer) error {
	expand := func(name, v string) (string, error) { return expandPlaceholders(repl, name, v) }
	var err error
	if c.AppID, err = expand("app_id", c.AppID); err != nil {
		return err
	}
	if c.secret, err = expand("app_secret", c.AppSecret); err != nil {
		return err
	}
	for i := range c.SigningKeys {
		if c.SigningKeys[i].Key, err = expand(fmt.Sprintf("signing_key %d", i+1), c.SigningKeys[i].Key); err != nil {
			return err
		}
	}
	if c.AppHook != nil {
		if c.AppHook.secret, err = expand("app_hook secret", c.AppHook.Secret); err != nil {
			return err
		}
	}
	for _, name := range platforms.SortedNames(c.Platforms) {
		if err := c.Platforms[name].Expand(name, expand); err != nil {
			return err
		}
	}
	for _, name := range webLoginNames(c.WebLogins) {
		wl := c.WebLogins[name]
		wl.app = web.App{Name: name, Mode: wl.Mode, Scope: wl.Scope, Prefix: wl.Path, Cookie: wl.Cookie, OpenBase: wl.OpenBase, PublicURL: wl.PublicURL}
		if wl.app.AppID, err = expand("web_login "+name+" app_id", wl.AppID); err != nil {
			return err
		}
		if wl.app.AppSecret, err = expand("web_login "+name+" app_secret", wl.AppSecret); err != nil {
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
		return "", emptyPlaceholder(name, v)
	}
	return out, nil
}

// emptyPlaceholder says why v, one {file.*} or {env.*} placeholder,
// replaced to nothing: a missing file, an empty one, an unset variable.
func emptyPlaceholder(name, v string) error {
	inner, whole := strings.CutPrefix(v, "{")
	inner, closed := strings.CutSuffix(inner, "}")
	if whole && closed && !strings.ContainsAny(inner, "{}") {
		if path, ok := strings.CutPrefix(inner, "file."); ok {
			switch _, err := os.Stat(path); {
			case errors.Is(err, fs.ErrNotExist):
				return fmt.Errorf("wxauth: %s: the file %q named by %q does not exist", name, path, v)
			case err != nil:
				return fmt.Errorf("wxauth: %s: the file %q named by %q cannot be read: %v", name, path, v, err)
			}
			return fmt.Errorf("wxauth: %s is empty after replacing placeholders in %q: the file %q is empty", name, v, path)
		}
		if env, ok := strings.CutPrefix(inner, "env."); ok {
			if _, set := os.LookupEnv(env); !set {
				return fmt.Errorf("wxauth: %s is empty after replacing placeholders in %q: the environment variable %s is not set", name, v, env)
			}
			return fmt.Errorf("wxauth: %s is empty after replacing placeholders in %q: the environment variable %s is set but empty", name, v, env)
		}
	}
	return fmt.Errorf("wxauth: %s is empty after replacing placeholders in %q", name, v)
}

// validate checks the configuration after defaults and placeholders are
// applied; Provision runs it before opening anything.
func (c *Config) validate() error {
	if err := c.validateApps(); err != nil {
		return err
	}
	u, err := url.Parse(c.APIBase)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("wxauth: api_base %q is not an http(s) URL", c.APIBase)
	}
	if c.AppID != "" && strings.EqualFold(u.Hostname(), weChatAPIHost) {
		if err := c.checkCredentialShapes(); err != nil {
			return err
		}
	}
	if c.TokenTTL < caddy.Duration(time.Minute) {
		return fmt.Errorf("wxauth: token_ttl must be at least 1m")
	}
	if c.SessionMaxAge < c.TokenTTL {
		return fmt.Errorf("wxauth: session_max_age %s is shorter than token_ttl %s; it must be at least token_ttl",
			time.Duration(c.SessionMaxAge), time.Duration(c.TokenTTL))
	}
	if c.WeChatTimeout < 0 || c.KeyRotation < 0 {
		return fmt.Errorf("wxauth: durations must not be negative")
	}
	if least := token.MinRotation(time.Duration(c.TokenTTL)); c.KeyRotation > 0 && len(c.SigningKeys) == 0 && time.Duration(c.KeyRotation) < least {
		return fmt.Errorf("wxauth: key_rotation %s is too short for token_ttl %s: a key is kept until its tokens have expired, "+
			"at most 32 keys are kept, so key_rotation must be at least %s (e.g. 24h)", time.Duration(c.KeyRotation), time.Duration(c.TokenTTL), least)
	}
	if c.SigningAlg != "HS256" && c.SigningAlg != "EdDSA" {
		return fmt.Errorf("wxauth: signing_alg must be HS256 or EdDSA, not %q", c.SigningAlg)
	}
	if c.JWKSPath != "" && (len(c.SigningKeys) > 0 || c.SigningAlg != token.EdDSA) {
		return fmt.Errorf("wxauth: jwks_path publishes EdDSA public keys, but the tokens are signed with HS256 secrets, which are never published: " +
			"use signing_alg EdDSA with generated keys, or remove jwks_path")
	}
	if l := c.LoginLimit; l != nil && (l.Events < 1 || l.Window < caddy.Duration(time.Second)) {
		return fmt.Errorf("wxauth: login_limit needs at least 1 login per window of at least 1s")
	}
	if c.CacheSize < 0 {
		return fmt.Errorf("wxauth: cache_size must not be negative")
	}
	if l := c.PhoneLimit; l.Calls < 1 || l.Window < caddy.Duration(time.Second) {
		return fmt.Errorf("wxauth: phone_limit needs at least 1 call per window of at least 1s")
	}
	if c.MaxBodyBytes < 0 {
		return fmt.Errorf("wxauth: max_body_bytes must not be negative")
	}
	seen := map[string]bool{}
	for _, p := range c.endpointPaths() {
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
	for i := range c.TokenSources {
		if err := c.TokenSources[i].Validate(); err != nil {
			return err
		}
	}
	if c.AppAPI != "" && c.AppHook == nil {
		return fmt.Errorf("wxauth: app_api needs app_hook, whose secret signs the app's calls")
	}
	if c.AppHook != nil {
		if err := c.AppHook.provision(); err != nil {
			return err
		}
		for _, name := range c.AppHook.ClaimHeaders {
			name = textproto.CanonicalMIMEHeaderKey(name)
			for _, src := range c.TokenSources {
				if src.From == "header" && src.Name == name {
					return fmt.Errorf("wxauth: app_hook claim_header: %s carries the token", name)
				}
			}
		}
	}
	return c.Store.validate()
}

// validateApps checks the apps served: WeChat's (app_id, app_secret), the
// platform blocks, and link_by.
func (c *Config) validateApps() error {
	switch {
	case c.AppID == "" && len(c.Platforms) == 0 && len(c.WebLogins) == 0:
		return fmt.Errorf("wxauth: app_id is required%s; a handler of other platforms or web logins only needs a platform or web_login block instead", unsetHint)
	case c.AppID == "" && c.AppSecret != "":
		return fmt.Errorf("wxauth: app_secret is set but app_id is not%s", unsetHint)
	case c.AppID != "" && !users.PlainName(c.AppID):
		// It names the app's keys in the store, so it must be a plain word.
		return fmt.Errorf("wxauth: app_id %q must be letters, digits, '-' or '_' (e.g. wx0123456789abcdef)", c.AppID)
	case c.AppID != "" && c.AppSecret == "":
		return fmt.Errorf("wxauth: app_secret is required%s", unsetHint)
	}
	for _, name := range platforms.SortedNames(c.Platforms) {
		if err := c.Platforms[name].Validate(name); err != nil {
			return err
		}
	}
	if c.LinkBy != "" && c.LinkBy != "unionid" {
		return fmt.Errorf("wxauth: link_by %q: the one way to link is unionid", c.LinkBy)
	}
	return c.validateWebLogins()
}

// validateWebLogins checks the web_login blocks, filling in their defaults.
func (c *Config) validateWebLogins() error {
	modes, cookies := map[string]string{}, map[string]string{}
	for _, src := range c.TokenSources {
		if src.From == "cookie" {
			cookies[src.Name] = "token_from"
		}
	}
	for _, name := range webLoginNames(c.WebLogins) {
		a := &c.WebLogins[name].app
		if err := a.Prepare(); err != nil {
			return fmt.Errorf("wxauth: %w", err)
		}
		onWeChat := strings.EqualFold(c.apiHost(), weChatAPIHost)
		switch {
		case a.AppID == c.AppID:
			return fmt.Errorf("wxauth: web_login %s: app_id is the mini-program's; a web login needs its official account's (oa) or website app's (qr) own AppID", name)
		case onWeChat && !isAppID(a.AppID):
			return fmt.Errorf("wxauth: web_login %s: app_id %q is not a WeChat AppID, which is wx and 16 hex characters"+shapeNote, name, a.AppID)
		case onWeChat && !isHex(a.AppSecret, appSecretLen):
			return fmt.Errorf("wxauth: web_login %s: app_secret is not 32 hex characters, as an AppSecret is: look for a stray space, "+
				"newline or quote (%d characters)"+shapeNote, name, len(a.AppSecret))
		case modes[a.AppID] != "" && modes[a.AppID] != a.Mode:
			return fmt.Errorf("wxauth: web_login %s: app_id %s is an official account in one web_login and a website app in another; an app is one or the other", name, a.AppID)
		case cookies[a.Cookie] != "":
			return fmt.Errorf("wxauth: web_login %s: cookie %q is also the cookie of %s; each web login needs its own", name, a.Cookie, cookies[a.Cookie])
		}
		modes[a.AppID], cookies[a.Cookie] = a.Mode, "web_login "+name
	}
	return nil
}

// webLoginNames lists the web logins' names in a stable order.
func webLoginNames(m map[string]*WebLogin) []string {
	return slices.Sorted(maps.Keys(m))
}

// apiHost is api_base's host name, "" when it does not parse.
func (c *Config) apiHost() string {
	u, err := url.Parse(c.APIBase)
	if err != nil {
		return ""
	}
	return u.Hostname()
}

// apps lists the apps whose tokens the handler accepts besides the
// mini-program's: the platform blocks' and the web logins'.
func (c *Config) apps() []token.App {
	var out []token.App
	for _, name := range platforms.SortedNames(c.Platforms) {
		out = append(out, token.App{Platform: name, AppID: c.Platforms[name].AppID})
	}
	for _, name := range webLoginNames(c.WebLogins) {
		if a := (token.App{Platform: platforms.WeChat, AppID: c.WebLogins[name].app.AppID}); !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// keyRule names the handler's user records.
func (c *Config) keyRule() users.KeyRule {
	return users.KeyRule{PrimaryApp: c.AppID, LinkByUnionID: c.LinkBy == "unionid"}
}

// sealSecret is what the store's seal key derives from: the mini-program's
// AppSecret, or, for a handler without one, the secret of the app that
// names the store (see anchor). Never empty once validated, so the seal is
// never a constant.
func (c *Config) sealSecret() string {
	if c.secret != "" {
		return c.secret
	}
	_, _, secret := c.anchor()
	return secret
}

// storeName names the handler's keys in the store: its WeChat app_id, or
// for a handler without one the anchor app's.
func (c *Config) storeName() string {
	if c.AppID != "" {
		return c.AppID
	}
	kind, appID, _ := c.anchor()
	return kind + "-" + session.HashKey(appID)[:16]
}

// anchor is the app that names and seals the store of a handler with no
// WeChat mini-program: its first platform block by name, else its first
// web login by name. Only that app counts, so adding or changing another
// block keeps the store; changing the anchor's secret, or adding a block
// that comes before it, starts a new one (every session and key anew), as
// changing the mini-program's AppSecret does.
func (c *Config) anchor() (kind, appID, secret string) {
	if name, id, secret := platforms.Anchor(c.Platforms); name != "" {
		return name, id, secret
	}
	if names := webLoginNames(c.WebLogins); len(names) > 0 {
		a := c.WebLogins[names[0]].app
		return "web", a.AppID, a.AppSecret
	}
	return "", "", ""
}

// unsetHint ends the message of a required field that is empty.
const unsetHint = "; if the config sets it with {$NAME}, that variable is probably unset (the Caddyfile adapter replaces " +
	"an unset variable with nothing): set it, or write {env.NAME}, which fails naming the variable"

// The shapes of a mini-program's credentials.
const (
	appIDPrefix  = "wx"
	appIDHexLen  = 16
	appSecretLen = 32
	// originalIDPrefix begins an official account's original id (原始ID).
	originalIDPrefix = "gh_"
)

// weChatAPIHost is the host of WeChat's API (DefaultAPIBase): only there
// are app_id and app_secret held to WeChat's shapes, since wxmock takes any.
var weChatAPIHost = func() string {
	u, _ := url.Parse(DefaultAPIBase)
	return u.Hostname()
}()

// shapeNote ends the messages of checkCredentialShapes.
const shapeNote = " (checked because api_base is WeChat's API, the default; an api_base of a wxmock site takes any value)"

// checkCredentialShapes refuses an app_id or app_secret WeChat would
// refuse: an AppID is wx and 16 hex characters, an AppSecret 32 hex
// characters. The secret is never quoted.
func (c *Config) checkCredentialShapes() error {
	appID := isAppID(c.AppID)
	switch {
	case strings.HasPrefix(c.AppID, originalIDPrefix):
		return fmt.Errorf("wxauth: app_id %q: that is the official account's original id, use the mini-program's AppID "+
			"(wx and 16 hex characters, on mp.weixin.qq.com under 开发管理 → 开发设置)", c.AppID)
	case isHex(c.AppID, appSecretLen):
		// Not quoted: it is probably the secret.
		return fmt.Errorf("wxauth: app_id looks like an AppSecret (32 hex characters): put the AppID (wx and 16 hex characters) in app_id and the AppSecret in app_secret")
	case !appID && isAppID(c.secret):
		return fmt.Errorf("wxauth: app_secret looks like an AppID (wx and 16 hex characters) and app_id does not: app_id and app_secret are probably swapped")
	case !appID:
		return fmt.Errorf("wxauth: app_id %q is not a mini-program's AppID, which is wx and 16 hex characters (e.g. wx0123456789abcdef)"+shapeNote, c.AppID)
	case !isHex(c.secret, appSecretLen):
		return fmt.Errorf("wxauth: app_secret is not 32 hex characters, as a mini-program's AppSecret is: look for a stray space, "+
			"newline or quote, or a value meant for another field (%d characters)"+shapeNote, len(c.secret))
	}
	return nil
}

// isAppID reports whether s has the shape of a mini-program's AppID.
func isAppID(s string) bool {
	rest, ok := strings.CutPrefix(s, appIDPrefix)
	return ok && isHex(rest, appIDHexLen)
}

// isHex reports whether s is n hex digits.
func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') && (c < 'A' || c > 'F') {
			return false
		}
	}
	return true
}

// prepare applies defaults and placeholders, then validates: what
// Provision does before it opens anything, and `caddy validate` with it.
func (c *Config) prepare() error {
	c.setDefaults()
	repl := caddy.NewReplacer()
	if err := c.replacePlaceholders(repl); err != nil {
		return err
	}
	if err := c.Store.replacePlaceholders(repl); err != nil {
		return err
	}
	return c.validate()
}

// stripHeaders lists the client headers removed besides X-Wx-*: those
// that carry claims under another name.
func (c *Config) stripHeaders() []string {
	if c.AppHook == nil {
		return nil
	}
	out := make([]string, 0, len(c.AppHook.ClaimHeaders))
	for _, name := range c.AppHook.ClaimHeaders {
		out = append(out, textproto.CanonicalMIMEHeaderKey(name))
	}
	return out
}

func (c *Config) endpointPaths() []string {
	paths := []string{c.LoginPath, c.RefreshPath, c.LogoutPath, c.DecryptPath, c.PhonePath, c.SessionPath, c.JWKSPath, c.AppAPI}
	for _, name := range webLoginNames(c.WebLogins) {
		paths = append(paths, c.WebLogins[name].app.Paths()...)
	}
	return paths
}
