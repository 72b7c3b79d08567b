package douyin

import (
	"context"
	"encoding/json"
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
	appID  = "tt5daf2b0123457910"
	secret = "188506c64aaaa55a31de40625ec7"
)

// serve answers code2Session v2 with body; the request it got is in *got.
func serve(t *testing.T, body string) (*Provider, *request, *[]string) {
	t.Helper()
	got := new(request)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/api/apps/v2/jscode2session" || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("request %s %s %s", r.Method, r.URL, r.Header.Get("Content-Type"))
		}
		if err := json.NewDecoder(r.Body).Decode(got); err != nil {
			t.Error(err)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	var counted []string
	p, err := New(login.PlatformConfig{AppID: appID, AppSecret: secret, APIBase: srv.URL,
		ConfigError: func(code string) { counted = append(counted, code) }})
	if err != nil {
		t.Fatal(err)
	}
	return p, got, &counted
}

func TestExchange(t *testing.T) {
	const ok = `{"err_no":0,"err_tips":"success","log_id":"2024102117013250E8ABC6F2D070B","data":{"session_key":"tiihtNczf5v6AKRyjwEUhQ==","openid":"oDY1","anonymous_openid":"aDY1","unionid":"uDY1"}}`
	cases := []struct {
		code login.Code
		want login.Identity
	}{
		{login.Code{Code: "c1"}, login.Identity{OpenID: "oDY1", UnionID: "uDY1", SessionKey: "tiihtNczf5v6AKRyjwEUhQ==", AnonymousOpenID: "aDY1"}},
		{login.Code{Code: "c1", AnonymousCode: "a1"}, login.Identity{OpenID: "oDY1", UnionID: "uDY1", SessionKey: "tiihtNczf5v6AKRyjwEUhQ==", AnonymousOpenID: "aDY1"}},
		// A guest: the device's anonymous_openid, without a session key.
		{login.Code{AnonymousCode: "a1"}, login.Identity{OpenID: "aDY1", Anonymous: true}},
	}
	for _, c := range cases {
		p, got, _ := serve(t, ok)
		id, err := p.Exchange(context.Background(), zap.NewNop(), c.code)
		if err != nil {
			t.Fatal(err)
		}
		if *got != (request{AppID: appID, Secret: secret, Code: c.code.Code, AnonymousCode: c.code.AnonymousCode}) {
			t.Fatalf("%+v: request %+v", c.code, *got)
		}
		w := c.want
		if id.Platform != "douyin" || id.Surface != "mp" || id.AppID != appID || id.OpenID != w.OpenID || id.UnionID != w.UnionID ||
			id.SessionKey != w.SessionKey || id.Anonymous != w.Anonymous || id.AnonymousOpenID != w.AnonymousOpenID {
			t.Fatalf("%+v: identity %+v", c.code, id)
		}
	}
	p, _, _ := serve(t, ok)
	if _, err := p.Exchange(context.Background(), zap.NewNop(), login.Code{}); apierr.As(err).Code != "invalid_request" {
		t.Fatalf("no code: %v", err)
	}
}

func TestExchangeErrors(t *testing.T) {
	cases := []struct {
		code    login.Code
		body    string
		want    string
		errcode any
		config  bool
	}{
		{login.Code{Code: "c"}, `{"err_no":40018,"err_tips":"bad code","data":{}}`, "invalid_code", 40018, false},
		{login.Code{AnonymousCode: "a"}, `{"err_no":40019,"err_tips":"bad anonymous_code","data":{}}`, "invalid_code", 40019, false},
		{login.Code{Code: "c"}, `{"err_no":40015,"err_tips":"bad appid","data":{}}`, "platform_config", 40015, true},
		{login.Code{Code: "c"}, `{"err_no":40017,"err_tips":"bad secret","data":{}}`, "platform_config", 40017, true},
		{login.Code{Code: "c"}, `{"err_no":28003018,"err_tips":"请求频率过高","data":{}}`, "rate_limited", 28003018, false},
		{login.Code{Code: "c"}, `{"err_no":-1,"err_tips":"system error","data":{}}`, "upstream_error", -1, false},
		{login.Code{Code: "c"}, `{"err_no":40014,"err_tips":"bad params","data":{}}`, "upstream_error", 40014, false},
		{login.Code{Code: "c"}, `{"err_no":0,"err_tips":"success","data":{"anonymous_openid":"a"}}`, "upstream_error", nil, false},
		{login.Code{AnonymousCode: "a"}, `{"err_no":0,"err_tips":"success","data":{"openid":"o"}}`, "upstream_error", nil, false},
		{login.Code{Code: "c"}, `{"err_no":"0"}`, "upstream_error", nil, false},
	}
	for _, c := range cases {
		p, _, counted := serve(t, c.body)
		_, err := p.Exchange(context.Background(), zap.NewNop(), c.code)
		var e *apierr.Error
		if !errors.As(err, &e) || e.Code != c.want || e.ErrCode != c.errcode {
			t.Errorf("%s: got %v, want %s %v", c.body, err, c.want, c.errcode)
			continue
		}
		if c.config != (len(*counted) == 1) || c.config && (e.Platform != "douyin" || !strings.Contains(e.Message, "douyin block")) {
			t.Errorf("%s: counted %v, platform %q, message %q", c.body, *counted, e.Platform, e.Message)
		}
	}
}

// Douyin's documented decryption: AES-128-CBC with the session key, as
// WeChat; its rawData signature is sha1(rawData + session_key).
func TestDecrypt(t *testing.T) {
	p, _, _ := serve(t, `{}`)
	key := "tiihtNczf5v6AKRyjwEUhQ=="
	raw := `{"nickName":"n","avatarUrl":"https://a.invalid/x.png","gender":0}`
	plain := `{"openId":"oDY1","nickName":"n","watermark":{"appid":"` + appID + `","timestamp":1}}`
	data, iv, _ := wx.Encrypt(key, []byte(plain))
	in := login.Encrypted{Data: data, IV: iv, RawData: raw, Signature: "0000000000000000000000000000000000000000"}
	if _, err := p.DecryptUserData(key, in); apierr.As(err).Code != "invalid_signature" {
		t.Fatalf("bad signature: %v", err)
	}
	in.RawData, in.Signature = "", ""
	if got, err := p.DecryptUserData(key, in); err != nil || string(got) != plain {
		t.Fatalf("%s %v", got, err)
	}
	data, iv, _ = wx.Encrypt(key, []byte(`{"phoneNumber":"13800138000","purePhoneNumber":"13800138000","countryCode":"86","watermark":{"appid":"`+appID+`","timestamp":1}}`))
	got, err := p.PhoneFromEncrypted(key, login.Encrypted{Data: data, IV: iv})
	if err != nil || string(got) != `{"phone_number":"13800138000","pure_phone_number":"13800138000","country_code":"86"}` {
		t.Fatalf("%s %v", got, err)
	}
}
