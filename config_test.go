package wxauth

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// checkConfig runs what Provision runs before it opens anything.
func checkConfig(h *Handler) error {
	h.setDefaults()
	if err := h.replacePlaceholders(caddy.NewReplacer()); err != nil {
		return err
	}
	return h.validate()
}

// TestConfigErrors: a config that cannot work fails at load, saying what
// is wrong, instead of loading and failing every request.
func TestConfigErrors(t *testing.T) {
	const unset = "WXAUTH_TEST_NEVER_SET"
	if _, ok := os.LookupEnv(unset); ok {
		t.Fatalf("%s is set", unset)
	}
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "no-such-file")
	base := func(mod func(h *Handler)) *Handler {
		h := &Handler{Config: Config{AppID: "wx0123456789abcdef", AppSecret: "0123456789abcdef0123456789abcdef"}}
		mod(h)
		return h
	}
	key := "dGVzdC1zaWduaW5nLWtleS0wMTIzNDU2Nzg5YWJjZGVm"
	for _, tc := range []struct {
		name string
		mod  func(h *Handler)
		want string // "" = valid
	}{
		{"valid", func(h *Handler) {}, ""},
		{"app_id from an unset variable", func(h *Handler) { h.AppID = "{env." + unset + "}" },
			`app_id is empty after replacing placeholders in "{env.` + unset + `}"`},
		{"app_id from an unset variable says so", func(h *Handler) { h.AppID = "{env." + unset + "}" },
			"the environment variable " + unset + " is not set"},
		{"app_id from an empty file", func(h *Handler) { h.AppID = "{file." + empty + "}" },
			`app_id is empty after replacing placeholders in "{file.` + empty + `}": the file "` + empty + `" is empty`},
		{"app_id from a missing file", func(h *Handler) { h.AppID = "{file." + missing + "}" },
			`app_id: the file "` + missing + `" named by "{file.` + missing + `}" does not exist`},
		{"app_id absent", func(h *Handler) { h.AppID = "" }, "app_id is required; if the config sets it with {$NAME}, that variable is probably unset"},
		{"app_secret absent", func(h *Handler) { h.AppSecret = "" }, "app_secret is required; if the config sets it with {$NAME}, that variable is probably unset"},
		{"app_secret from an unset variable", func(h *Handler) { h.AppSecret = "{env." + unset + "}" }, "app_secret is empty after replacing placeholders"},
		{"signing_key from an unset variable", func(h *Handler) {
			h.SigningKeys = []SigningKey{{Key: key}, {Key: "{env." + unset + "}"}}
		}, "signing_key 2 is empty after replacing placeholders"},

		{"key_rotation too short for the default token_ttl", func(h *Handler) { h.KeyRotation = caddy.Duration(time.Minute) },
			"key_rotation 1m0s is too short for token_ttl 2h0m0s"},
		{"key_rotation says the shortest", func(h *Handler) { h.KeyRotation = caddy.Duration(time.Minute) }, "at least 4m10s"},
		{"key_rotation at the shortest", func(h *Handler) { h.KeyRotation = caddy.Duration(250 * time.Second) }, ""},
		{"key_rotation for a short token_ttl", func(h *Handler) {
			h.KeyRotation, h.TokenTTL = caddy.Duration(time.Minute), caddy.Duration(10*time.Minute)
		}, ""},
		{"key_rotation 24h", func(h *Handler) { h.KeyRotation = caddy.Duration(24 * time.Hour) }, ""},

		{"jwks_path with generated HS256 keys", func(h *Handler) { h.JWKSPath = "/jwks" }, "jwks_path publishes EdDSA public keys"},
		{"jwks_path with fixed keys", func(h *Handler) {
			h.JWKSPath, h.SigningAlg, h.SigningKeys = "/jwks", "EdDSA", []SigningKey{{Key: key}}
		}, "jwks_path publishes EdDSA public keys"},
		{"jwks_path with EdDSA", func(h *Handler) { h.JWKSPath, h.SigningAlg = "/jwks", "EdDSA" }, ""},

		{"session_max_age below token_ttl", func(h *Handler) { h.SessionMaxAge = caddy.Duration(time.Hour) },
			"session_max_age 1h0m0s is shorter than token_ttl 2h0m0s"},
		{"session_max_age equal to token_ttl", func(h *Handler) { h.SessionMaxAge = caddy.Duration(2 * time.Hour) }, ""},
		{"phone_limit of no calls", func(h *Handler) { h.PhoneLimit = &PhoneLimit{Calls: 0, Window: caddy.Duration(time.Minute)} }, "phone_limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkConfig(base(tc.mod))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("accepted; want %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %q does not say %q", err, tc.want)
			}
		})
	}
}

// TestCredentialShapes: against WeChat's API (the default api_base), an
// app_id or app_secret WeChat would refuse fails at load, saying what is
// wrong and never quoting the secret; a wxmock api_base takes any.
func TestCredentialShapes(t *testing.T) {
	const (
		appID  = "wx0123456789abcdef"
		secret = "0123456789abcdef0123456789abcdef"
	)
	t.Setenv("WXAUTH_TEST_SECRET", secret)
	for _, tc := range []struct {
		name, appID, secret, apiBase string
		want                         string // "" = valid
	}{
		{"real shapes", appID, secret, "", ""},
		{"upper case hex", "wx0123456789ABCDEF", "0123456789ABCDEF0123456789abcdef", "", ""},
		{"secret from a variable", appID, "{env.WXAUTH_TEST_SECRET}", "", ""},
		{"WeChat's API named", appID, secret, "https://api.weixin.qq.com", ""},
		{"original id", "gh_0123456789ab", secret, "", `app_id "gh_0123456789ab": that is the official account's original id, use the mini-program's AppID`},
		{"not an AppID", "wxdemo0123456789", secret, "", `app_id "wxdemo0123456789" is not a mini-program's AppID, which is wx and 16 hex characters`},
		{"AppID too short", "wx0123456789abcde", secret, "", "is not a mini-program's AppID"},
		{"AppID without wx", "0123456789abcdef", secret, "", "is not a mini-program's AppID"},
		{"says why it is checked", "wxkeys", secret, "", "checked because api_base is WeChat's API, the default"},
		{"secret not hex", appID, "demo-secret", "", "app_secret is not 32 hex characters"},
		{"secret with a newline", appID, secret + "\n", "", "app_secret is not 32 hex characters, as a mini-program's AppSecret is: look for a stray space, newline or quote"},
		{"secret too short", appID, secret[:31], "", "app_secret is not 32 hex characters"},
		{"secret says why it is checked", appID, "test-secret", "https://api.weixin.qq.com/", "checked because api_base is WeChat's API"},
		{"swapped", secret, appID, "", "app_id looks like an AppSecret"},
		{"secret is an AppID", "wxdemo", appID, "", "app_id and app_secret are probably swapped"},
		{"secret is the AppID", appID, appID, "", "app_secret is not 32 hex characters"},
		{"wxmock takes any", "wxdemo0123456789", "demo-secret", "http://127.0.0.1:9000", ""},
		{"wxmock takes an original id", "gh_0123456789ab", "test-secret", "http://localhost:9000", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &Handler{Config: Config{AppID: tc.appID, AppSecret: tc.secret, APIBase: tc.apiBase}}
			err := checkConfig(h)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("accepted; want %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %q does not say %q", err, tc.want)
			case err != nil && (strings.Contains(err.Error(), secret) || (len(h.secret) > 8 && strings.Contains(err.Error(), h.secret))):
				t.Fatalf("error %q quotes the secret", err)
			}
		})
	}
}

// Defaults of the second round's options.
func TestLimitDefaults(t *testing.T) {
	h := &Handler{}
	h.setDefaults()
	if time.Duration(h.SessionMaxAge) != 30*24*time.Hour || h.PhoneLimit == nil ||
		h.PhoneLimit.Calls != 5 || time.Duration(h.PhoneLimit.Window) != 10*time.Minute || h.ForwardToken {
		t.Fatalf("defaults: session_max_age %v, phone_limit %+v, forward_token %v", time.Duration(h.SessionMaxAge), h.PhoneLimit, h.ForwardToken)
	}
}

// A handler of other platforms only seals its store with their secrets:
// never with an empty key, and another secret is another seal.
func TestSealSecretOfPlatformsOnly(t *testing.T) {
	seal := func(secret string, more ...string) string {
		var h Handler
		body := "wxauth {\nplatform kuaishou {\napp_id ks1\napp_secret " + secret + "\napi_base http://127.0.0.1:1/kuaishou\n}\n" + strings.Join(more, "") + "}"
		if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(body)); err != nil {
			t.Fatal(err)
		}
		if err := h.Config.prepare(); err != nil {
			t.Fatal(err)
		}
		return h.sealSecret()
	}
	a, b := seal("secret-a"), seal("secret-b")
	if a == "" || a == b || !strings.Contains(a, "secret-a") {
		t.Fatalf("seal secrets %q and %q", a, b)
	}
	// Another platform (after the anchor by name) keeps the store's seal.
	if c := seal("secret-a", "platform qq {\napp_id q1\napp_secret q-secret\napi_base http://127.0.0.1:1/qq\n}\n"); c != a {
		t.Fatalf("adding a platform changed the seal: %q, was %q", c, a)
	}
}

// A handler of web logins only is valid, keyed and sealed by its web apps.
func TestWebLoginOnlyHandler(t *testing.T) {
	var h Handler
	body := "wxauth {\napi_base http://127.0.0.1:1\nweb_login site {\napp_id wxweb\napp_secret web-secret\nmode qr\n}\n}"
	if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(body)); err != nil {
		t.Fatal(err)
	}
	if err := h.Config.prepare(); err != nil {
		t.Fatalf("a web-only handler refused: %v", err)
	}
	if !strings.Contains(h.sealSecret(), "web-secret") || !strings.HasPrefix(h.storeName(), "web-") {
		t.Fatalf("seal %q, store name %q", h.sealSecret(), h.storeName())
	}
}

// wxauth's identity headers cannot carry a claim: a claim_header onto one
// is refused.
func TestClaimHeaderOntoIdentityHeader(t *testing.T) {
	for _, name := range []string{"X-Wx-Openid", "X-Wx-Surface", "x-wx-appid", "X-Wx-Platform", "X-Wx-Anonymous"} {
		var h Handler
		body := "wxauth {\napp_id wxa\napp_secret s\napi_base http://127.0.0.1:1\napp_hook http://127.0.0.1:1 {\nsecret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\nclaim_header tier " + name + "\n}\n}"
		if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(body)); err != nil {
			t.Fatal(err)
		}
		if err := h.Config.prepare(); err == nil || !strings.Contains(err.Error(), "cannot carry a claim") {
			t.Errorf("%s: %v", name, err)
		}
	}
}
