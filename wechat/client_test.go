package wechat

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	testAppID  = "wxtestapp0000001"
	testSecret = "S3CRET-do-not-leak-0123456789ab"
	testCode   = "CODE-do-not-leak-xyz"
	testToken  = "ACCESS-TOKEN-do-not-leak-42"
)

// wxServer is an httptest WeChat; handle answers each request.
type wxServer struct {
	*httptest.Server
	calls   atomic.Int32
	observe struct {
		sync.Mutex
		apis []string
	}
}

func newWX(t *testing.T, handle http.HandlerFunc) *wxServer {
	t.Helper()
	s := &wxServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.calls.Add(1)
		handle(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *wxServer) client(mod func(*Config)) *Client {
	cfg := Config{
		AppID: testAppID, AppSecret: testSecret, BaseURL: s.URL + "/",
		Timeout: 2 * time.Second, Backoff: time.Millisecond,
		Observe: func(api string, _ time.Duration, _ error) {
			s.observe.Lock()
			s.observe.apis = append(s.observe.apis, api)
			s.observe.Unlock()
		},
	}
	if mod != nil {
		mod(&cfg)
	}
	return NewClient(cfg)
}

func (s *wxServer) attempts() int {
	s.observe.Lock()
	defer s.observe.Unlock()
	return len(s.observe.apis)
}

// textJSON answers body with WeChat's text/plain content type.
func textJSON(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, body)
	}
}

// noSecrets fails when err's message holds any secret of the tests.
func noSecrets(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range []string{testSecret, testCode, testToken, "secret=", "access_token=", "js_code="} {
		if strings.Contains(err.Error(), s) {
			t.Fatalf("error leaks %q: %v", s, err)
		}
	}
}

func TestCode2SessionSuccess(t *testing.T) {
	tests := []struct {
		name, body, unionid string
	}{
		{"without errcode", `{"openid":"o1","session_key":"k1"}`, ""},
		{"errcode 0", `{"openid":"o1","session_key":"k1","errcode":0,"errmsg":"ok"}`, ""},
		{"unionid", `{"openid":"o1","session_key":"k1","unionid":"u1"}`, "u1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got *http.Request
			wx := newWX(t, func(w http.ResponseWriter, r *http.Request) {
				got = r
				textJSON(tt.body)(w, r)
			})
			sess, err := wx.client(nil).Code2Session(context.Background(), testCode)
			if err != nil {
				t.Fatal(err)
			}
			if *sess != (Session{OpenID: "o1", UnionID: tt.unionid, SessionKey: "k1"}) {
				t.Fatalf("session = %+v", sess)
			}
			q := got.URL.Query()
			if got.Method != http.MethodGet || got.URL.Path != "/sns/jscode2session" ||
				q.Get("appid") != testAppID || q.Get("secret") != testSecret ||
				q.Get("js_code") != testCode || q.Get("grant_type") != "authorization_code" {
				t.Fatalf("request = %s %s", got.Method, got.URL)
			}
		})
	}
}

func TestCode2SessionErrcodes(t *testing.T) {
	tests := []struct {
		code     int
		is       func(error) bool
		attempts int
	}{
		{40029, IsInvalidCode, 1},
		{40163, IsInvalidCode, 1},
		{40226, IsRisky, 1},
		{45011, IsRateLimited, 1},
		{-1, func(err error) bool { var e *Error; return errors.As(err, &e) && e.Code == -1 }, 3},
	}
	for _, tt := range tests {
		wx := newWX(t, func(w http.ResponseWriter, r *http.Request) {
			json.NewEncoder(w).Encode(map[string]any{"errcode": tt.code, "errmsg": "msg " + r.URL.Query().Get("secret")})
		})
		_, err := wx.client(nil).Code2Session(context.Background(), testCode)
		if !tt.is(err) {
			t.Errorf("errcode %d: err = %v", tt.code, err)
		}
		if wx.attempts() != tt.attempts || int(wx.calls.Load()) != tt.attempts {
			t.Errorf("errcode %d: %d attempts, %d calls, want %d", tt.code, wx.attempts(), wx.calls.Load(), tt.attempts)
		}
		noSecrets(t, err)
	}
	err := error(&Error{API: "jscode2session", Code: 40029, Msg: "invalid code"})
	if err.Error() != "wechat jscode2session: errcode 40029: invalid code" {
		t.Fatalf("Error() = %q", err)
	}
	if IsInvalidCode(errors.New("x")) || IsRisky(nil) || IsTokenInvalid(err) || IsSessionKeyInvalid(err) || IsRateLimited(err) {
		t.Fatal("helpers match the wrong errors")
	}
}

func TestBusyThenSuccess(t *testing.T) {
	wx := newWX(t, nil)
	var n atomic.Int32
	wx.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wx.calls.Add(1)
		if n.Add(1) == 1 {
			textJSON(`{"errcode":-1,"errmsg":"system error"}`)(w, r)
			return
		}
		textJSON(`{"openid":"o1","session_key":"k1"}`)(w, r)
	})
	sess, err := wx.client(nil).Code2Session(context.Background(), testCode)
	if err != nil || sess.OpenID != "o1" {
		t.Fatalf("got %+v, %v", sess, err)
	}
	if wx.calls.Load() != 2 || wx.attempts() != 2 {
		t.Fatalf("%d calls, %d observed", wx.calls.Load(), wx.attempts())
	}
}

func TestBusyBackoffHonorsContext(t *testing.T) {
	wx := newWX(t, textJSON(`{"errcode":-1,"errmsg":"busy"}`))
	c := wx.client(func(c *Config) { c.Backoff = time.Hour; c.Retries = 5 })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Code2Session(ctx, testCode)
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("took %v", d)
	}
	var e *Error
	if !errors.As(err, &e) || e.Code != -1 {
		t.Fatalf("err = %v", err)
	}
}

func TestNoRetries(t *testing.T) {
	wx := newWX(t, textJSON(`{"errcode":-1,"errmsg":"busy"}`))
	_, err := wx.client(func(c *Config) { c.Retries = -1 }).Code2Session(context.Background(), testCode)
	if err == nil || wx.calls.Load() != 1 {
		t.Fatalf("%d calls, err %v", wx.calls.Load(), err)
	}
}

func TestUpstreamErrors(t *testing.T) {
	tests := []struct {
		name   string
		handle http.HandlerFunc
	}{
		{"html", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, "<html><body>502 Bad Gateway</body></html>")
		}},
		{"not json", textJSON("ok")},
		{"json array", textJSON(`[{"openid":"o1","session_key":"k1"}]`)},
		{"truncated json", textJSON(`{"openid":"o1","session_key":"k1"`)},
		{"wrong field types", textJSON(`{"openid":1,"session_key":"k1"}`)},
		{"http 500", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, `{"openid":"o1","session_key":"k1"}`)
		}},
		{"http 404", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }},
		{"redirect", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/elsewhere?"+r.URL.RawQuery, http.StatusFound)
		}},
		{"empty body", func(w http.ResponseWriter, r *http.Request) {}},
		{"blank body", textJSON(" \n")},
		{"too large", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"openid":"o1","session_key":"k1","x":"`+strings.Repeat("a", 1<<20)+`"}`)
		}},
		{"no openid", textJSON(`{"session_key":"k1"}`)},
		{"no session_key", textJSON(`{"openid":"o1","errcode":0}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wx := newWX(t, tt.handle)
			sess, err := wx.client(nil).Code2Session(context.Background(), testCode)
			var ue *UpstreamError
			if !errors.As(err, &ue) || sess != nil || ue.Timeout || ue.API != "jscode2session" {
				t.Fatalf("got %+v, %#v", sess, err)
			}
			if wx.calls.Load() != 1 {
				t.Fatalf("%d calls, want 1 (no retry, no redirect)", wx.calls.Load())
			}
			noSecrets(t, err)
		})
	}
}

func TestIdempotentRetriesServerErrors(t *testing.T) {
	wx := newWX(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadGateway) })
	err := wx.client(nil).CheckSession(context.Background(), testToken, "o1", "k1")
	var ue *UpstreamError
	if !errors.As(err, &ue) || wx.calls.Load() != 3 {
		t.Fatalf("%d calls, err %v", wx.calls.Load(), err)
	}
	noSecrets(t, err)
}

func TestTimeout(t *testing.T) {
	wx := newWX(t, func(w http.ResponseWriter, r *http.Request) {
		// Read the body first: only then does the server notice a client
		// that hangs up, and Close need not wait the full sleep.
		io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	c := wx.client(func(c *Config) { c.Timeout = 100 * time.Millisecond })
	for name, call := range map[string]func() error{
		"jscode2session": func() error { _, err := c.Code2Session(context.Background(), testCode); return err },
		"stable_token":   func() error { _, _, err := c.StableToken(context.Background(), false); return err },
	} {
		start := time.Now()
		err := call()
		var ue *UpstreamError
		if !errors.As(err, &ue) || !ue.Timeout {
			t.Fatalf("%s: err = %#v", name, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("%s: took %v", name, d)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: err does not wrap DeadlineExceeded: %v", name, err)
		}
		noSecrets(t, err)
	}
	if n := wx.calls.Load(); n != 2 {
		t.Fatalf("%d calls, want 2 (timeouts are not retried)", n)
	}
}

func TestContextCanceled(t *testing.T) {
	wx := newWX(t, textJSON(`{"openid":"o1","session_key":"k1"}`))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := wx.client(nil).Code2Session(ctx, testCode)
	if !errors.Is(err, context.Canceled) || wx.attempts() != 1 {
		t.Fatalf("%d attempts, err %v", wx.attempts(), err)
	}
	noSecrets(t, err)
}

func TestConnectionReset(t *testing.T) {
	wx := newWX(t, func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.SetLinger(0) // RST rather than FIN
		}
		conn.Close()
	})
	c := wx.client(nil)
	// The request reached WeChat, so a single-use code must not be resent.
	_, err := c.Code2Session(context.Background(), testCode)
	var ue *UpstreamError
	if !errors.As(err, &ue) || ue.Timeout {
		t.Fatalf("code2session err = %#v", err)
	}
	if n := wx.calls.Load(); n != 1 {
		t.Fatalf("code2session: %d calls, want 1", n)
	}
	noSecrets(t, err)
	// Idempotent calls are retried.
	wx.calls.Store(0)
	_, _, err = c.StableToken(context.Background(), false)
	if !errors.As(err, &ue) {
		t.Fatalf("stable_token err = %#v", err)
	}
	if n := wx.calls.Load(); n != 3 {
		t.Fatalf("stable_token: %d calls, want 3", n)
	}
	noSecrets(t, err)
}

func TestDialErrorRetried(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	var attempts atomic.Int32
	c := NewClient(Config{
		AppID: testAppID, AppSecret: testSecret, BaseURL: "http://" + addr,
		Backoff: time.Millisecond,
		Observe: func(string, time.Duration, error) { attempts.Add(1) },
	})
	// Nothing was sent, so even the single-use code is safe to retry.
	_, err = c.Code2Session(context.Background(), testCode)
	var ue *UpstreamError
	if !errors.As(err, &ue) || ue.Timeout {
		t.Fatalf("err = %#v", err)
	}
	if attempts.Load() != 3 {
		t.Fatalf("%d attempts, want 3", attempts.Load())
	}
	noSecrets(t, err)
	_, err = c.PhoneNumber(context.Background(), testToken, testCode, "")
	noSecrets(t, err)
	err = c.CheckSession(context.Background(), testToken, "o1", "k1")
	noSecrets(t, err)
}

func TestStableToken(t *testing.T) {
	for _, force := range []bool{false, true} {
		var body map[string]any
		wx := newWX(t, func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost || r.URL.Path != "/cgi-bin/stable_token" || r.URL.RawQuery != "" ||
				r.Header.Get("Content-Type") != "application/json" {
				t.Errorf("request = %s %s", r.Method, r.URL)
			}
			json.NewDecoder(r.Body).Decode(&body)
			textJSON(`{"access_token":"`+testToken+`","expires_in":7200}`)(w, r)
		})
		tok, exp, err := wx.client(nil).StableToken(context.Background(), force)
		if err != nil || tok != testToken || exp != 2*time.Hour {
			t.Fatalf("got %q, %v, %v", tok, exp, err)
		}
		want := map[string]any{"grant_type": "client_credential", "appid": testAppID, "secret": testSecret, "force_refresh": force}
		for k, v := range want {
			if body[k] != v {
				t.Fatalf("body[%s] = %v, want %v", k, body[k], v)
			}
		}
	}
	for _, reply := range []string{`{"expires_in":7200}`, `{"access_token":"t","expires_in":0}`, `{"errcode":0}`} {
		wx := newWX(t, textJSON(reply))
		_, _, err := wx.client(nil).StableToken(context.Background(), false)
		var ue *UpstreamError
		if !errors.As(err, &ue) {
			t.Errorf("%s: err = %v", reply, err)
		}
	}
	wx := newWX(t, textJSON(`{"errcode":40125,"errmsg":"invalid appsecret"}`))
	_, _, err := wx.client(nil).StableToken(context.Background(), false)
	var e *Error
	if !errors.As(err, &e) || e.Code != 40125 || e.API != "stable_token" || wx.calls.Load() != 1 {
		t.Fatalf("err = %v, %d calls", err, wx.calls.Load())
	}
}

func TestPhoneNumber(t *testing.T) {
	tests := []struct{ name, info string }{
		{"countryCode number", `{"phoneNumber":"13800138000","purePhoneNumber":"13800138000","countryCode":86,"watermark":{"timestamp":1,"appid":"wxtestapp0000001"}}`},
		{"countryCode string", `{"phoneNumber":"+8613800138000","purePhoneNumber":"13800138000","countryCode":"86"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wx := newWX(t, func(w http.ResponseWriter, r *http.Request) {
				var body map[string]string
				json.NewDecoder(r.Body).Decode(&body)
				if r.Method != http.MethodPost || r.URL.Path != "/wxa/business/getuserphonenumber" ||
					r.URL.Query().Get("access_token") != testToken || body["code"] != testCode || body["openid"] != "o-alice" {
					t.Errorf("request = %s %s body %v", r.Method, r.URL, body)
				}
				io.WriteString(w, `{"errcode":0,"errmsg":"ok","phone_info":`+tt.info+`}`)
			})
			got, err := wx.client(nil).PhoneNumber(context.Background(), testToken, testCode, "o-alice")
			if err != nil || string(got) != tt.info {
				t.Fatalf("got %s, %v", got, err)
			}
		})
	}
	for _, reply := range []string{`{"errcode":0}`, `{"phone_info":"13800138000"}`, `{"phone_info":null}`, `{"phone_info":[1]}`} {
		wx := newWX(t, textJSON(reply))
		_, err := wx.client(nil).PhoneNumber(context.Background(), testToken, testCode, "")
		var ue *UpstreamError
		if !errors.As(err, &ue) {
			t.Errorf("%s: err = %v", reply, err)
		}
	}
	wx := newWX(t, textJSON(`{"errcode":40001,"errmsg":"invalid credential, access_token is invalid or not latest"}`))
	_, err := wx.client(nil).PhoneNumber(context.Background(), testToken, testCode, "")
	if !IsTokenInvalid(err) || wx.calls.Load() != 1 {
		t.Fatalf("err = %v, %d calls", err, wx.calls.Load())
	}
	noSecrets(t, err)
}

func TestCheckSession(t *testing.T) {
	const openid, sessionKey = "oUser1", "o0q0otL8aEzpcZL/FT9WsQ=="
	mac := hmac.New(sha256.New, []byte(sessionKey))
	wantSig := hex.EncodeToString(mac.Sum(nil))
	for _, tt := range []struct {
		reply string
		valid bool
	}{
		{`{"errcode":0,"errmsg":"ok"}`, true},
		{`{}`, true},
		{`{"errcode":87009,"errmsg":"invalid signature"}`, false},
	} {
		wx := newWX(t, func(w http.ResponseWriter, r *http.Request) {
			q := r.URL.Query()
			if r.Method != http.MethodGet || r.URL.Path != "/wxa/checksession" || q.Get("access_token") != testToken ||
				q.Get("openid") != openid || q.Get("signature") != wantSig || q.Get("sig_method") != "hmac_sha256" {
				t.Errorf("request = %s %s", r.Method, r.URL)
			}
			textJSON(tt.reply)(w, r)
		})
		err := wx.client(nil).CheckSession(context.Background(), testToken, openid, sessionKey)
		if tt.valid != (err == nil) || !tt.valid && !IsSessionKeyInvalid(err) {
			t.Errorf("%s: err = %v", tt.reply, err)
		}
		noSecrets(t, err)
	}
}

func TestObserve(t *testing.T) {
	var got []string
	var errs []error
	wx := newWX(t, textJSON(`{"errcode":45011,"errmsg":"api minute-quota reach limit"}`))
	c := wx.client(func(c *Config) {
		c.Observe = func(api string, d time.Duration, err error) {
			got = append(got, api)
			errs = append(errs, err)
		}
	})
	c.PhoneNumber(context.Background(), testToken, testCode, "")
	if len(got) != 1 || got[0] != "getuserphonenumber" || !IsRateLimited(errs[0]) {
		t.Fatalf("observed %v %v", got, errs)
	}
}

func TestDefaults(t *testing.T) {
	c := NewClient(Config{})
	if c.base != DefaultBaseURL || c.timeout != DefaultTimeout || c.retries != 2 || c.backoff != 100*time.Millisecond {
		t.Fatalf("defaults = %+v", c)
	}
	if c.hc == http.DefaultClient || c.hc.Transport == nil || c.hc.CheckRedirect == nil {
		t.Fatal("default HTTP client is not its own")
	}
	own := &http.Client{}
	NewClient(Config{HTTPClient: own})
	if own.CheckRedirect != nil {
		t.Fatal("caller's HTTP client was modified")
	}
}
