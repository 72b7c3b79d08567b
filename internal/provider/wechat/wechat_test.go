package wechat

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/wxauth/caddy-wxauth/internal/apierr"
	"github.com/wxauth/caddy-wxauth/internal/login"
	"github.com/wxauth/caddy-wxauth/session"
	wx "github.com/wxauth/caddy-wxauth/wechat"
)

const testApp = "wxprovider000001"

// newProvider is a provider over a test WeChat whose APIs answer from
// replies, by path; stable_token always hands out "AT".
func newProvider(t *testing.T, replies map[string]string) *Provider {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/cgi-bin/stable_token" {
			if _, ok := replies[r.URL.Path]; !ok {
				io.WriteString(w, `{"access_token":"AT","expires_in":7200}`)
				return
			}
		}
		reply, ok := replies[r.URL.Path]
		if !ok {
			t.Errorf("unexpected call %s", r.URL.Path)
		}
		io.WriteString(w, reply)
	}))
	t.Cleanup(srv.Close)
	c := wx.NewClient(wx.Config{AppID: testApp, AppSecret: "secret", BaseURL: srv.URL, Timeout: 2 * time.Second, Retries: -1})
	return New(testApp, c, wx.NewAccessTokens(c, session.NewMemory(), "wxauth/"+testApp+"/access_token", nil))
}

func errorCode(t *testing.T, err error) (string, int) {
	t.Helper()
	var e *apierr.Error
	if !errors.As(err, &e) {
		t.Fatalf("%v (%T) is not an *apierr.Error", err, err)
	}
	code := 0
	if e.ErrCode != nil {
		code = *e.ErrCode
	}
	return e.Code, code
}

func TestExchange(t *testing.T) {
	p := newProvider(t, map[string]string{"/sns/jscode2session": `{"openid":"o-alice","unionid":"u-alice","session_key":"c2Vzc2lvbmtleQ=="}`})
	id, err := p.Exchange(context.Background(), zap.NewNop(), "code1")
	want := login.Identity{Platform: "wechat", AppID: testApp, OpenID: "o-alice", UnionID: "u-alice", SessionKey: "c2Vzc2lvbmtleQ=="}
	if err != nil || *id != want {
		t.Fatalf("got %+v, %v; want %+v", id, err, want)
	}
}

// A refusal is the contract's error with WeChat's errcode; WeChat's own
// message goes to the log only.
func TestExchangeRefused(t *testing.T) {
	p := newProvider(t, map[string]string{"/sns/jscode2session": `{"errcode":40029,"errmsg":"invalid code, rid: 203.0.113.9"}`})
	core, logs := observer.New(zapcore.InfoLevel)
	_, err := p.Exchange(context.Background(), zap.New(core), "code1")
	if code, errcode := errorCode(t, err); code != "invalid_code" || errcode != 40029 {
		t.Fatalf("got %s %d, want invalid_code 40029", code, errcode)
	}
	if strings.Contains(err.Error(), "203.0.113.9") {
		t.Fatalf("WeChat's errmsg reached the client: %v", err)
	}
	if logs.FilterMessage("login refused by WeChat").Len() != 1 {
		t.Fatalf("logs: %v", logs.All())
	}
}

func TestPhoneNumber(t *testing.T) {
	const info = `{"phoneNumber":"13800138000","purePhoneNumber":"13800138000","countryCode":"86"}`
	p := newProvider(t, map[string]string{"/wxa/business/getuserphonenumber": `{"errcode":0,"phone_info":` + info + `}`})
	got, asked, err := p.PhoneNumber(context.Background(), zap.NewNop(), "pcode", "o-alice")
	if err != nil || !asked || string(got) != info {
		t.Fatalf("got %s %v %v", got, asked, err)
	}

	p = newProvider(t, map[string]string{"/wxa/business/getuserphonenumber": `{"errcode":40029,"errmsg":"invalid code"}`})
	_, asked, err = p.PhoneNumber(context.Background(), zap.NewNop(), "pcode", "o-alice")
	if code, errcode := errorCode(t, err); !asked || code != "invalid_code" || errcode != 40029 || !strings.Contains(err.Error(), "getPhoneNumber") {
		t.Fatalf("got asked %v, %v", asked, err)
	}

	// Without an access_token WeChat is never asked about the code.
	p = newProvider(t, map[string]string{"/cgi-bin/stable_token": `{"errcode":40125,"errmsg":"invalid appsecret"}`})
	_, asked, err = p.PhoneNumber(context.Background(), zap.NewNop(), "pcode", "o-alice")
	if code, errcode := errorCode(t, err); asked || code != "upstream_error" || errcode != 40125 {
		t.Fatalf("got asked %v, %v", asked, err)
	}
}

func TestCheckSessionKey(t *testing.T) {
	for reply, want := range map[string]bool{`{"errcode":0}`: true, `{"errcode":87009,"errmsg":"invalid signature"}`: false} {
		p := newProvider(t, map[string]string{"/wxa/checksession": reply})
		valid, err := p.CheckSessionKey(context.Background(), "o-alice", "c2Vzc2lvbmtleQ==")
		if err != nil || valid != want {
			t.Fatalf("%s: %v %v, want %v", reply, valid, err, want)
		}
	}
	p := newProvider(t, map[string]string{"/wxa/checksession": `{"errcode":45011,"errmsg":"api minute-quota reach limit"}`})
	if _, err := p.CheckSessionKey(context.Background(), "o-alice", "c2Vzc2lvbmtleQ=="); err == nil {
		t.Fatal("a refused check reads as an answer")
	} else if code, _ := errorCode(t, err); code != "rate_limited" {
		t.Fatalf("got %v", err)
	}
}

func TestDecryptUserData(t *testing.T) {
	p := newProvider(t, nil)
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))
	plain := `{"nickName":"Alice","watermark":{"appid":"` + testApp + `","timestamp":1}}`
	data, iv, err := wx.Encrypt(key, []byte(plain))
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.DecryptUserData(key, login.Encrypted{Data: data, IV: iv})
	var m map[string]any
	if err != nil || json.Unmarshal(got, &m) != nil || m["nickName"] != "Alice" {
		t.Fatalf("got %s, %v", got, err)
	}
	raw := `{"nickName":"Alice"}`
	sig := wx.LoginStateSignature(key, raw) // not the rawData signature
	if _, err := p.DecryptUserData(key, login.Encrypted{Data: data, IV: iv, RawData: raw, Signature: sig}); err == nil {
		t.Fatal("a bad signature passed")
	} else if code, _ := errorCode(t, err); code != "invalid_signature" {
		t.Fatalf("got %v", err)
	}
	if _, err := p.DecryptUserData(key, login.Encrypted{Data: data, IV: "AAAA"}); err == nil {
		t.Fatal("a bad iv decrypted")
	} else if code, _ := errorCode(t, err); code != "decrypt_failed" || !strings.Contains(err.Error(), `"iv"`) {
		t.Fatalf("got %v", err)
	}
}
