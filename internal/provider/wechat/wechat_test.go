package wechat

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
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
	return New(Config{AppID: testApp, Client: c, Access: wx.NewAccessTokens(c, session.NewMemory(), "wxauth/"+testApp+"/access_token", nil)})
}

func errorCode(t *testing.T, err error) (string, int) {
	t.Helper()
	var e *apierr.Error
	if !errors.As(err, &e) {
		t.Fatalf("%v (%T) is not an *apierr.Error", err, err)
	}
	code := 0
	if c, ok := e.ErrCode.(int); ok {
		code = c
	}
	return e.Code, code
}

func TestExchange(t *testing.T) {
	p := newProvider(t, map[string]string{"/sns/jscode2session": `{"openid":"o-alice","unionid":"u-alice","session_key":"c2Vzc2lvbmtleQ=="}`})
	id, err := p.Exchange(context.Background(), zap.NewNop(), login.Code{Code: "code1"})
	want := login.Identity{Platform: "wechat", Surface: "mp", AppID: testApp, OpenID: "o-alice", UnionID: "u-alice", SessionKey: "c2Vzc2lvbmtleQ=="}
	if err != nil || !reflect.DeepEqual(*id, want) {
		t.Fatalf("got %+v, %v; want %+v", id, err, want)
	}
}

// A refusal is the contract's error with WeChat's errcode; WeChat's own
// message goes to the log only.
func TestExchangeRefused(t *testing.T) {
	p := newProvider(t, map[string]string{"/sns/jscode2session": `{"errcode":40029,"errmsg":"invalid code, rid: 203.0.113.9"}`})
	core, logs := observer.New(zapcore.InfoLevel)
	_, err := p.Exchange(context.Background(), zap.New(core), login.Code{Code: "code1"})
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
	if code, errcode := errorCode(t, err); asked || code != "wechat_config" || errcode != 40125 {
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

// A config errcode is counted each time and logged at ERROR with its fix
// at most once a minute per errcode, by the provider's clock; a user's bad
// code is neither.
func TestConfigErrorsLoggedOnceAMinute(t *testing.T) {
	reply := `{"errcode":40125,"errmsg":"invalid appsecret, rid: 1"}`
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		io.WriteString(w, reply)
	}))
	t.Cleanup(srv.Close)
	answer := func(s string) { mu.Lock(); reply = s; mu.Unlock() }
	now := time.Unix(1700000000, 0)
	var counted []int
	c := wx.NewClient(wx.Config{AppID: testApp, AppSecret: "secret", BaseURL: srv.URL, Timeout: 2 * time.Second, Retries: -1})
	core, logs := observer.New(zapcore.InfoLevel)
	p := New(Config{AppID: testApp, Client: c, Access: wx.NewAccessTokens(c, session.NewMemory(), "wxauth/"+testApp+"/access_token", nil),
		Log: zap.New(core), Now: func() time.Time { return now }, ConfigError: func(code int) { counted = append(counted, code) }})
	errorLines := func() int { return logs.FilterLevelExact(zapcore.ErrorLevel).Len() }
	login := func() error {
		_, err := p.Exchange(context.Background(), zap.New(core), login.Code{Code: "code1"})
		return err
	}

	for range 3 {
		if code, errcode := errorCode(t, login()); code != "wechat_config" || errcode != 40125 {
			t.Fatalf("got %s %d, want wechat_config 40125", code, errcode)
		}
	}
	if errorLines() != 1 || len(counted) != 3 {
		t.Fatalf("%d ERROR lines and %d counted after 3 wrong secrets, want 1 and 3", errorLines(), len(counted))
	}
	line := logs.FilterLevelExact(zapcore.ErrorLevel).All()[0].ContextMap()
	if line["errcode"] != int64(40125) || !strings.Contains(line["fix"].(string), "app_secret") || strings.Contains(line["fix"].(string), "secret\"") {
		t.Fatalf("ERROR line: %v", line)
	}
	// Another errcode has its own minute; the phone call's errcode counts too.
	answer(`{"errcode":40164,"errmsg":"invalid ip 203.0.113.9"}`)
	if _, _, err := p.PhoneNumber(context.Background(), zap.New(core), "pcode", "o-alice"); err == nil {
		t.Fatal("no error")
	}
	if _, err := p.CheckSessionKey(context.Background(), "o-alice", "c2Vzc2lvbmtleQ=="); err == nil {
		t.Fatal("no error")
	}
	if errorLines() != 2 || len(counted) != 5 || counted[3] != 40164 {
		t.Fatalf("%d ERROR lines, counted %v", errorLines(), counted)
	}
	// A minute later the wrong secret is logged again.
	answer(`{"errcode":40125,"errmsg":"invalid appsecret"}`)
	now = now.Add(59 * time.Second)
	login()
	if errorLines() != 2 {
		t.Fatalf("logged again within the minute")
	}
	now = now.Add(time.Second)
	login()
	if errorLines() != 3 {
		t.Fatalf("not logged again after a minute")
	}
	// A user's bad code is not the server's config.
	answer(`{"errcode":40029,"errmsg":"invalid code"}`)
	if code, _ := errorCode(t, login()); code != "invalid_code" || errorLines() != 3 || len(counted) != 7 {
		t.Fatalf("bad code: %s, %d ERROR lines, counted %v", code, errorLines(), counted)
	}
}
