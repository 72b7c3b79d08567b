package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/wxauth/caddy-wxauth/internal/apierr"
	"github.com/wxauth/caddy-wxauth/internal/clock"
	"github.com/wxauth/caddy-wxauth/internal/login"
)

// Secrets of the provider tests: none may reach a log or an error.
const (
	secret       = "WEB-SECRET-do-not-leak-0123"
	accessToken  = "WEB-ACCESS-do-not-leak-4567"
	refreshToken = "WEB-REFRESH-do-not-leak-89"
	theCode      = "WEB-CODE-do-not-leak-xyz"
)

// fakeWeChat answers sns/oauth2/access_token and sns/userinfo from the
// replies it holds, and counts the calls.
type fakeWeChat struct {
	*httptest.Server
	mu    sync.Mutex
	token string
	info  string
	calls []string
}

func newFakeWeChat(t *testing.T) *fakeWeChat {
	t.Helper()
	f := &fakeWeChat{}
	f.answer(`{"access_token":"`+accessToken+`","expires_in":7200,"refresh_token":"`+refreshToken+
		`","openid":"o-alice","scope":"snsapi_userinfo","unionid":"u-alice"}`,
		`{"openid":"o-alice","nickname":"Alice","sex":2,"province":"Guangdong","city":"Shenzhen","country":"CN",`+
			`"headimgurl":"https://img.example/a","privilege":["p1"],"unionid":"u-alice"}`)
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.calls = append(f.calls, r.URL.Path)
		switch r.URL.Path {
		case "/sns/oauth2/access_token":
			if q := r.URL.Query(); q.Get("secret") != secret || q.Get("code") != theCode || q.Get("grant_type") != "authorization_code" || q.Get("appid") == "" {
				t.Errorf("access_token query %v", q)
			}
			io.WriteString(w, f.token)
		case "/sns/userinfo":
			if q := r.URL.Query(); q.Get("access_token") != accessToken || q.Get("openid") != "o-alice" {
				t.Errorf("userinfo query %v", q)
			}
			io.WriteString(w, f.info)
		default:
			t.Errorf("unexpected call %s", r.URL.Path)
		}
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeWeChat) answer(token, info string) {
	f.mu.Lock()
	f.token, f.info = token, info
	f.mu.Unlock()
}

func (f *fakeWeChat) callList() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// provider returns a provider of app "site" in mode and scope over f.
func (f *fakeWeChat) provider(t *testing.T, mode, scope string, mod func(*Config)) *Provider {
	t.Helper()
	app := App{Name: "site", AppID: "wxweb000000000001", AppSecret: secret, Mode: mode, Scope: scope}
	if err := app.Prepare(); err != nil {
		t.Fatal(err)
	}
	cfg := Config{App: app, APIBase: f.URL, Timeout: 2 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	return New(cfg)
}

func TestExchange(t *testing.T) {
	tests := []struct {
		mode, scope string
		calls       int
		profile     bool
	}{
		{ModeOA, "snsapi_base", 1, false},
		{ModeOA, "snsapi_userinfo", 2, true},
		{ModeQR, "", 2, true},
	}
	for _, tt := range tests {
		t.Run(tt.mode+" "+tt.scope, func(t *testing.T) {
			f := newFakeWeChat(t)
			id, err := f.provider(t, tt.mode, tt.scope, nil).Exchange(context.Background(), zap.NewNop(), login.Code{Code: theCode})
			if err != nil {
				t.Fatal(err)
			}
			if id.Platform != "wechat" || id.Surface != tt.mode || id.AppID != "wxweb000000000001" || id.OpenID != "o-alice" ||
				id.UnionID != "u-alice" || id.SessionKey != "" || id.Anonymous {
				t.Fatalf("identity %+v", id)
			}
			if len(f.callList()) != tt.calls {
				t.Fatalf("calls %v", f.callList())
			}
			if !tt.profile {
				if id.UserInfo != nil {
					t.Fatalf("userinfo %s with snsapi_base", id.UserInfo)
				}
				return
			}
			var info map[string]any
			if err := json.Unmarshal(id.UserInfo, &info); err != nil {
				t.Fatal(err)
			}
			want := map[string]any{"openid": "o-alice", "unionid": "u-alice", "nickname": "Alice", "sex": 2.0,
				"province": "Guangdong", "city": "Shenzhen", "country": "CN", "headimgurl": "https://img.example/a"}
			if fmt.Sprint(info) != fmt.Sprint(want) {
				t.Fatalf("userinfo %v, want %v", info, want)
			}
			for _, bad := range []string{"privilege", accessToken, refreshToken, secret} {
				if strings.Contains(string(id.UserInfo), bad) {
					t.Fatalf("userinfo holds %q", bad)
				}
			}
		})
	}
}

func TestExchangeSnapshotVisitor(t *testing.T) {
	f := newFakeWeChat(t)
	f.answer(`{"access_token":"`+accessToken+`","expires_in":7200,"refresh_token":"r","openid":"o-virtual","scope":"snsapi_base","is_snapshotuser":1}`, "")
	_, err := f.provider(t, ModeOA, "snsapi_userinfo", nil).Exchange(context.Background(), zap.NewNop(), login.Code{Code: theCode})
	if !errors.Is(err, ErrSnapshotUser) {
		t.Fatalf("err = %v", err)
	}
	if len(f.callList()) != 1 {
		t.Fatalf("calls %v: a snapshot visitor's profile was asked", f.callList())
	}
}

// WeChat's refusals become the contract's errors, with WeChat's errcode
// only where it sent one; the config errcodes say what to fix in which
// web_login, are counted each time and logged at ERROR once a minute; no
// secret, token or code reaches an error or a log line.
func TestExchangeErrors(t *testing.T) {
	tests := []struct {
		token, info string
		status      int
		code        string
		errcode     int // 0: none
		says        string
	}{
		{`{"errcode":40029,"errmsg":"invalid code"}`, "", 401, "invalid_code", 40029, "log in again"},
		{`{"errcode":40163,"errmsg":"code been used"}`, "", 401, "invalid_code", 40163, "already used"},
		{`{"errcode":42003,"errmsg":"code expired"}`, "", 401, "invalid_code", 42003, "expired"},
		{`{"errcode":40013,"errmsg":"invalid appid"}`, "", 502, "wechat_config", 40013, "set its app_id"},
		{`{"errcode":40125,"errmsg":"invalid appsecret ` + secret + `"}`, "", 502, "wechat_config", 40125, "set its app_secret"},
		{`{"errcode":40164,"errmsg":"invalid ip 203.0.113.9"}`, "", 502, "wechat_config", 40164, "IP whitelist"},
		{`{"errcode":41002,"errmsg":"appid missing"}`, "", 502, "wechat_config", 41002, "set its app_id"},
		{`{"errcode":41004,"errmsg":"appsecret missing"}`, "", 502, "wechat_config", 41004, "set its app_secret"},
		{`{"errcode":48001,"errmsg":"api unauthorized"}`, "", 502, "wechat_config", 48001, "permission"},
		{`{"errcode":89503,"errmsg":"need confirm"}`, "", 502, "wechat_config", 89503, "administrator"},
		{`{"errcode":45011,"errmsg":"api minute-quota reach limit"}`, "", 429, "rate_limited", 45011, "rate limit"},
		{`{"errcode":40002,"errmsg":"invalid grant_type"}`, "", 502, "upstream_error", 40002, "40002"},
		{`<html>bad gateway</html>`, "", 502, "upstream_error", 0, "unusable"},
		{`{"access_token":"` + accessToken + `","openid":"o-alice"}`,
			`{"errcode":40001,"errmsg":"invalid credential, access_token is invalid ` + accessToken + `"}`, 502, "upstream_error", 40001, "40001"},
		{`{"access_token":"` + accessToken + `","openid":"o-alice"}`, `{"errcode":48001,"errmsg":"api unauthorized"}`, 502, "wechat_config", 48001, "web_login site"},
	}
	for _, tt := range tests {
		t.Run(tt.code+fmt.Sprint(tt.errcode), func(t *testing.T) {
			f := newFakeWeChat(t)
			f.answer(tt.token, tt.info)
			core, logs := observer.New(zapcore.DebugLevel)
			var counted []int
			p := f.provider(t, ModeQR, "", func(c *Config) { c.ConfigError = func(n int) { counted = append(counted, n) } })
			_, err := p.Exchange(context.Background(), zap.New(core), login.Code{Code: theCode})
			var e *apierr.Error
			if !errors.As(err, &e) {
				t.Fatalf("err %v is not an *apierr.Error", err)
			}
			got, _ := e.ErrCode.(int)
			if e.Status != tt.status || e.Code != tt.code || got != tt.errcode || !strings.Contains(e.Message, tt.says) {
				t.Fatalf("got %d %s %v %q", e.Status, e.Code, e.ErrCode, e.Message)
			}
			if tt.errcode == 0 && e.ErrCode != nil {
				t.Fatalf("errcode %v that WeChat did not send", e.ErrCode)
			}
			if (tt.code == "wechat_config") != (len(counted) == 1) || (tt.code == "wechat_config") != (logs.FilterLevelExact(zapcore.ErrorLevel).Len() == 1) {
				t.Fatalf("counted %v, %d ERROR lines", counted, logs.FilterLevelExact(zapcore.ErrorLevel).Len())
			}
			noSecretsIn(t, e.Error(), logs)
		})
	}
}

// noSecretsIn fails when text, an answer, or any logged line holds a
// secret of the tests, or text holds WeChat's errmsg (it can name the
// server's address).
func noSecretsIn(t *testing.T, text string, logs *observer.ObservedLogs) {
	t.Helper()
	all := text
	for _, l := range logs.All() {
		all += "\n" + l.Message + fmt.Sprint(l.ContextMap())
	}
	for _, s := range []string{secret, accessToken, refreshToken, theCode} {
		if strings.Contains(all, s) {
			t.Fatalf("%q leaked: %s", s, all)
		}
	}
	if strings.Contains(text, "203.0.113.9") {
		t.Fatalf("WeChat's errmsg reached the client: %s", text)
	}
}

func TestConfigErrorLoggedOnceAMinute(t *testing.T) {
	f := newFakeWeChat(t)
	f.answer(`{"errcode":40125,"errmsg":"invalid appsecret"}`, "")
	fc := clock.NewFake()
	core, logs := observer.New(zapcore.InfoLevel)
	var counted int
	p := f.provider(t, ModeOA, "", func(c *Config) { c.Now, c.ConfigError = fc.Now, func(int) { counted++ } })
	exchange := func() { p.Exchange(context.Background(), zap.New(core), login.Code{Code: theCode}) }
	errors := func() int { return logs.FilterLevelExact(zapcore.ErrorLevel).Len() }
	exchange()
	exchange()
	fc.Advance(59 * time.Second)
	exchange()
	if errors() != 1 || counted != 3 {
		t.Fatalf("%d ERROR lines, %d counted", errors(), counted)
	}
	fc.Advance(time.Second)
	exchange()
	if errors() != 2 {
		t.Fatalf("%d ERROR lines a minute later", errors())
	}
	line := logs.FilterLevelExact(zapcore.ErrorLevel).All()[0].ContextMap()
	if line["web_login"] != "site" || !strings.Contains(line["fix"].(string), "mp.weixin.qq.com") {
		t.Fatalf("ERROR line %v", line)
	}
}

func TestAppPrepare(t *testing.T) {
	a := App{Name: "h5", AppID: "wxoa", AppSecret: "s", Mode: ModeOA}
	if err := a.Prepare(); err != nil {
		t.Fatal(err)
	}
	if a.Scope != "snsapi_base" || a.Prefix != "/wx/web/h5" || a.Cookie != "wxauth_h5" || a.OpenBase != DefaultOpenBase || a.PublicURL != "" {
		t.Fatalf("defaults %+v", a)
	}
	q := App{Name: "site", AppID: "wxqr", AppSecret: "s", Mode: ModeQR, PublicURL: "HTTPS://Example.COM:443", OpenBase: "http://127.0.0.1:9/"}
	if err := q.Prepare(); err != nil {
		t.Fatal(err)
	}
	if q.Scope != "snsapi_login" || q.PublicURL != "https://example.com" || q.OpenBase != "http://127.0.0.1:9" {
		t.Fatalf("qr %+v", q)
	}
	bad := []struct {
		mod  func(*App)
		says string
	}{
		{func(a *App) { a.Name = "" }, "name"},
		{func(a *App) { a.Name = "a/b" }, "name"},
		{func(a *App) { a.AppID = "" }, "app_id is required"},
		{func(a *App) { a.AppID = "wx a" }, "app_id"},
		{func(a *App) { a.AppSecret = "" }, "app_secret is required"},
		{func(a *App) { a.Mode = "" }, "mode is required"},
		{func(a *App) { a.Mode = "mp" }, "mode must be oa or qr"},
		{func(a *App) { a.Scope = "snsapi_login" }, "mode oa takes scope"},
		{func(a *App) { a.Mode, a.Scope = ModeQR, "snsapi_base" }, "mode qr is always scope snsapi_login"},
		{func(a *App) { a.Prefix = "wx/web" }, "path"},
		{func(a *App) { a.Prefix = "/wx/web/" }, "path"},
		{func(a *App) { a.Prefix = "/wx?x" }, "path"},
		{func(a *App) { a.Cookie = "a;b" }, "cookie"},
		{func(a *App) { a.OpenBase = "ftp://x" }, "open_base"},
		{func(a *App) { a.PublicURL = "https://example.com/shop" }, "public_url"},
		{func(a *App) { a.PublicURL = "example.com" }, "public_url"},
	}
	for _, tt := range bad {
		a := App{Name: "h5", AppID: "wxoa", AppSecret: "SECRET-x", Mode: ModeOA}
		tt.mod(&a)
		err := a.Prepare()
		if err == nil || !strings.Contains(err.Error(), tt.says) || strings.Contains(err.Error(), "SECRET-x") {
			t.Errorf("%+v: %v, want it to say %q", a, err, tt.says)
		}
	}
}

// providerSessions is a handler whose login exchanges the code with a real
// Provider and logs at every step, as the login flow would.
type providerSessions struct {
	*fakeSessions
	p *Provider
}

func (s providerSessions) Login(r *http.Request, log *zap.Logger, code, nonce string) (Issued, error) {
	id, err := s.p.Exchange(r.Context(), log, login.Code{Code: code})
	if err != nil {
		return Issued{}, err
	}
	log.Info("logged in", zap.String("openid", id.OpenID))
	return s.fakeSessions.Login(r, log, code, nonce)
}

// The whole dance, failures included, writes no secret, WeChat token,
// code, state or session token to the log at any level.
func TestNoSecretsInLogs(t *testing.T) {
	f := newFakeWeChat(t)
	core, logs := observer.New(zapcore.DebugLevel)
	var sessions providerSessions
	s := newSite(t, func(a *App, c *RoutesConfig) {
		a.Mode, a.AppSecret = ModeQR, secret
		sessions = providerSessions{fakeSessions: newFakeSessions(clock.NewFake().Now), p: f.provider(t, ModeQR, "", nil)}
		c.Sessions, c.Logger = sessions, zap.New(core)
	})
	var leaks []string
	b := newBrowser()
	state := s.startLogin(b, "/")
	leaks = append(leaks, state, b.cookies["wxauth_site_state"].Value)
	s.callback(b, theCode, state)
	tok := b.cookies["wxauth_site"].Value
	leaks = append(leaks, tok)
	s.callback(b, theCode, state)            // the second load
	s.callback(newBrowser(), theCode, state) // someone else's
	for _, reply := range []string{`{"errcode":40125,"errmsg":"invalid appsecret"}`, `{"errcode":40029,"errmsg":"invalid code"}`, `<html>`} {
		f.answer(reply, "")
		b2 := newBrowser()
		st := s.startLogin(b2, "")
		leaks = append(leaks, st)
		s.callback(b2, theCode, st)
	}
	b.header.Set("Origin", "https://evil.com")
	s.do(b, http.MethodPost, "http://example.com/wx/web/site/logout", "")
	b.header.Set("Origin", "http://example.com")
	s.do(b, http.MethodPost, "http://example.com/wx/web/site/logout", "")
	if logs.Len() == 0 {
		t.Fatal("nothing logged: the test proves nothing")
	}
	noSecretsIn(t, "", logs)
	for _, l := range logs.All() {
		line := l.Message + fmt.Sprint(l.ContextMap())
		for _, s := range leaks {
			if strings.Contains(line, s) {
				t.Fatalf("%q leaked: %s", s, line)
			}
		}
	}
}
