package wxmock

import (
	"fmt"
	"net/http"
	"strings"

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

// platformRoute returns the stand-in that answers path, or nil. Each
// platform's API is served under /<platform>/, plus WeChat's web login
// (open.weixin.qq.com's pages and the sns/oauth2 API) at WeChat's paths.
func (h *Handler) platformRoute(path string) http.HandlerFunc {
	if strings.HasPrefix(path, "/alipay/") {
		return h.alipayRoute(path)
	}
	return nil
}
