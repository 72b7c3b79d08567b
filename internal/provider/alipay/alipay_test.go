package alipay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
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

const testApp = "2021000000000001"

// platformKey plays Alipay's private key; validConfig's alipay_public_key
// is its public half.
func platformKey(t testing.TB) string {
	return readKey(t, "app_2014060600164699_rsa2_private_key_no_wrapper.pem")
}

// signed is a gateway answer whose member is signed with key, as Alipay
// writes it: the member, then "sign".
func signed(t testing.TB, keyText, node, member string) string {
	t.Helper()
	key, err := parsePrivateKey(keyText)
	if err != nil {
		t.Fatal(err)
	}
	sign, err := signRSA2(key, member)
	if err != nil {
		t.Fatal(err)
	}
	return `{"` + node + `":` + member + `,"sign":"` + sign + `"}`
}

// gateway is a test Alipay gateway: it checks each request as Alipay does
// and answers what reply returns.
type gateway struct {
	t     *testing.T
	srv   *httptest.Server
	mu    sync.Mutex
	calls int
	clock *clock.Fake // the provider's clock
	reply func(w http.ResponseWriter, r *http.Request)
}

// newGateway starts a gateway that answers reply, and a provider of it
// whose clock stands still at now.
func newGateway(t *testing.T, reply func(w http.ResponseWriter, r *http.Request), edit ...func(*login.PlatformConfig)) (*Provider, *gateway) {
	t.Helper()
	g := &gateway{t: t, reply: reply, clock: clock.NewFake()} // 2026-12-01 08:00:00 UTC
	g.srv = httptest.NewServer(http.HandlerFunc(g.serve))
	t.Cleanup(g.srv.Close)
	cfg := validConfig(t)
	cfg.APIBase = g.srv.URL + "/gateway.do"
	cfg.Timeout = 2 * time.Second
	for _, e := range edit {
		e(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.now = g.clock.Now
	return p, g
}

// serve checks the request the way Alipay's gateway does.
func (g *gateway) serve(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	g.calls++
	g.mu.Unlock()
	t := g.t
	if r.Method != http.MethodPost || r.URL.Path != "/gateway.do" || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		t.Errorf("request %s %s %s", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
	}
	body, _ := io.ReadAll(r.Body)
	form, err := url.ParseQuery(string(body))
	if err != nil {
		t.Errorf("body: %v", err)
	}
	query := r.URL.Query()
	want := map[string]string{"app_id": testApp, "method": "alipay.system.oauth.token", "format": "JSON", "charset": "utf-8",
		"sign_type": "RSA2", "timestamp": g.clock.Now().UTC().Add(8 * time.Hour).Format("2006-01-02 15:04:05"), "version": "1.0"}
	for name, value := range want {
		if query.Get(name) != value {
			t.Errorf("query %s = %q, want %q", name, query.Get(name), value)
		}
	}
	if form.Get("grant_type") != "authorization_code" || form.Get("code") == "" || query.Has("code") || len(form) != 2 {
		t.Errorf("body %v: grant_type and code go there, and only there", form)
	}
	params := map[string]string{}
	for _, vs := range []url.Values{query, form} {
		for name := range vs {
			params[name] = vs.Get(name)
		}
	}
	if !verifyRSA2(publicKey(t, "app-public-key.pem"), []byte(signContent(params)), query.Get("sign")) {
		t.Errorf("the request's sign does not verify with the app public key")
	}
	g.reply(w, r)
}

// replyWith replies body to every call.
func replyWith(body string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html;charset=utf-8")
		io.WriteString(w, body)
	}
}

func apiError(t *testing.T, err error) *apierr.Error {
	t.Helper()
	var e *apierr.Error
	if !errors.As(err, &e) {
		t.Fatalf("%v (%T) is not an *apierr.Error", err, err)
	}
	return e
}

func TestExchange(t *testing.T) {
	const openID = "074a1CcTG1LelxKe4xQC0zgNdId0nxi95b5lsNpazWYoCo5"
	cases := []struct {
		name   string
		member string
		want   login.Identity
	}{
		{"open_id", `{"access_token":"AT","auth_start":"2026-12-01 16:00:00","expires_in":1296000,"open_id":"` + openID + `","re_expires_in":2592000,"refresh_token":"RT"}`,
			login.Identity{OpenID: openID}},
		{"user_id", `{"access_token":"AT","user_id":"2088102150477652","expires_in":"3600"}`, login.Identity{OpenID: "2088102150477652"}},
		{"open_id wins", `{"user_id":"2088102150477652","open_id":"` + openID + `","union_id":"092aSPrsmhTbexLh9zgoYb2uvZNC4D8izCpGKTem8QiIOQb"}`,
			login.Identity{OpenID: openID, UnionID: "092aSPrsmhTbexLh9zgoYb2uvZNC4D8izCpGKTem8QiIOQb"}},
		{"code 10000", `{"code":"10000","msg":"Success","open_id":"` + openID + `"}`, login.Identity{OpenID: openID}},
		{"escaped slash", `{"open_id":"` + openID + `","auth_start":"2026\/12\/01"}`, login.Identity{OpenID: openID}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, _ := newGateway(t, replyWith(signed(t, platformKey(t), oauthNode, c.member)))
			id, err := p.Exchange(context.Background(), zap.NewNop(), login.Code{Code: "authcode1"})
			c.want.Platform, c.want.Surface, c.want.AppID = "alipay", "mp", testApp
			if err != nil || !reflect.DeepEqual(*id, c.want) {
				t.Fatalf("got %+v, %v; want %+v", id, err, c.want)
			}
		})
	}
}

// Every way the login fails maps onto the contract, with Alipay's
// sub_code in errcode only when Alipay gave one in an answer to trust.
func TestExchangeErrors(t *testing.T) {
	otherKey := readKey(t, "app-private-key.pem")
	good := `{"open_id":"074a1CcTG1LelxKe4xQC0zgNdId0nxi95b5lsNpazWYoCo5"}`
	refusal := func(code, sub string) string {
		return `{"code":"` + code + `","msg":"Invalid Arguments","sub_code":"` + sub + `","sub_msg":"secret-ish detail code=abc"}`
	}
	tamper := func(body string) string {
		return strings.Replace(body, `"sign":"`, `"sign":"A`, 1)[:len(body)-3] + `=="}`
	}
	cases := []struct {
		name    string
		reply   func(http.ResponseWriter, *http.Request)
		status  int
		code    string
		errcode string
		config  bool // told to ConfigError
	}{
		{"bad code", replyWith(signed(t, platformKey(t), errorNode, refusal("40002", "isv.code-invalid"))), 401, "invalid_code", "isv.code-invalid", false},
		{"bad code, unsigned", replyWith(`{"error_response":` + refusal("40002", "isv.code-invalid") + `}`), 401, "invalid_code", "isv.code-invalid", false},
		{"bad code in the method's member", replyWith(signed(t, platformKey(t), oauthNode, refusal("40002", "isv.code-invalid"))), 401, "invalid_code", "isv.code-invalid", false},
		{"request sign refused", replyWith(signed(t, platformKey(t), oauthNode, refusal("40002", "isv.invalid-signature"))), 502, "platform_config", "isv.invalid-signature", true},
		{"app id refused, unsigned", replyWith(`{"error_response":` + refusal("40002", "isv.invalid-app-id") + `}`), 502, "platform_config", "isv.invalid-app-id", true},
		{"no permission", replyWith(signed(t, platformKey(t), errorNode, refusal("40006", "isv.insufficient-isv-permissions"))), 502, "platform_config", "isv.insufficient-isv-permissions", true},
		{"no key on Alipay", replyWith(signed(t, platformKey(t), errorNode, refusal("40001", "isv.missing-signature-config"))), 502, "platform_config", "isv.missing-signature-config", true},
		{"clock off", replyWith(signed(t, platformKey(t), errorNode, refusal("40002", "isv.invalid-timestamp"))), 502, "platform_config", "isv.invalid-timestamp", true},
		{"RSA1 app", replyWith(signed(t, platformKey(t), errorNode, refusal("40002", "isv.invalid-signature-type"))), 502, "platform_config", "isv.invalid-signature-type", true},
		{"busy", replyWith(signed(t, platformKey(t), errorNode, refusal("20000", "isp.unknow-error"))), 502, "upstream_error", "isp.unknow-error", false},
		{"business failure without sub_code", replyWith(signed(t, platformKey(t), oauthNode, `{"code":"40004","msg":"Business Failed"}`)), 502, "upstream_error", "40004", false},
		{"refusal without any code", replyWith(`{"error_response":{"msg":"?"}}`), 502, "upstream_error", "", false},
		{"tampered sign", replyWith(tamper(signed(t, platformKey(t), oauthNode, good))), 502, "upstream_error", "", false},
		{"tampered answer", replyWith(strings.Replace(signed(t, platformKey(t), oauthNode, good), "074a", "174a", 1)), 502, "upstream_error", "", false},
		{"another key's sign", replyWith(signed(t, otherKey, oauthNode, good)), 502, "upstream_error", "", false},
		{"refusal with a bad sign", replyWith(signed(t, otherKey, errorNode, refusal("40002", "isv.code-invalid"))), 502, "upstream_error", "", false},
		{"unsigned login", replyWith(`{"alipay_system_oauth_token_response":` + good + `}`), 502, "upstream_error", "", false},
		{"sign not base64", replyWith(`{"alipay_system_oauth_token_response":` + good + `,"sign":"%%%"}`), 502, "upstream_error", "", false},
		{"sign not a string", replyWith(`{"alipay_system_oauth_token_response":` + good + `,"sign":1}`), 502, "upstream_error", "", false},
		{"no user", replyWith(signed(t, platformKey(t), oauthNode, `{"access_token":"AT"}`)), 502, "upstream_error", "", false},
		{"user id unsafe in a header", replyWith(signed(t, platformKey(t), oauthNode, `{"open_id":"o\r\nX-Wx-Openid: admin"}`)), 502, "upstream_error", "", false},
		{"field of the wrong type", replyWith(signed(t, platformKey(t), oauthNode, `{"open_id":7}`)), 502, "upstream_error", "", false},
		{"not JSON", replyWith(`<html>502 Bad Gateway</html>`), 502, "upstream_error", "", false},
		{"JSON of another shape", replyWith(`{"errcode":40029}`), 502, "upstream_error", "", false},
		{"member repeated", replyWith(`{"alipay_system_oauth_token_response":` + good + `,"alipay_system_oauth_token_response":` + good + `}`), 502, "upstream_error", "", false},
		{"both members", replyWith(`{"alipay_system_oauth_token_response":` + good + `,"error_response":` + refusal("40002", "isv.code-invalid") + `}`), 502, "upstream_error", "", false},
		{"member not an object", replyWith(`{"alipay_system_oauth_token_response":"x","sign":"AAAA"}`), 502, "upstream_error", "", false},
		{"HTTP 500", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) }, 502, "upstream_error", "", false},
		{"redirect", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "https://example.com/", http.StatusFound)
		}, 502, "upstream_error", "", false},
		{"too long", replyWith(`{"alipay_system_oauth_token_response":{"x":"` + strings.Repeat("a", maxAnswer) + `"}}`), 502, "upstream_error", "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var told []string
			p, _ := newGateway(t, c.reply, func(cfg *login.PlatformConfig) {
				cfg.ConfigError = func(code string) { told = append(told, code) }
			})
			core, logs := observer.New(zapcore.DebugLevel)
			_, err := p.Exchange(context.Background(), zap.New(core), login.Code{Code: "authcode1"})
			e := apiError(t, err)
			if e.Status != c.status || e.Code != c.code || e.ErrCodeString() != c.errcode || e.Message == "" {
				t.Fatalf("got %d %s %q (%s), want %d %s %q", e.Status, e.Code, e.ErrCodeString(), e.Message, c.status, c.code, c.errcode)
			}
			if c.code == "platform_config" && e.Platform != "alipay" {
				t.Errorf("platform %q", e.Platform)
			}
			if c.config != (len(told) == 1) || c.config && told[0] != c.errcode {
				t.Errorf("ConfigError told %v", told)
			}
			if c.config && logs.FilterLevelExact(zapcore.ErrorLevel).Len() != 1 {
				t.Errorf("no ERROR line with the fix: %v", logs.All())
			}
			for _, entry := range logs.All() {
				line := entry.Message + fmt.Sprint(entry.ContextMap())
				for _, secret := range []string{"authcode1", "secret-ish"} {
					if strings.Contains(line, secret) {
						t.Errorf("log line quotes %q: %s", secret, line)
					}
				}
			}
			if strings.Contains(e.Message, "secret-ish") {
				t.Errorf("Alipay's sub_msg reached the client: %s", e.Message)
			}
		})
	}
}

// A gateway that does not answer in time is a 502 within the timeout.
func TestExchangeTimeout(t *testing.T) {
	release := make(chan struct{})
	p, _ := newGateway(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}, func(cfg *login.PlatformConfig) { cfg.Timeout = 100 * time.Millisecond })
	defer close(release)
	start := time.Now()
	_, err := p.Exchange(context.Background(), zap.NewNop(), login.Code{Code: "authcode1"})
	e := apiError(t, err)
	if e.Status != 502 || e.Code != "upstream_error" || !strings.Contains(e.Message, "in time") {
		t.Fatalf("got %+v", e)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %v with a 100ms timeout", d)
	}
}

// Bad input never reaches Alipay.
func TestExchangeBadInput(t *testing.T) {
	p, g := newGateway(t, replyWith("{}"))
	for _, c := range []struct {
		code login.Code
		want string
	}{
		{login.Code{}, "invalid_request"},
		{login.Code{Code: strings.Repeat("a", maxCode+1)}, "invalid_request"},
		{login.Code{AnonymousCode: "anon"}, "unsupported"},
		{login.Code{Code: "authcode1", AnonymousCode: "anon"}, "unsupported"},
	} {
		_, err := p.Exchange(context.Background(), nil, c.code)
		if e := apiError(t, err); e.Status != 400 || e.Code != c.want {
			t.Errorf("%+v: got %+v", c.code, e)
		}
	}
	if g.calls != 0 {
		t.Fatalf("%d calls reached Alipay", g.calls)
	}
}

// A config sub_code is counted each time and logged at ERROR at most once
// a minute per sub_code, by the provider's clock.
func TestConfigErrorsLoggedOnceAMinute(t *testing.T) {
	var told []string
	p, g := newGateway(t, replyWith(`{"error_response":{"code":"40002","sub_code":"isv.invalid-app-id"}}`),
		func(cfg *login.PlatformConfig) { cfg.ConfigError = func(code string) { told = append(told, code) } })
	core, logs := observer.New(zapcore.InfoLevel)
	login1 := func() {
		if _, err := p.Exchange(context.Background(), zap.New(core), login.Code{Code: "authcode1"}); apiError(t, err).Code != "platform_config" {
			t.Fatalf("got %v", err)
		}
	}
	errorLines := func() int { return logs.FilterLevelExact(zapcore.ErrorLevel).Len() }
	for range 3 {
		login1()
	}
	if errorLines() != 1 || len(told) != 3 {
		t.Fatalf("%d ERROR lines and %d told after 3 refusals, want 1 and 3", errorLines(), len(told))
	}
	line := logs.FilterLevelExact(zapcore.ErrorLevel).All()[0].ContextMap()
	if line["errcode"] != "isv.invalid-app-id" || !strings.Contains(line["fix"].(string), "set app_id") || line["platform"] != "alipay" {
		t.Fatalf("ERROR line: %v", line)
	}
	g.clock.Advance(time.Minute)
	login1()
	if errorLines() != 2 {
		t.Fatalf("%d ERROR lines a minute later, want 2", errorLines())
	}
}

// Each config sub_code has its own message naming the sub_code and what
// to change.
func TestConfigFixes(t *testing.T) {
	seen := map[string]bool{}
	for sub, fix := range configFixes {
		e := mapRefusal(&tokenAnswer{Code: "40002", SubCode: sub})
		if e.Code != "platform_config" || !strings.Contains(e.Message, sub) || e.Message != fix || seen[fix] {
			t.Errorf("%s: %+v", sub, e)
		}
		seen[fix] = true
		if !strings.Contains(fix, "set") && !strings.Contains(fix, "upload") && !strings.Contains(fix, "bind") {
			t.Errorf("%s: %q does not say what to do", sub, fix)
		}
	}
}

func TestBeijingTime(t *testing.T) {
	loc := beijing()
	when := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC).In(loc)
	if _, off := when.Zone(); off != 8*3600 || when.Format(timestampLayout) != "2026-07-01 08:00:00" {
		t.Fatalf("%v: offset %d", when, off)
	}
}
