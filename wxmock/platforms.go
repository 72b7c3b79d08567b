package wxmock

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// Platform configures wxmock's stand-in for another mini-program platform's
// API (QQ, Douyin, Alipay, Baidu, Kuaishou). Its API is served under
// /<platform>/ on wxmock's site, so wxauth's platform block points its
// api_base there.
type Platform struct {
	// AppID, when set, is the only app id the stand-in accepts; others
	// get the platform's own "wrong app" error. Placeholders work.
	AppID string `json:"app_id,omitempty"`
	// AppSecret, when set, is the only secret the stand-in accepts; others
	// get the platform's own "wrong secret" error. Placeholders work.
	AppSecret string `json:"app_secret,omitempty"`
	// AppPublicKey (Alipay) verifies the RSA2 signature of the app's
	// gateway requests: the public half of wxauth's private_key. PEM or
	// bare base64; placeholders work.
	AppPublicKey string `json:"app_public_key,omitempty"`
	// PlatformPrivateKey (Alipay) signs the stand-in's answers, standing in
	// for Alipay's own key: wxauth's alipay_public_key is its public half.
	// PEM or bare base64; placeholders work.
	PlatformPrivateKey string `json:"platform_private_key,omitempty"`
	// AESKey (Alipay) seals the phone numbers the stand-in hands out, as
	// Alipay does with the app's content key (wxauth's aes_key). Base64 of
	// 16 bytes; placeholders work.
	AESKey string `json:"aes_key,omitempty"`
}

// platformNames are the platforms wxmock stands in for besides WeChat.
var platformNames = []string{"qq", "douyin", "alipay", "baidu", "kuaishou"}

// unmarshalPlatform parses a platform block:
//
//	platform <name> {
//	    app_id               <id>
//	    app_secret           <secret>
//	    app_public_key       <pem>
//	    platform_private_key <pem>
//	    aes_key              <base64>
//	}
func (h *Handler) unmarshalPlatform(d *caddyfile.Dispenser) error {
	var name string
	if !d.Args(&name) {
		return d.ArgErr()
	}
	if !knownPlatform(name) {
		return d.Errf("unknown platform %q: one of %s", name, strings.Join(platformNames, ", "))
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	if h.Platforms == nil {
		h.Platforms = map[string]*Platform{}
	}
	if _, dup := h.Platforms[name]; dup {
		return d.Errf("platform %q configured twice", name)
	}
	p := new(Platform)
	h.Platforms[name] = p
	fields := map[string]*string{
		"app_id": &p.AppID, "app_secret": &p.AppSecret, "app_public_key": &p.AppPublicKey,
		"platform_private_key": &p.PlatformPrivateKey, "aes_key": &p.AESKey,
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		f, ok := fields[d.Val()]
		if !ok {
			return d.Errf("unrecognized platform subdirective %q", d.Val())
		}
		if !d.AllArgs(f) {
			return d.ArgErr()
		}
	}
	return nil
}

func knownPlatform(name string) bool {
	for _, n := range platformNames {
		if n == name {
			return true
		}
	}
	return false
}

// validatePlatforms checks the platform blocks.
func (h *Handler) validatePlatforms() error {
	for name := range h.Platforms {
		if !knownPlatform(name) {
			return fmt.Errorf("unknown platform %q", name)
		}
	}
	_, err := h.alipayConfig()
	return err
}

// standIns are the platforms' stand-ins written so far, by name.
var standIns = map[string]standIn{
	"qq":       qqAPI{},
	"douyin":   douyinAPI{},
	"baidu":    baiduAPI{},
	"kuaishou": kuaishouAPI{},
}

// site is one platform's stand-in as a handler serves it: its block,
// placeholders resolved, and the state of its app, which every handler of
// the same platform and app id shares, across config reloads too, as
// WeChat's does.
type site struct {
	name string
	// api answers the platform's API; nil for a platform whose stand-in
	// lives elsewhere (Alipay's).
	api standIn
	// cfg is the platform block, placeholders resolved; empty fields
	// accept anything.
	cfg Platform
	// state holds the login codes and users of the app.
	state *state
	// anon holds Douyin's anonymous codes and devices, apart from its
	// login codes; nil on the other platforms.
	anon *state
	// keys are the entries of states the site holds.
	keys []string
}

// provisionPlatforms resolves every platform block's placeholders and
// attaches each platform's shared state, configured or not: a platform
// without a block is served too, accepting any app id and secret.
func (h *Handler) provisionPlatforms(repl *caddy.Replacer) error {
	h.sites = make(map[string]*site, len(platformNames))
	for _, name := range platformNames {
		s := &site{name: name, api: standIns[name]}
		if p := h.Platforms[name]; p != nil {
			s.cfg = *p
		}
		for _, f := range []*string{&s.cfg.AppID, &s.cfg.AppSecret, &s.cfg.AppPublicKey, &s.cfg.PlatformPrivateKey, &s.cfg.AESKey} {
			*f = repl.ReplaceKnown(*f, "")
		}
		h.sites[name] = s
		var err error
		if s.state, err = s.load(""); err != nil {
			return err
		}
		if name == "douyin" {
			if s.anon, err = s.load("anonymous"); err != nil {
				return err
			}
		}
	}
	return nil
}

// load attaches the state of kind (one app may have several) of the site's
// app.
func (s *site) load(kind string) (*state, error) {
	key := "platform/" + s.name + "/" + kind + "/" + s.cfg.AppID
	st, _, err := states.LoadOrNew(key, func() (caddy.Destructor, error) {
		st := newState()
		if s.api != nil {
			st.keySize = s.api.traits().keySize
		}
		return st, nil
	})
	if err != nil {
		return nil, err
	}
	s.keys = append(s.keys, key)
	return st.(*state), nil
}

// cleanupPlatforms releases the platforms' states; the last handler of an
// app drops them.
func (h *Handler) cleanupPlatforms() error {
	var errs []error
	for _, s := range h.sites {
		for _, key := range s.keys {
			_, err := states.Delete(key)
			errs = append(errs, err)
		}
	}
	h.sites = nil
	return errors.Join(errs...)
}

// platformRoute returns the stand-in that answers path, or nil. Each
// platform's API is served under /<platform>/ (wxauth's api_base for it is
// http://host:port/<platform>), its developer endpoints under
// /<platform>/wxmock/.
func (h *Handler) platformRoute(path string) http.HandlerFunc {
	// WeChat's web login (the authorize and qrconnect pages, sns/oauth2/*
	// and sns/userinfo) is served at WeChat's own paths: its routes go
	// here, before the platforms' prefixes.
	if f := h.webRoute(path); f != nil {
		return f
	}
	name, rest, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	switch name {
	case "qq", "douyin", "baidu", "kuaishou":
		if s := h.sites[name]; s != nil {
			return h.siteRoute(s, "/"+rest)
		}
	case "alipay":
		return h.alipayRoute(path)
	}
	return nil
}

// siteRoute returns what answers path (the part after /<platform>) on s,
// or nil.
func (h *Handler) siteRoute(s *site, path string) http.HandlerFunc {
	switch path {
	case s.api.traits().loginPath:
		return func(w http.ResponseWriter, r *http.Request) { h.serveLogin(w, r, s) }
	case "/wxmock/login":
		return func(w http.ResponseWriter, r *http.Request) { h.devPlatformLogin(w, r, s) }
	case "/wxmock/userinfo":
		return func(w http.ResponseWriter, r *http.Request) { h.devPlatformSealed(w, r, s, false) }
	case "/wxmock/phone":
		return func(w http.ResponseWriter, r *http.Request) { h.devPlatformSealed(w, r, s, true) }
	}
	return nil
}
