package wechat

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	wx "github.com/wxauth/caddy-wxauth/wechat"
)

func TestWeChatErrorMapping(t *testing.T) {
	cases := []struct {
		err     error
		status  int
		code    string
		errcode int // 0: none
	}{
		{&wx.Error{API: "jscode2session", Code: 40029}, 401, "invalid_code", 40029},
		{&wx.Error{API: "jscode2session", Code: 40163}, 401, "invalid_code", 40163},
		{&wx.Error{API: "getuserphonenumber", Code: 40029}, 401, "invalid_code", 40029},
		{&wx.Error{API: "jscode2session", Code: 40226}, 403, "risky_user", 40226},
		{&wx.Error{API: "jscode2session", Code: 45011}, 429, "rate_limited", 45011},
		{&wx.Error{API: "jscode2session", Code: -1}, 502, "upstream_error", -1},
		{&wx.Error{API: "jscode2session", Code: 40125}, 502, "wechat_config", 40125},
		{fmt.Errorf("wrapped: %w", &wx.Error{API: "stable_token", Code: 40013}), 502, "wechat_config", 40013},
		{&wx.Error{API: "jscode2session", Code: 41002}, 502, "wechat_config", 41002},
		{&wx.Error{API: "jscode2session", Code: 41004}, 502, "wechat_config", 41004},
		{&wx.Error{API: "getuserphonenumber", Code: 48001}, 502, "wechat_config", 48001},
		{&wx.Error{API: "stable_token", Code: 89501}, 502, "wechat_config", 89501},
		{&wx.Error{API: "stable_token", Code: 89503}, 502, "wechat_config", 89503},
		{&wx.Error{API: "stable_token", Code: 89506}, 502, "wechat_config", 89506},
		{&wx.Error{API: "stable_token", Code: 89507}, 502, "wechat_config", 89507},
		{&wx.Error{API: "stable_token", Code: 40243}, 502, "upstream_error", 40243},
		{&wx.Error{API: "jscode2session", Code: 40014}, 502, "upstream_error", 40014},
		{&wx.UpstreamError{API: "jscode2session", Timeout: true}, 502, "upstream_error", 0},
		{&wx.UpstreamError{API: "jscode2session", Err: errors.New("reset")}, 502, "upstream_error", 0},
		{fmt.Errorf("waiting for the lock: %w", context.DeadlineExceeded), 502, "upstream_error", 0},
		{&wx.Error{API: "jscode2session", Code: 40164, Msg: "invalid ip 203.0.113.9, not in whitelist"}, 502, "wechat_config", 40164},
		{errors.New("anything else"), 502, "upstream_error", 0},
	}
	for _, c := range cases {
		e := mapError(c.err)
		got := 0
		if c, ok := e.ErrCode.(int); ok {
			got = c
		}
		if e.Status != c.status || e.Code != c.code || got != c.errcode || e.Message == "" {
			t.Errorf("%v: got %d %s errcode %d, want %d %s %d", c.err, e.Status, e.Code, got, c.status, c.code, c.errcode)
		}
		if we, ok := c.err.(*wx.Error); ok && we.Msg != "" && strings.Contains(e.Message, we.Msg) {
			t.Errorf("%v: WeChat's errmsg reached the client", c.err)
		}
		if name, _ := e.Header(); c.status == 429 && name != "Retry-After" {
			t.Errorf("%v: no Retry-After", c.err)
		}
	}
}

// Each config errcode has its own message saying what to fix, naming the
// errcode and the config field or the platform's page to change.
func TestConfigFixes(t *testing.T) {
	want := map[int]string{
		40013: "set app_id", 40125: "set app_secret", 40164: "IP whitelist", 41002: "set app_id", 41004: "set app_secret",
		48001: "permission", 89501: "administrator", 89503: "administrator", 89506: "24 hours", 89507: "1 hour",
	}
	if len(configFixes) != len(want) {
		t.Fatalf("%d config errcodes, want %d", len(configFixes), len(want))
	}
	seen := map[string]bool{}
	for code, says := range want {
		e := mapError(&wx.Error{API: "jscode2session", Code: code, Msg: "secret s3cr3t"})
		if !strings.Contains(e.Message, says) || !strings.Contains(e.Message, fmt.Sprint(code)) || strings.Contains(e.Message, "s3cr3t") {
			t.Errorf("%d: %q does not say %q and the errcode, or quotes WeChat", code, e.Message, says)
		}
		if seen[e.Message] {
			t.Errorf("%d: the message of another errcode", code)
		}
		seen[e.Message] = true
	}
}

// TestDecryptReason gives each kind of decrypt failure its own message,
// from real decrypt errors, and never quotes the data or the key.
func TestDecryptReason(t *testing.T) {
	const app = "wxreason00000001"
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))
	other := base64.StdEncoding.EncodeToString([]byte("fedcba9876543210"))
	seal := func(plain string) (string, string) {
		t.Helper()
		data, iv, err := wx.Encrypt(key, []byte(plain))
		if err != nil {
			t.Fatal(err)
		}
		return data, iv
	}
	good, iv := seal(`{"watermark":{"appid":"` + app + `"}}`)
	foreign, foreignIV := seal(`{"watermark":{"appid":"wxother000000001"}}`)
	notJSON, notJSONIV := seal("hello")
	tests := []struct {
		name, key, data, iv, want string
	}{
		{"bad iv", key, good, "AAAA", `"iv" is not base64 of 16 bytes`},
		{"bad data", key, "%%%", iv, `"encryptedData" is not base64`},
		{"other session_key", other, good, iv, "does not decrypt with the user's newest session_key; if the data came before the latest wx.login"},
		{"not JSON", key, notJSON, notJSONIV, "does not decrypt with the user's newest session_key"},
		{"foreign watermark", key, foreign, foreignIV, "names another mini-program"},
		{"bad kept key", "short", good, iv, "session_key is not usable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := wx.DecryptUserData(app, tt.key, tt.data, tt.iv)
			if err == nil {
				t.Fatal("decrypted")
			}
			got := decryptReason(err)
			if !strings.Contains(got, tt.want) {
				t.Fatalf("decryptReason(%v) = %q, want it to say %q", err, got, tt.want)
			}
			for _, secret := range []string{tt.key, tt.data, key, other} {
				if len(secret) > 4 && strings.Contains(got, secret) {
					t.Fatalf("reason %q quotes %q", got, secret)
				}
			}
		})
	}
}
