package platform

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/wxauth/caddy-wxauth/internal/apierr"
	"github.com/wxauth/caddy-wxauth/internal/clock"
	"github.com/wxauth/caddy-wxauth/internal/login"
)

const testSecret = "sEcReT-of-the-app"

func newClient(t *testing.T, base string) *Client {
	t.Helper()
	c, err := NewClient("qq", "QQ", "https://api.q.qq.com", login.PlatformConfig{
		AppID: "1112", AppSecret: testSecret, APIBase: base, Timeout: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNewClientChecksTheConfig(t *testing.T) {
	cases := []struct {
		cfg  login.PlatformConfig
		want string // in the error; "" for none
	}{
		{login.PlatformConfig{AppID: "a", AppSecret: "s"}, ""},
		{login.PlatformConfig{AppID: "a", AppSecret: "s", APIBase: "http://127.0.0.1:8080/qq"}, ""},
		{login.PlatformConfig{AppSecret: "s"}, "qq: app_id is required"},
		{login.PlatformConfig{AppID: " ", AppSecret: "s"}, "qq: app_id is required"},
		{login.PlatformConfig{AppID: "a"}, "qq: app_secret is required"},
		{login.PlatformConfig{AppID: "a", AppSecret: "s", APIBase: "ftp://host"}, "api_base"},
		{login.PlatformConfig{AppID: "a", AppSecret: "s", APIBase: "api.q.qq.com"}, "https://"},
		{login.PlatformConfig{AppID: "a", AppSecret: "s", APIBase: "https://"}, "no host"},
		{login.PlatformConfig{AppID: "a", AppSecret: "s", APIBase: "https://h/?x=1"}, "no user, query"},
		{login.PlatformConfig{AppID: "a", AppSecret: "s", APIBase: "https://u:p@h"}, "no user, query"},
		{login.PlatformConfig{AppID: "a", AppSecret: "s", APIBase: "%zz"}, "not a URL"},
		{login.PlatformConfig{AppID: "a", AppSecret: "s", Timeout: -time.Second}, "timeout"},
	}
	for _, c := range cases {
		cl, err := NewClient("qq", "QQ", "https://api.q.qq.com", c.cfg)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%+v: %v", c.cfg, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%+v: error %v, want one saying %q", c.cfg, err, c.want)
		case c.want != "" && strings.Contains(err.Error(), "s\""):
			t.Errorf("%+v: the error quotes the secret: %v", c.cfg, err)
		case err == nil && c.cfg.APIBase == "" && (cl.base != "https://api.q.qq.com" || cl.timeout != DefaultTimeout):
			t.Errorf("defaults: base %q, timeout %v", cl.base, cl.timeout)
		}
	}
}

// upstream asserts that err is upstream_error saying say.
func upstream(t *testing.T, err error, say string) {
	t.Helper()
	var e *apierr.Error
	if !errors.As(err, &e) || e.Status != 502 || e.Code != "upstream_error" || !strings.Contains(e.Message, say) || e.ErrCode != nil {
		t.Fatalf("got %v, want upstream_error saying %q without errcode", err, say)
	}
	if strings.Contains(e.Message, testSecret) || strings.Contains(e.Message, "127.0.0.1") {
		t.Fatalf("the message names the secret or the address: %q", e.Message)
	}
}

func TestAnswersTheContractCannotUse(t *testing.T) {
	cases := []struct {
		name   string
		status int
		ctype  string
		body   string
		say    string
	}{
		{"gateway page", 502, "text/html", "<html>502 Bad Gateway</html>", "HTTP 502"},
		{"html with 200", 200, "text/html", "<html>hello</html>", "not a JSON object"},
		{"empty", 200, "application/json", "", "not a JSON object"},
		{"array", 200, "application/json", `[1]`, "not a JSON object"},
		{"bad JSON", 200, "application/json", `{"openid":`, "unexpected shape"},
		{"wrong types", 200, "application/json", `{"openid":1}`, "unexpected shape"},
		{"redirect", 302, "application/json", `{"openid":"o"}`, "HTTP 302"},
		{"too large", 200, "application/json", `{"x":"` + strings.Repeat("a", maxReply) + `"}`, "more than 1 MiB"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", c.ctype)
				if c.status == 302 {
					w.Header().Set("Location", "/elsewhere")
				}
				w.WriteHeader(c.status)
				_, _ = w.Write([]byte(c.body))
			}))
			defer srv.Close()
			var out struct {
				OpenID string `json:"openid"`
			}
			upstream(t, newClient(t, srv.URL).PostForm(context.Background(), nil, "/x", url.Values{"sk": {testSecret}}, &out), c.say)
		})
	}
}

func TestA4xxWithJSONIsDecoded(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(400)
		_, _ = w.Write([]byte(`{"error":"invalid_grant"}`))
	}))
	defer srv.Close()
	var out struct {
		Error string `json:"error"`
	}
	if err := newClient(t, srv.URL).PostForm(context.Background(), nil, "/x", nil, &out); err != nil || out.Error != "invalid_grant" {
		t.Fatalf("%v %+v", err, out)
	}
}

func TestRequestsAsThePlatformsWantThem(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		got = append(got, r.Method+" "+r.URL.Path+" "+r.Header.Get("Content-Type")+" "+r.Form.Encode())
		_, _ = w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	c := newClient(t, srv.URL+"/qq/")
	var out struct{}
	ctx := context.Background()
	if err := c.Get(ctx, nil, "/sns/a", url.Values{"appid": {"1"}}, &out); err != nil {
		t.Fatal(err)
	}
	if err := c.PostForm(ctx, nil, "/b", url.Values{"code": {"c"}}, &out); err != nil {
		t.Fatal(err)
	}
	if err := c.PostJSON(ctx, nil, "/c", map[string]string{"code": "c"}, &out); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"GET /qq/sns/a  appid=1",
		"POST /qq/b application/x-www-form-urlencoded code=c",
		"POST /qq/c application/json ",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("requests:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestTimeoutsAndUnreachable(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	c := newClient(t, srv.URL)
	c.timeout = 50 * time.Millisecond
	core, logs := observer.New(zap.WarnLevel)
	var out struct{}
	start := clock.Real()
	upstream(t, c.Get(context.Background(), zap.New(core), "/sns/jscode2session", url.Values{"secret": {testSecret}}, &out), "did not answer in time")
	if d := clock.Real().Sub(start); d > 5*time.Second {
		t.Fatalf("the timeout did not bound the call: %v", d)
	}
	for _, e := range logs.All() {
		if s := e.ContextMap()["error"].(string); strings.Contains(s, testSecret) || strings.Contains(s, "jscode2session") {
			t.Fatalf("the log names the URL or the secret: %q", s)
		}
	}

	closed := httptest.NewServer(http.NotFoundHandler())
	base := closed.URL
	closed.Close()
	upstream(t, newClient(t, base).Get(context.Background(), nil, "/x", nil, &out), "could not be reached")
}

func TestPrintingAClientHidesTheSecret(t *testing.T) {
	c := newClient(t, "")
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%v", []*Client{c})} {
		if strings.Contains(s, testSecret) {
			t.Fatalf("printed the secret: %s", s)
		}
	}
}

func TestRedirectsAreNotFollowed(t *testing.T) {
	followed := false
	mux := http.NewServeMux()
	mux.HandleFunc("/x", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/y", http.StatusFound) })
	mux.HandleFunc("/y", func(w http.ResponseWriter, r *http.Request) { followed = true })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	var out struct{}
	cfg := login.PlatformConfig{AppID: "a", AppSecret: "s", APIBase: srv.URL, Client: &http.Client{}}
	c, err := NewClient("qq", "QQ", "", cfg)
	if err != nil {
		t.Fatal(err)
	}
	upstream(t, c.Get(context.Background(), nil, "/x", url.Values{"secret": {"s"}}, &out), "HTTP 302")
	if followed || cfg.Client.CheckRedirect != nil {
		t.Fatal("the redirect was followed, or the caller's client was changed")
	}
}
