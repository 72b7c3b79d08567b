package wxmock

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

const testSecret = "s3cret-of-the-test-app"

// newHandler provisions a handler the way Caddy does and releases it when
// the test ends. Each test uses its own app id, hence its own state.
func newHandler(t *testing.T, appID, secret string) *Handler {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	h := &Handler{AppID: appID, AppSecret: secret}
	if err := h.Provision(ctx); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	if err := h.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	t.Cleanup(func() {
		if err := h.Cleanup(); err != nil {
			t.Errorf("Cleanup: %v", err)
		}
	})
	return h
}

// errNext marks requests that reached the next handler.
var errNext = errors.New("next handler reached")

var next = caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return errNext })

// serve sends one request through h.
func serve(t *testing.T, h *Handler, method, target, body string) *httptest.ResponseRecorder {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, rd)
	rec := httptest.NewRecorder()
	if err := h.ServeHTTP(rec, req, next); err != nil {
		t.Fatalf("%s %s: ServeHTTP: %v", method, target, err)
	}
	return rec
}

// object decodes a JSON object answer with status 200.
func object(t *testing.T, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d, want 200; body %s", rec.Code, rec.Body)
	}
	var m map[string]any
	dec := json.NewDecoder(rec.Body)
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("answer is not a JSON object: %v", err)
	}
	return m
}

// errcode returns the answer's errcode, 0 when absent.
func errcode(t *testing.T, m map[string]any) int {
	t.Helper()
	v, ok := m["errcode"]
	if !ok {
		return 0
	}
	n, err := v.(json.Number).Int64()
	if err != nil {
		t.Fatalf("errcode %v is not an integer", v)
	}
	return int(n)
}

func TestUnknownPathGoesToNext(t *testing.T) {
	h := newHandler(t, "wxnext", "")
	for _, p := range []string{"/", "/wx/login", "/wxmock", "/wxmock/other", "/sns/jscode2session/x"} {
		req := httptest.NewRequest(http.MethodGet, p, nil)
		rec := httptest.NewRecorder()
		if err := h.ServeHTTP(rec, req, next); !errors.Is(err, errNext) {
			t.Errorf("%s: got %v, want the next handler", p, err)
		}
	}
}

func TestStateSharedAndKeptAcrossReloads(t *testing.T) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	provision := func() *Handler {
		h := &Handler{AppID: "wxshared"}
		if err := h.Provision(ctx); err != nil {
			t.Fatal(err)
		}
		return h
	}
	old := provision()
	code := object(t, serve(t, old, "GET", "/wxmock/login?user=amy", ""))["code"].(string)

	// A reload provisions the new handler before cleaning up the old one.
	h := provision()
	if err := old.Cleanup(); err != nil {
		t.Fatal(err)
	}
	m := object(t, serve(t, h, "GET", "/sns/jscode2session?appid=wxshared&secret=x&grant_type=authorization_code&js_code="+code, ""))
	if errcode(t, m) != 0 || m["openid"] != openID("wxshared", "amy") {
		t.Fatalf("code issued before the reload was not accepted after it: %v", m)
	}
	other := &Handler{AppID: "wxother"}
	if err := other.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	if other.state == h.state {
		t.Error("handlers of different apps share state")
	}
	_ = other.Cleanup()

	// Once the last handler is gone, the state is dropped.
	if err := h.Cleanup(); err != nil {
		t.Fatal(err)
	}
	fresh := provision()
	defer fresh.Cleanup()
	if fresh.state == h.state {
		t.Error("state survived the last handler")
	}
	if rec := serve(t, fresh, "GET", "/wxmock/userinfo?user=amy", ""); rec.Code != http.StatusNotFound {
		t.Errorf("fresh state knows the old user: %d", rec.Code)
	}
}

func TestValidate(t *testing.T) {
	for _, ttl := range []time.Duration{-time.Second, time.Millisecond} {
		h := Handler{AccessTokenTTL: caddy.Duration(ttl)}
		if h.Validate() == nil {
			t.Errorf("access_token_ttl %v accepted", ttl)
		}
	}
	h := Handler{AccessTokenTTL: caddy.Duration(time.Minute)}
	if err := h.Validate(); err != nil {
		t.Errorf("access_token_ttl 1m: %v", err)
	}
	for _, name := range []string{"devtools", "Alice_1", "a.b-c", strings.Repeat("x", 64)} {
		h := Handler{AccessTokenTTL: caddy.Duration(time.Minute), AnyCode: name}
		if err := h.Validate(); err != nil {
			t.Errorf("any_code %q: %v", name, err)
		}
	}
	for _, name := range []string{"a b", "{env.USER}", "名字", "x/y", strings.Repeat("x", 65)} {
		h := Handler{AccessTokenTTL: caddy.Duration(time.Minute), AnyCode: name}
		if h.Validate() == nil {
			t.Errorf("any_code %q accepted", name)
		}
	}
}

func TestUnmarshalCaddyfile(t *testing.T) {
	tests := []struct {
		input   string
		want    Handler
		wantErr string
	}{
		{input: `wxmock`},
		{input: `wxmock {
			app_id wx123
			app_secret {env.WX_SECRET}
			access_token_ttl 30m
		}`, want: Handler{AppID: "wx123", AppSecret: "{env.WX_SECRET}", AccessTokenTTL: caddy.Duration(30 * time.Minute)}},
		{input: `wxmock {
			access_token_ttl 1d
		}`, want: Handler{AccessTokenTTL: caddy.Duration(24 * time.Hour)}},
		{input: `wxmock {
			any_code devtools
		}`, want: Handler{AnyCode: "devtools"}},
		{input: `wxmock {
			any_code
		}`, wantErr: "wrong argument count"},
		{input: `wxmock {
			any_code alice bob
		}`, wantErr: "wrong argument count"},
		{input: `wxmock {
			any_code "a b"
		}`, wantErr: "bad any_code user"},
		{input: `wxmock {
			users alice
		}`, wantErr: `unrecognized subdirective "users"`},
		{input: `wxmock extra`, wantErr: "wrong argument count"},
		{input: `wxmock {
			app_id
		}`, wantErr: "wrong argument count"},
		{input: `wxmock {
			app_id a b
		}`, wantErr: "wrong argument count"},
		{input: `wxmock {
			access_token_ttl soon
		}`, wantErr: "bad access_token_ttl"},
	}
	for _, tt := range tests {
		var h Handler
		err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.input))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%q: error %v, want one containing %q", tt.input, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tt.input, err)
			continue
		}
		if !reflect.DeepEqual(h, tt.want) {
			t.Errorf("%q: got %+v, want %+v", tt.input, h, tt.want)
		}
	}
}

// The directive must work without a global order option, before respond.
func TestCaddyfileDirectiveOrder(t *testing.T) {
	input := `:8080 {
		respond "fallback"
		wxmock {
			app_id wxorder
		}
	}`
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(input), nil)
	if err != nil {
		t.Fatalf("adapt: %v", err)
	}
	s := string(out)
	mock, respond := strings.Index(s, `"handler":"wxmock"`), strings.Index(s, `"handler":"static_response"`)
	if mock < 0 || respond < 0 || mock > respond {
		t.Fatalf("wxmock not ordered before respond: %s", s)
	}
	if !strings.Contains(s, `"app_id":"wxorder"`) {
		t.Errorf("app_id missing from the JSON: %s", s)
	}
}
