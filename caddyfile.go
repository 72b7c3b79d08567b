package wxauth

import (
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"
	"github.com/wxauth/caddy-wxauth/internal/platforms"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("wxauth", parseCaddyfile)
	httpcaddyfile.RegisterDirectiveOrder("wxauth", httpcaddyfile.After, "basic_auth")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var m Handler
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return &m, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens:
//
//	wxauth [<matcher>] {
//		app_id       <appid>
//		app_secret   <secret>
//		api_base     <url>
//		token_ttl    <duration>
//		session_max_age <duration>
//		signing_key  <base64> [<id>]
//		signing_alg  HS256|EdDSA
//		key_rotation <duration>
//		store        caddy|memory
//		store        redis <url> [{ <redis options> }]
//		store        redis-cluster <host:port>... | <url> [{ <redis options> }]
//		store        redis-sentinel <master-name> <host:port>... | <url> [{ <redis options> }]
//		optional
//		forward_token
//		token_from   header <Name> [<scheme>] | cookie <name> | query <param>
//		login_path | refresh_path | logout_path | decrypt_path | phone_path | session_path | jwks_path <path>
//		wechat_timeout <duration>
//		max_body     <size>
//		login_limit  <logins> <window>
//		phone_limit  <calls> <window>
//		app_hook     <url> { secret <whsec_...>; events login phone decrypt logout; timeout <duration>; claim_header <claim> <Header-Name> }
//		app_api      <path>
//		cache_size   <tokens>
//		platform     qq|douyin|alipay|baidu|kuaishou { app_id; app_secret; private_key; alipay_public_key; aes_key; api_base }
//		link_by      unionid
//		web_login    <name> { app_id; app_secret; mode oa|qr; scope; path; cookie; open_base; public_url }
//	}
//
// signing_key, token_from, claim_header, platform (once per platform) and
// web_login (once per name) may repeat; every other subdirective may be
// given once per block.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	given := once{"signing_key": repeatable, "token_from": repeatable, "platform": repeatable, "web_login": repeatable}
	for d.NextBlock(0) {
		if err := given.check(d); err != nil {
			return err
		}
		var err error
		switch d.Val() {
		case "app_id":
			err = credentialArg(d, &h.AppID)
		case "app_secret":
			err = credentialArg(d, &h.AppSecret)
		case "api_base":
			err = arg(d, &h.APIBase)
		case "token_ttl":
			err = durationArg(d, &h.TokenTTL)
		case "session_max_age":
			err = durationArg(d, &h.SessionMaxAge)
		case "wechat_timeout":
			err = durationArg(d, &h.WeChatTimeout)
		case "key_rotation":
			err = durationArg(d, &h.KeyRotation)
		case "signing_alg":
			err = arg(d, &h.SigningAlg)
		case "signing_key":
			args := d.RemainingArgs()
			if len(args) < 1 || len(args) > 2 {
				return d.ArgErr()
			}
			k := SigningKey{Key: args[0]}
			if len(args) == 2 {
				k.ID = args[1]
			}
			h.SigningKeys = append(h.SigningKeys, k)
		case "store":
			err = h.unmarshalStore(d)
		case "platform":
			err = h.unmarshalPlatform(d)
		case "link_by":
			err = arg(d, &h.LinkBy)
		case "web_login":
			err = h.unmarshalWebLogin(d)
		case "optional":
			if d.NextArg() {
				return d.ArgErr()
			}
			h.Optional = true
		case "forward_token":
			if d.NextArg() {
				return d.ArgErr()
			}
			h.ForwardToken = true
		case "token_from":
			args := d.RemainingArgs()
			if len(args) < 2 || len(args) > 3 || (len(args) == 3 && args[0] != "header") {
				return d.Errf("token_from wants: header <Name> [<scheme>] | cookie <name> | query <param>")
			}
			s := TokenSource{From: args[0], Name: args[1]}
			if len(args) == 3 {
				s.Scheme = args[2]
			}
			h.TokenSources = append(h.TokenSources, s)
		case "login_path":
			err = arg(d, &h.LoginPath)
		case "refresh_path":
			err = arg(d, &h.RefreshPath)
		case "logout_path":
			err = arg(d, &h.LogoutPath)
		case "decrypt_path":
			err = arg(d, &h.DecryptPath)
		case "phone_path":
			err = arg(d, &h.PhonePath)
		case "session_path":
			err = arg(d, &h.SessionPath)
		case "jwks_path":
			err = arg(d, &h.JWKSPath)
		case "login_limit":
			var n int
			var win caddy.Duration
			if n, win, err = countPerWindow(d, "logins", "login_limit 20 1m"); err == nil {
				h.LoginLimit = &LoginLimit{Events: n, Window: win}
			}
		case "phone_limit":
			var n int
			var win caddy.Duration
			if n, win, err = countPerWindow(d, "calls", "phone_limit 5 10m"); err == nil {
				h.PhoneLimit = &PhoneLimit{Calls: n, Window: win}
			}
		case "app_hook":
			err = h.unmarshalHook(d)
		case "app_api":
			err = arg(d, &h.AppAPI)
		case "cache_size":
			var v string
			if err = arg(d, &v); err == nil {
				if h.CacheSize, err = strconv.Atoi(v); err != nil || h.CacheSize < 1 {
					return d.Errf("cache_size: %q is not a positive number of tokens", v)
				}
			}
		case "max_body":
			var s string
			if err = arg(d, &s); err == nil {
				var n uint64
				if n, err = humanize.ParseBytes(s); err != nil || n == 0 || n > 1<<30 {
					return d.Errf("max_body: %q is not a size between 1B and 1GiB", s)
				}
				h.MaxBodyBytes = int64(n)
			}
		default:
			return d.Errf("unrecognized subdirective %q", d.Val())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// storeOptions are the block options each Redis store takes.
var storeOptions = map[string][]string{
	"redis":          {"username", "password", "db", "tls", "tls_ca", "tls_server_name", "pool_size", "key_prefix"},
	"redis-cluster":  {"username", "password", "tls", "tls_ca", "tls_server_name", "pool_size", "key_prefix"},
	"redis-sentinel": {"username", "password", "sentinel_username", "sentinel_password", "db", "tls", "tls_ca", "tls_server_name", "pool_size", "key_prefix"},
}

// unmarshalStore parses
//
//	store caddy|memory
//	store redis          <url> [{ options }]
//	store redis-cluster  <host:port>... | <url> [{ options }]
//	store redis-sentinel <master-name> <host:port>... | <url> [{ options }]
//
// Values with placeholders are checked when they are replaced, at provision.
func (h *Handler) unmarshalStore(d *caddyfile.Dispenser) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	h.Store = &StoreConfig{Type: d.Val()}
	c := h.Store
	args := d.RemainingArgs()
	switch c.Type {
	case "caddy", "memory":
		if len(args) > 0 || d.NextBlock(d.Nesting()) {
			return d.Errf("store %s takes no options; url, pool_size and key_prefix are for the redis stores", c.Type)
		}
		return nil
	case "redis":
		if len(args) == 0 {
			return d.Errf("store redis needs a URL, e.g. redis://127.0.0.1:6379/0")
		}
		if len(args) > 1 {
			return d.Errf("store redis takes one URL; for several servers use redis-cluster or redis-sentinel")
		}
		c.URL = args[0]
	case "redis-cluster":
		if len(args) == 0 {
			return d.Errf("store redis-cluster needs node addresses (host:port ...) or a redis:// URL")
		}
		if len(args) == 1 && strings.Contains(args[0], "://") {
			c.URL = args[0]
		} else {
			c.Addrs = args
		}
	case "redis-sentinel":
		switch {
		case len(args) == 0:
			return d.Errf("store redis-sentinel needs the master's name and the sentinels (<master-name> <host:port>...) or a redis:// URL with ?master_name=")
		case strings.Contains(args[0], "://") || len(args) == 1 && hasPlaceholder(args[0]):
			if len(args) > 1 {
				return d.Errf("store redis-sentinel takes a URL alone; put more sentinels in it as &addr=host:port")
			}
			c.URL = args[0]
		case len(args) == 1:
			return d.Errf("store redis-sentinel needs the master's name and at least one sentinel: <master-name> <host:port>...")
		case strings.Contains(args[0], ":") && !hasPlaceholder(args[0]):
			return d.Errf("store redis-sentinel: the master's name comes first, not the address %q: <master-name> <host:port>...", args[0])
		default:
			c.MasterName, c.Addrs = args[0], args[1:]
		}
	default:
		return d.Errf("store must be caddy, memory, redis, redis-cluster or redis-sentinel, not %q", c.Type)
	}
	for _, a := range c.Addrs {
		if hasPlaceholder(a) {
			continue
		}
		if host, port, err := net.SplitHostPort(a); err != nil || host == "" || port == "" || strings.Contains(a, "://") {
			return d.Errf("store %s: %q is not a host:port address", c.Type, a)
		}
	}
	if c.URL != "" && !hasPlaceholder(c.URL) {
		rc, err := c.redisConfig()
		if err == nil {
			err = rc.Validate()
		}
		if err != nil {
			return d.Errf("store %s: %s", c.Type, strings.TrimPrefix(err.Error(), "session: "))
		}
	}

	given := once{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		if !slices.Contains(storeOptions[c.Type], opt) {
			return d.Errf("unrecognized store %s option %q; it takes %s", c.Type, opt, strings.Join(storeOptions[c.Type], ", "))
		}
		if err := given.check(d); err != nil {
			return err
		}
		var err error
		switch opt {
		case "username":
			err = arg(d, &c.Username)
		case "password":
			err = arg(d, &c.Password)
		case "sentinel_username":
			err = arg(d, &c.SentinelUsername)
		case "sentinel_password":
			err = arg(d, &c.SentinelPassword)
		case "tls":
			if d.NextArg() {
				return d.ArgErr()
			}
			c.TLS = true
		case "tls_ca":
			err = arg(d, &c.TLSCA)
		case "tls_server_name":
			err = arg(d, &c.TLSServerName)
		case "db":
			err = numberArg(d, &c.DB, 0)
		case "pool_size":
			err = numberArg(d, &c.PoolSize, 1)
		case "key_prefix":
			if err = arg(d, &c.KeyPrefix); err == nil && strings.ContainsAny(withoutPlaceholders(c.KeyPrefix), "{}") {
				return d.Errf("key_prefix %q may not contain '{' or '}' (Redis Cluster reads them as a hash tag), except in placeholders such as {env.NAME}", c.KeyPrefix)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// numberArg reads a whole number of at least minimum, or a placeholder.
func numberArg(d *caddyfile.Dispenser, dst *StoreNumber, minimum int) error {
	name := d.Val()
	var s string
	if err := arg(d, &s); err != nil {
		return err
	}
	if !hasPlaceholder(s) {
		if n, err := strconv.Atoi(s); err != nil || n < minimum {
			if minimum == 1 {
				return d.Errf("%s: %q is not a positive number", name, s)
			}
			return d.Errf("%s: %q is not a number from %d", name, s, minimum)
		}
	}
	*dst = StoreNumber(s)
	return nil
}

// hasPlaceholder reports whether s may hold a placeholder, replaced at
// provision.
func hasPlaceholder(s string) bool { return strings.Contains(s, "{") }

// globalPlaceholder matches the placeholders replaced at provision.
var globalPlaceholder = regexp.MustCompile(`\{(env|file|system)\.[^{}]+\}`)

// withoutPlaceholders removes s's {env.*}, {file.*} and {system.*} placeholders.
func withoutPlaceholders(s string) string { return globalPlaceholder.ReplaceAllString(s, "") }

// unmarshalPlatform reads a platform block; each platform is given once.
func (h *Handler) unmarshalPlatform(d *caddyfile.Dispenser) error {
	name, b, err := platforms.Parse(d)
	if err != nil {
		return err
	}
	if _, dup := h.Platforms[name]; dup {
		return d.Errf("platform %s is configured twice", name)
	}
	if h.Platforms == nil {
		h.Platforms = map[string]*platforms.Block{}
	}
	h.Platforms[name] = b
	return nil
}

// unmarshalWebLogin reads a web login block; each name is given once, each
// of its fields once:
//
//	web_login <name> {
//		app_id     <appid>
//		app_secret <secret>
//		mode       oa|qr
//		scope      snsapi_base|snsapi_userinfo
//		path       <prefix>
//		cookie     <name>
//		open_base  <url>
//		public_url <url>
//	}
func (h *Handler) unmarshalWebLogin(d *caddyfile.Dispenser) error {
	var name string
	if !d.Args(&name) || d.NextArg() {
		return d.Errf("web_login wants one name: web_login <name> { ... }")
	}
	if _, dup := h.WebLogins[name]; dup {
		return d.Errf("web_login %s is configured twice", name)
	}
	wl := new(WebLogin)
	fields := map[string]*string{
		"app_id": &wl.AppID, "app_secret": &wl.AppSecret, "mode": &wl.Mode, "scope": &wl.Scope,
		"path": &wl.Path, "cookie": &wl.Cookie, "open_base": &wl.OpenBase, "public_url": &wl.PublicURL,
	}
	given := once{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		dst, ok := fields[d.Val()]
		if !ok {
			return d.Errf("web_login %s: unrecognized subdirective %q", name, d.Val())
		}
		if err := given.check(d); err != nil {
			return err
		}
		var err error
		if d.Val() == "app_id" || d.Val() == "app_secret" {
			err = credentialArg(d, dst)
		} else {
			err = arg(d, dst)
		}
		if err != nil {
			return err
		}
	}
	if h.WebLogins == nil {
		h.WebLogins = map[string]*WebLogin{}
	}
	h.WebLogins[name] = wl
	return nil
}

func (h *Handler) unmarshalHook(d *caddyfile.Dispenser) error {
	h.AppHook = &AppHook{}
	if err := arg(d, &h.AppHook.URL); err != nil {
		return err
	}
	given := once{"claim_header": repeatable}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if err := given.check(d); err != nil {
			return err
		}
		var err error
		switch d.Val() {
		case "secret":
			err = arg(d, &h.AppHook.Secret)
		case "events":
			h.AppHook.Events = d.RemainingArgs()
			if len(h.AppHook.Events) == 0 {
				return d.ArgErr()
			}
		case "timeout":
			err = durationArg(d, &h.AppHook.Timeout)
		case "claim_header":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return d.ArgErr()
			}
			if h.AppHook.ClaimHeaders == nil {
				h.AppHook.ClaimHeaders = map[string]string{}
			}
			h.AppHook.ClaimHeaders[args[0]] = args[1]
		default:
			return d.Errf("unrecognized app_hook option %q", d.Val())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// once tracks the subdirectives of one block: each may be given once,
// unless marked repeatable, since a second line silently winning over the
// first hides a mistake.
type once map[string]int

// repeatable marks a subdirective of once that may be given many times.
const repeatable = -1

// check refuses the current subdirective when it was given before.
func (o once) check(d *caddyfile.Dispenser) error {
	name := d.Val()
	switch o[name] {
	case repeatable:
		return nil
	case 0:
		o[name] = 1
		return nil
	}
	return d.Errf("%s given twice", name)
}

// arg reads the one value of the current subdirective into dst.
func arg(d *caddyfile.Dispenser, dst *string) error {
	name := d.Val()
	if !d.AllArgs(dst) {
		return d.Errf("%s wants exactly one value", name)
	}
	return nil
}

// credentialArg reads the one value of app_id or app_secret. Without one,
// the likely cause is an unset {$NAME}, which the adapter replaces with
// nothing: the message says so.
func credentialArg(d *caddyfile.Dispenser, dst *string) error {
	name := d.Val()
	args := d.RemainingArgs()
	switch len(args) {
	case 0:
		return d.Errf("%s wants exactly one value and has none; if it is given as {$NAME}, that variable is probably unset "+
			"(the Caddyfile adapter replaces an unset variable with nothing): set it, or write {env.NAME}", name)
	case 1:
		*dst = args[0]
		return nil
	}
	return d.Errf("%s wants exactly one value", name)
}

// countPerWindow reads the "<n> <window>" of a limit subdirective; what
// names the counted things in messages, example is a whole valid line.
func countPerWindow(d *caddyfile.Dispenser, what, example string) (int, caddy.Duration, error) {
	name := d.Val()
	args := d.RemainingArgs()
	if len(args) != 2 {
		return 0, 0, d.Errf("%s wants: <%s> <window>, e.g. %s", name, what, example)
	}
	n, aerr := strconv.Atoi(args[0])
	win, derr := caddy.ParseDuration(args[1])
	if aerr != nil || derr != nil || n < 1 {
		return 0, 0, d.Errf("%s: %q %q is not <%s> <window>", name, args[0], args[1], what)
	}
	return n, caddy.Duration(win), nil
}

func durationArg(d *caddyfile.Dispenser, dst *caddy.Duration) error {
	name := d.Val()
	var s string
	if err := arg(d, &s); err != nil {
		return err
	}
	dur, err := caddy.ParseDuration(s)
	if err != nil {
		return d.Errf("%s: bad duration %q: %v", name, s, err)
	}
	*dst = caddy.Duration(dur)
	return nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Handler)(nil)
