package qq

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
	appID  = "1112345678"
	secret = "qq-secret-value"
)

// serve answers code2Session with body and returns the provider pointed at
// it and what it counted as config errors.
func serve(t *testing.T, status int, body string) (*Provider, *[]string) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.Method != http.MethodGet || r.URL.Path != "/sns/jscode2session" || q.Get("appid") != appID ||
			q.Get("secret") != secret || q.Get("js_code") != "the-code" || q.Get("grant_type") != "authorization_code" {
			t.Errorf("request %s %s", r.Method, r.URL)
		}
		w.Header().Set("Content-Type", "text/plain")
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
	p, _ := serve(t, 200, `{"openid":"oQQ1","session_key":"tiihtNczf5v6AKRyjwEUhQ==","unionid":"uQQ1"}`)
	id, err := p.Exchange(context.Background(), zap.NewNop(), login.Code{Code: "the-code"})
	if err != nil {
		t.Fatal(err)
	}
	want := login.Identity{Platform: "qq", Surface: "mp", AppID: appID, OpenID: "oQQ1", UnionID: "uQQ1", SessionKey: "tiihtNczf5v6AKRyjwEUhQ=="}
	if id.UserInfo != nil || id.Platform != want.Platform || id.Surface != want.Surface || id.AppID != want.AppID ||
		id.OpenID != want.OpenID || id.UnionID != want.UnionID || id.SessionKey != want.SessionKey || id.Anonymous {
		t.Fatalf("identity %+v", id)
	}
	if _, err := p.Exchange(context.Background(), zap.NewNop(), login.Code{AnonymousCode: "x"}); apierr.As(err).Code != "invalid_request" {
		t.Fatalf("no code: %v", err)
	}
}

func TestExchangeErrors(t *testing.T) {
	cases := []struct {
		status  int
		body    string
		code    string
		errcode any
		config  bool
	}{
		{200, `{"errcode":40029,"errmsg":"invalid code"}`, "invalid_code", 40029, false},
		{200, `{"errcode":40163,"errmsg":"code been used"}`, "invalid_code", 40163, false},
		{200, `{"errcode":45011,"errmsg":"api minute-quota reach limit"}`, "rate_limited", 45011, false},
		{200, `{"errcode":40226,"errmsg":"high risk user"}`, "risky_user", 40226, false},
		{200, `{"errcode":-1,"errmsg":"system error"}`, "upstream_error", -1, false},
		{200, `{"errcode":40013,"errmsg":"invalid appid"}`, "platform_config", 40013, true},
		{200, `{"errcode":40125,"errmsg":"invalid appsecret"}`, "platform_config", 40125, true},
		{200, `{"errcode":41002,"errmsg":"appid missing"}`, "platform_config", 41002, true},
		{200, `{"errcode":41004,"errmsg":"appsecret missing"}`, "platform_config", 41004, true},
		{200, `{"errcode":99999,"errmsg":"something new"}`, "upstream_error", 99999, false},
		{200, `{"openid":"o"}`, "upstream_error", nil, false},
		{200, `{"errcode":0}`, "upstream_error", nil, false},
		{502, `<html>bad gateway</html>`, "upstream_error", nil, false},
		{200, `not json`, "upstream_error", nil, false},
	}
	for _, c := range cases {
		p, counted := serve(t, c.status, c.body)
		_, err := p.Exchange(context.Background(), zap.NewNop(), login.Code{Code: "the-code"})
		var e *apierr.Error
		if !errors.As(err, &e) || e.Code != c.code || e.ErrCode != c.errcode {
			t.Errorf("%s: got %v (errcode %v), want %s %v", c.body, err, errcodeOf(e), c.code, c.errcode)
			continue
		}
		if c.config != (len(*counted) == 1) || c.config && (e.Platform != "qq" || !strings.Contains(e.Message, "qq block")) {
			t.Errorf("%s: counted %v, platform %q, message %q", c.body, *counted, e.Platform, e.Message)
		}
		if strings.Contains(e.Message, secret) || strings.Contains(e.Message, "the-code") {
			t.Errorf("%s: the message names the secret or code", c.body)
		}
	}
}

func errcodeOf(e *apierr.Error) any {
	if e == nil {
		return nil
	}
	return e.ErrCode
}

func TestNew(t *testing.T) {
	if _, err := New(login.PlatformConfig{AppID: appID}); err == nil || !strings.Contains(err.Error(), "app_secret") {
		t.Fatalf("no secret: %v", err)
	}
	if _, err := New(login.PlatformConfig{AppID: appID, AppSecret: secret, APIBase: "mailto:x"}); err == nil || !strings.Contains(err.Error(), "api_base") {
		t.Fatalf("bad api_base: %v", err)
	}
}

// User data and phone numbers are sealed as WeChat seals them; the
// plaintexts are QQ's documented shapes.
func TestDecrypt(t *testing.T) {
	p, _ := serve(t, 200, `{}`)
	key := "tiihtNczf5v6AKRyjwEUhQ=="
	plain := `{"openId":"oQQ1","nickName":"Band","gender":1,"unionId":"uQQ1","watermark":{"appid":"` + appID + `","timestamp":1477314187}}`
	data, iv, err := wx.Encrypt(key, []byte(plain))
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.DecryptUserData(key, login.Encrypted{Data: data, IV: iv})
	if err != nil || string(got) != plain {
		t.Fatalf("%s %v", got, err)
	}
	data, iv, _ = wx.Encrypt(key, []byte(`{"phoneNumber":"13580006666","purePhoneNumber":"13580006666","countryCode":"86","watermark":{"appid":"`+appID+`","timestamp":1}}`))
	got, err = p.PhoneFromEncrypted(key, login.Encrypted{Data: data, IV: iv})
	if err != nil || string(got) != `{"phone_number":"13580006666","pure_phone_number":"13580006666","country_code":"86"}` {
		t.Fatalf("%s %v", got, err)
	}
	data, iv, _ = wx.Encrypt(key, []byte(`{"phoneNumber":"1","watermark":{"appid":"another","timestamp":1}}`))
	if _, err := p.PhoneFromEncrypted(key, login.Encrypted{Data: data, IV: iv}); apierr.As(err).Code != "decrypt_failed" {
		t.Fatalf("another app's phone: %v", err)
	}
}
