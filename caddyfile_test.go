package wxauth

import (
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// TestCaddyfileGivenTwice parses wxauth blocks (no Caddy started): every
// single-value subdirective, nested ones included, is refused the second
// time; repeatable ones are not.
func TestCaddyfileGivenTwice(t *testing.T) {
	tests := []struct {
		name, body, err string // err "" = accepted
	}{
		{"app_id", "app_id wxa\napp_id wxb", "app_id given twice"},
		{"app_secret", "app_secret a\napp_secret b", "app_secret given twice"},
		{"api_base", "api_base http://a\napi_base http://b", "api_base given twice"},
		{"token_ttl", "token_ttl 1h\ntoken_ttl 2h", "token_ttl given twice"},
		{"wechat_timeout", "wechat_timeout 1s\nwechat_timeout 2s", "wechat_timeout given twice"},
		{"key_rotation", "key_rotation 24h\nkey_rotation 48h", "key_rotation given twice"},
		{"signing_alg", "signing_alg HS256\nsigning_alg EdDSA", "signing_alg given twice"},
		{"store", "store memory\nstore caddy", "store given twice"},
		{"optional", "optional\noptional", "optional given twice"},
		{"login_path", "login_path /a\nlogin_path /b", "login_path given twice"},
		{"refresh_path", "refresh_path /a\nrefresh_path /b", "refresh_path given twice"},
		{"logout_path", "logout_path /a\nlogout_path /b", "logout_path given twice"},
		{"decrypt_path", "decrypt_path /a\ndecrypt_path /b", "decrypt_path given twice"},
		{"phone_path", "phone_path /a\nphone_path /b", "phone_path given twice"},
		{"session_path", "session_path /a\nsession_path /b", "session_path given twice"},
		{"jwks_path", "jwks_path /a\njwks_path /b", "jwks_path given twice"},
		{"login_limit", "login_limit 5 1m\nlogin_limit 6 1m", "login_limit given twice"},
		{"app_hook", "app_hook http://a\napp_hook http://b", "app_hook given twice"},
		{"app_api", "app_api /a\napp_api /b", "app_api given twice"},
		{"cache_size", "cache_size 10\ncache_size 20", "cache_size given twice"},
		{"cache_size not a number", "cache_size many", "not a positive number"},
		{"cache_size zero", "cache_size 0", "not a positive number"},
		{"max_body", "max_body 1KiB\nmax_body 2KiB", "max_body given twice"},
		{"session_max_age", "session_max_age 1d\nsession_max_age 2d", "session_max_age given twice"},
		{"phone_limit", "phone_limit 5 10m\nphone_limit 6 10m", "phone_limit given twice"},
		{"forward_token", "forward_token\nforward_token", "forward_token given twice"},
		{"forward_token with a value", "forward_token yes", "wrong argument count"},
		{"store redis pool_size", "store redis redis://127.0.0.1:1/0 {\npool_size 1\npool_size 2\n}", "pool_size given twice"},
		{"store redis key_prefix", "store redis redis://127.0.0.1:1/0 {\nkey_prefix a\nkey_prefix b\n}", "key_prefix given twice"},
		{"app_hook timeout", "app_hook http://a {\ntimeout 1s\ntimeout 2s\n}", "timeout given twice"},
		{"app_hook secret", "app_hook http://a {\nsecret a\nsecret b\n}", "secret given twice"},
		{"app_hook events", "app_hook http://a {\nevents login\nevents phone\n}", "events given twice"},
		{"app_hook events without value", "app_hook http://a {\nevents\n}", "wrong argument count"},
		{"app_hook unknown option", "app_hook http://a {\nretries 3\n}", `unrecognized app_hook option "retries"`},

		{"signing_key repeats", "signing_key a k1\nsigning_key b k2", ""},
		{"token_from repeats", "token_from header X-Token\ntoken_from cookie wxt", ""},
		{"claim_header repeats", "app_hook http://a {\nclaim_header uid X-Uid\nclaim_header role X-Role\n}", ""},
		{"same name in two blocks", "store redis redis://127.0.0.1:1/0 {\nkey_prefix a\n}\napp_hook http://a {\ntimeout 1s\n}", ""},

		{"no value", "app_id", "app_id wants exactly one value"},
		{"no secret, maybe an unset {$NAME}", "app_secret", "app_secret wants exactly one value and has none; if it is given as {$NAME}, that variable is probably unset"},
		{"two values", "app_id wxa wxb", "app_id wants exactly one value"},
		{"duration without value", "token_ttl", "token_ttl wants exactly one value"},
		{"nested without value", "store redis redis://127.0.0.1:1/0 {\nkey_prefix\n}", "key_prefix wants exactly one value"},
		{"hook url with two values", "app_hook http://a http://b", "app_hook wants exactly one value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := caddyfile.NewTestDispenser("wxauth {\n" + tt.body + "\n}")
			var h Handler
			err := h.UnmarshalCaddyfile(d)
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.err != "" && err == nil:
				t.Fatalf("accepted; want %q", tt.err)
			case tt.err != "" && !strings.Contains(err.Error(), tt.err):
				t.Fatalf("error %q does not say %q", err, tt.err)
			}
		})
	}
}

// TestCaddyfilePlatforms parses and checks platform blocks and link_by, as
// caddy validate does: each platform once, its fields once, the right
// credentials for each, and a handler of other platforms only.
func TestCaddyfilePlatforms(t *testing.T) {
	const dy = "platform douyin {\napp_id tt1\napp_secret s\napi_base http://127.0.0.1:1/douyin\n}"
	tests := []struct {
		name, body, err string // err "" = valid
	}{
		{"only other platforms", dy, ""},
		{"with WeChat", "app_id wxa\napp_secret s\napi_base http://127.0.0.1:1\n" + dy + "\nlink_by unionid", ""},
		{"twice", dy + "\n" + dy, "platform douyin is configured twice"},
		{"unknown", "platform myspace {\napp_id a\n}", `platform "myspace": one of qq, douyin, alipay, baidu, kuaishou`},
		{"wechat is at the top", "platform wechat {\napp_id a\n}", "WeChat is configured by app_id"},
		{"field twice", "platform qq {\napp_id a\napp_id b\n}", "platform qq: app_id given twice"},
		{"unknown field", "platform qq {\nsecret a\n}", `platform qq: unrecognized subdirective "secret"`},
		{"no secret", "platform kuaishou {\napp_id a\n}", "platform kuaishou: app_secret is required"},
		{"no app id", "platform baidu {\napp_secret s\n}", "platform baidu: app_id is required"},
		{"alipay with a secret", "platform alipay {\napp_id 2021\napp_secret s\n}", "platform alipay signs with keys"},
		{"alipay without keys", "platform alipay {\napp_id 2021\n}", "private_key (the app's RSA2 private key) and alipay_public_key are required"},
		{"alipay key elsewhere", "platform qq {\napp_id a\napp_secret s\naes_key x\n}", "are for alipay only"},
		{"bad api_base", "platform qq {\napp_id a\napp_secret s\napi_base ftp://x\n}", "is not an http(s) URL"},
		{"secret without app_id", "app_secret s\n" + dy, "app_secret is set but app_id is not"},
		{"nothing", "", "app_id is required"},
		{"link_by what", dy + "\nlink_by phone", `link_by "phone": the one way to link is unionid`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Handler
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("wxauth {\n" + tt.body + "\n}"))
			if err == nil {
				err = h.Config.prepare()
			}
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("got %v, want an error saying %q", err, tt.err)
			}
		})
	}
}
