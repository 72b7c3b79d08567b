// Package platforms is the configuration of the mini-program platforms a
// handler serves besides WeChat (the platform blocks of the wxauth
// directive): parsing, placeholders, checks, and building each block's
// login provider. The providers themselves are plain Go packages under
// internal/provider.
package platforms

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/wxauth/caddy-wxauth/internal/login"
)

// WeChat is the platform of the handler's top-level app_id and of web
// logins; it has no platform block.
const WeChat = "wechat"

// Names are the platforms a platform block may name.
var Names = []string{"qq", "douyin", "alipay", "baidu", "kuaishou"}

// Block is one platform block: the app a handler serves on that platform.
type Block struct {
	// AppID is the app's id on the platform (Baidu: the AppKey). Required.
	AppID string `json:"app_id,omitempty"`
	// AppSecret is the app's secret (Baidu: the App Secret, sk). Required
	// on every platform but Alipay, which signs with keys instead.
	// {env.*} and {file.*} placeholders are replaced at provision time.
	AppSecret string `json:"app_secret,omitempty"`
	// PrivateKey is Alipay's app private key (RSA2: PEM PKCS#1 or PKCS#8,
	// or bare base64), which signs the gateway calls. Alipay only;
	// required there. Placeholders work ({file.*} for a PEM file).
	PrivateKey string `json:"private_key,omitempty"`
	// AlipayPublicKey is Alipay's public key (PEM or bare base64), which
	// verifies Alipay's answers and sealed phone numbers. Alipay only;
	// required there. Certificate mode (app_cert_sn) is not supported.
	AlipayPublicKey string `json:"alipay_public_key,omitempty"`
	// AESKey is Alipay's content encryption key (base64 of 16 bytes),
	// which opens the phone numbers my.getPhoneNumber gives. Alipay only;
	// without it the phone endpoint answers platform_config.
	AESKey string `json:"aes_key,omitempty"`
	// APIBase is the platform's API origin (Alipay: the gateway URL);
	// default the platform's own. Point it at a wxmock site
	// (http://host/<platform>) for development and tests.
	APIBase string `json:"api_base,omitempty"`

	secret, privateKey, publicKey, aesKey string // placeholders replaced
}

// Known reports whether name is a platform a block may name.
func Known(name string) bool { return slices.Contains(Names, name) }

// Parse reads a platform block after the platform subdirective:
//
//	platform <name> {
//		app_id            <id>
//		app_secret        <secret>
//		private_key       <pem>
//		alipay_public_key <pem>
//		aes_key           <base64>
//		api_base          <url>
//	}
func Parse(d *caddyfile.Dispenser) (string, *Block, error) {
	var name string
	if !d.Args(&name) {
		return "", nil, d.ArgErr()
	}
	if !Known(name) {
		return "", nil, d.Errf("platform %q: one of %s (WeChat is configured by app_id and app_secret at the top)", name, strings.Join(Names, ", "))
	}
	if d.NextArg() {
		return "", nil, d.ArgErr()
	}
	b := new(Block)
	fields := map[string]*string{
		"app_id": &b.AppID, "app_secret": &b.AppSecret, "private_key": &b.PrivateKey,
		"alipay_public_key": &b.AlipayPublicKey, "aes_key": &b.AESKey, "api_base": &b.APIBase,
	}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		field := d.Val()
		dst, ok := fields[field]
		if !ok {
			return "", nil, d.Errf("platform %s: unrecognized subdirective %q", name, field)
		}
		if seen[field] {
			return "", nil, d.Errf("platform %s: %s given twice", name, field)
		}
		seen[field] = true
		if !d.AllArgs(dst) {
			return "", nil, d.Errf("platform %s: %s wants one value (quote a PEM, or use {file.<path>})", name, field)
		}
	}
	return name, b, nil
}

// Expand replaces the {env.*} and {file.*} placeholders of every field;
// expand is the handler's, which names a field that comes out empty.
func (b *Block) Expand(name string, expand func(field, v string) (string, error)) error {
	var err error
	for _, f := range []struct {
		field string
		in    *string
		out   *string
	}{
		{"app_id", &b.AppID, &b.AppID},
		{"api_base", &b.APIBase, &b.APIBase},
		{"app_secret", &b.AppSecret, &b.secret},
		{"private_key", &b.PrivateKey, &b.privateKey},
		{"alipay_public_key", &b.AlipayPublicKey, &b.publicKey},
		{"aes_key", &b.AESKey, &b.aesKey},
	} {
		if *f.out, err = expand("platform "+name+" "+f.field, *f.in); err != nil {
			return err
		}
	}
	return nil
}

// Validate checks a block after its placeholders are replaced. App id
// shapes differ per platform and are not checked.
func (b *Block) Validate(name string) error {
	if !Known(name) {
		return fmt.Errorf("wxauth: platform %q: one of %s", name, strings.Join(Names, ", "))
	}
	if b.AppID == "" {
		return fmt.Errorf("wxauth: platform %s: app_id is required", name)
	}
	if strings.ContainsAny(b.AppID, "/+ \t\r\n{}") {
		return fmt.Errorf("wxauth: platform %s: app_id %q has a character an app id does not", name, b.AppID)
	}
	if name == "alipay" {
		if b.secret != "" {
			return fmt.Errorf("wxauth: platform alipay signs with keys, not a secret: remove app_secret, set private_key and alipay_public_key")
		}
		if b.privateKey == "" || b.publicKey == "" {
			return fmt.Errorf("wxauth: platform alipay: private_key (the app's RSA2 private key) and alipay_public_key are required; certificate mode is not supported")
		}
	} else {
		if b.secret == "" {
			return fmt.Errorf("wxauth: platform %s: app_secret is required", name)
		}
		if b.PrivateKey != "" || b.AlipayPublicKey != "" || b.AESKey != "" {
			return fmt.Errorf("wxauth: platform %s: private_key, alipay_public_key and aes_key are for alipay only", name)
		}
	}
	if b.APIBase != "" {
		u, err := url.Parse(b.APIBase)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("wxauth: platform %s: api_base %q is not an http(s) URL", name, b.APIBase)
		}
	}
	_, err := b.provider(name, 0, nil, nil)
	return err
}

// Anchor is the block that names and seals the store of a handler that
// serves no WeChat mini-program: the first platform by name. Only its app
// id and its secret (Alipay: its private key) are used, so that adding or
// changing another block leaves the store as it was.
func Anchor(blocks map[string]*Block) (name string, appID, secret string) {
	names := SortedNames(blocks)
	if len(names) == 0 {
		return "", "", ""
	}
	b := blocks[names[0]]
	return names[0], b.AppID, b.secret + b.privateKey
}

// Settings are what every platform's provider shares with the handler.
type Settings struct {
	// Timeout bounds each call to a platform.
	Timeout time.Duration
	// ConfigError counts an answer saying the app is misconfigured.
	ConfigError func(platform, errcode string)
	// Observe measures each call to a platform: how long until its answer
	// began, and whether it answered (an HTTP status below 500).
	Observe func(platform string, d time.Duration, ok bool)
}

// Providers builds the provider of each block, by platform name.
func Providers(blocks map[string]*Block, s Settings) (map[string]login.Provider, error) {
	out := make(map[string]login.Provider, len(blocks))
	for _, name := range SortedNames(blocks) {
		var count func(string)
		if s.ConfigError != nil {
			count = func(code string) { s.ConfigError(name, code) }
		}
		var client *http.Client
		if s.Observe != nil {
			// Over the process's shared transport: a reload makes no new
			// connection pools to leave idle.
			client = &http.Client{Timeout: s.Timeout, Transport: observed{platform: name, observe: s.Observe, next: http.DefaultTransport}}
		}
		p, err := blocks[name].provider(name, s.Timeout, count, client)
		if err != nil {
			return nil, err
		}
		out[name] = p
	}
	return out, nil
}

// SortedNames lists the blocks' platforms in a stable order.
func SortedNames(blocks map[string]*Block) []string {
	names := make([]string, 0, len(blocks))
	for n := range blocks {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// provider builds the block's provider; its error names the field at fault.
func (b *Block) provider(name string, timeout time.Duration, configError func(string), client *http.Client) (login.Provider, error) {
	build, ok := builders[name]
	if !ok {
		return nil, fmt.Errorf("wxauth: platform %s is not built into this binary", name)
	}
	p, err := build(login.PlatformConfig{
		AppID: b.AppID, AppSecret: b.secret, PrivateKey: b.privateKey, PlatformPublicKey: b.publicKey,
		AESKey: b.aesKey, APIBase: b.APIBase, Timeout: timeout, ConfigError: configError, Client: client,
	})
	if err != nil {
		return nil, fmt.Errorf("wxauth: platform %s: %w", name, err)
	}
	return p, nil
}
