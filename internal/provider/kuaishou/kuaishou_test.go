package kuaishou

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/wxauth/caddy-wxauth/internal/apierr"
	"github.com/wxauth/caddy-wxauth/internal/login"
	wx "github.com/wxauth/caddy-wxauth/wechat"
)

const (
	appID  = "ks651234567890123456"
	secret = "ks-secret-value"
)

func serve(t *testing.T, status int, body string) (*Provider, *[]string) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/oauth2/mp/code2session" || r.URL.RawQuery != "" ||
			r.PostFormValue("app_id") != appID || r.PostFormValue("app_secret") != secret || r.PostFormValue("js_code") != "the-code" {
			t.Errorf("request %s %s %v", r.Method, r.URL, r.PostForm)
		}
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	var counted []string
	p, err := New(login.PlatformConfig{AppID: appID, AppSecret: secret, APIBase: srv.URL,
		ConfigError: func(code string) { counted = append(counted, code) }})
	if err != nil {
		t.Fatal(err)
	}
	return p, &counted
}

func TestExchange(t *testing.T) {
	p, _ := serve(t, 200, `{"result":1,"session_key":"tiihtNczf5v6AKRyjwEUhQ==","open_id":"f1a2b3"}`)
	id, err := p.Exchange(context.Background(), zap.NewNop(), login.Code{Code: "the-code"})
	if err != nil {
		t.Fatal(err)
	}
	if id.Platform != "kuaishou" || id.Surface != "mp" || id.AppID != appID || id.OpenID != "f1a2b3" ||
		id.UnionID != "" || id.SessionKey != "tiihtNczf5v6AKRyjwEUhQ==" || id.Anonymous {
		t.Fatalf("identity %+v", id)
	}
	if _, err := p.Exchange(context.Background(), zap.NewNop(), login.Code{}); apierr.As(err).Code != "invalid_request" {
		t.Fatalf("no code: %v", err)
	}
}

func TestExchangeErrors(t *testing.T) {
	cases := []struct {
		body    string
		want    string
		errcode any
		config  bool
	}{
		{`{"result":100200105,"error_msg":"invalid code"}`, "invalid_code", 100200105, false},
		{`{"result":100200101,"error_msg":"invalid client"}`, "platform_config", 100200101, true},
		{`{"result":100200100,"error_msg":"missing parameter"}`, "upstream_error", 100200100, false},
		{`{"result":100200500,"error_msg":"server error"}`, "upstream_error", 100200500, false},
		{`{"result":1,"open_id":"o"}`, "upstream_error", nil, false},
		{`{"open_id":"o","session_key":"k"}`, "upstream_error", nil, false}, // no result: not a success, and no code to report
		{`{"result":0}`, "upstream_error", 0, false},
	}
	for _, c := range cases {
		p, counted := serve(t, 200, c.body)
		_, err := p.Exchange(context.Background(), zap.NewNop(), login.Code{Code: "the-code"})
		var e *apierr.Error
		if !errors.As(err, &e) || e.Code != c.want || e.ErrCode != c.errcode {
			t.Errorf("%s: got %v, want %s %v", c.body, err, c.want, c.errcode)
			continue
		}
		if c.config != (len(*counted) == 1) || c.config && (e.Platform != "kuaishou" || !strings.Contains(e.Message, "kuaishou block")) {
			t.Errorf("%s: counted %v, platform %q, message %q", c.body, *counted, e.Platform, e.Message)
		}
	}
}

func TestDecrypt(t *testing.T) {
	p, _ := serve(t, 200, `{}`)
	key := "tiihtNczf5v6AKRyjwEUhQ=="
	data, iv, _ := wx.Encrypt(key, []byte(`{"phoneNumber":"13800138000","purePhoneNumber":"13800138000","countryCode":"86"}`))
	got, err := p.PhoneFromEncrypted(key, login.Encrypted{Data: data, IV: iv})
	if err != nil || string(got) != `{"phone_number":"13800138000","pure_phone_number":"13800138000","country_code":"86"}` {
		t.Fatalf("%s %v", got, err)
	}
	if _, err := p.DecryptUserData("HyVFkGl5F5OQWJZZaNzBBg==", login.Encrypted{Data: data, IV: iv}); apierr.As(err).Code != "decrypt_failed" {
		t.Fatalf("another key: %v", err)
	}
}
