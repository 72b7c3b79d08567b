package wxauth

import (
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/wxauth/caddy-wxauth/internal/guard"
	"github.com/wxauth/caddy-wxauth/session"
	"github.com/wxauth/caddy-wxauth/token"
)

// web_login blocks parse strictly: one name each, each field once with
// one value, no unknown field.
func TestCaddyfileWebLogin(t *testing.T) {
	tests := []struct {
		name, body, err string // err "" = accepted
	}{
		{"two blocks", "web_login h5 {\napp_id wxa\nmode oa\n}\nweb_login site {\napp_id wxb\nmode qr\n}", ""},
		{"every field", "web_login h5 {\napp_id wxa\napp_secret {env.S}\nmode oa\nscope snsapi_userinfo\npath /h5\ncookie h5c\nopen_base http://127.0.0.1:9\npublic_url https://example.com\n}", ""},
		{"name twice", "web_login h5 {\napp_id wxa\n}\nweb_login h5 {\napp_id wxb\n}", "web_login h5 is configured twice"},
		{"no name", "web_login {\napp_id wxa\n}", "web_login wants one name"},
		{"two names", "web_login a b {\napp_id wxa\n}", "web_login wants one name"},
		{"field twice", "web_login h5 {\nmode oa\nmode qr\n}", "mode given twice"},
		{"unknown field", "web_login h5 {\nredirect_uri /x\n}", `web_login h5: unrecognized subdirective "redirect_uri"`},
		{"no value", "web_login h5 {\nscope\n}", "scope wants exactly one value"},
		{"no secret, maybe an unset {$NAME}", "web_login h5 {\napp_secret\n}", "that variable is probably unset"},
		{"two values", "web_login h5 {\npath /a /b\n}", "path wants exactly one value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Handler
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("wxauth {\n" + tt.body + "\n}"))
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("error %v, want %q", err, tt.err)
			}
		})
	}
	var h Handler
	err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("wxauth {\nweb_login h5 {\napp_id wxa\napp_secret {env.S}\nmode oa\nscope snsapi_userinfo\npath /h5\ncookie h5c\nopen_base http://o\npublic_url https://e\n}\n}"))
	want := WebLogin{AppID: "wxa", AppSecret: "{env.S}", Mode: "oa", Scope: "snsapi_userinfo", Path: "/h5", Cookie: "h5c", OpenBase: "http://o", PublicURL: "https://e"}
	if err != nil || h.WebLogins["h5"] == nil || *h.WebLogins["h5"] != want {
		t.Fatalf("got %+v, %v", h.WebLogins["h5"], err)
	}
}

func TestConfigWebLogin(t *testing.T) {
	const unset = "WXAUTH_TEST_NEVER_SET"
	t.Setenv("WXAUTH_TEST_WEB_SECRET", "fedcba9876543210fedcba9876543210")
	base := func(mod func(h *Handler)) *Handler {
		h := &Handler{Config: Config{AppID: "wx0123456789abcdef", AppSecret: "0123456789abcdef0123456789abcdef", WebLogins: map[string]*WebLogin{
			"h5":   {AppID: "wx1111111111111111", AppSecret: "{env.WXAUTH_TEST_WEB_SECRET}", Mode: "oa", Scope: "snsapi_userinfo"},
			"site": {AppID: "wx2222222222222222", AppSecret: "22222222222222222222222222222222", Mode: "qr"},
		}}}
		mod(h)
		return h
	}
	for _, tc := range []struct {
		name string
		mod  func(h *Handler)
		want string // "" = valid
	}{
		{"valid", func(h *Handler) {}, ""},
		{"one app in two blocks", func(h *Handler) {
			h.WebLogins["h5base"] = &WebLogin{AppID: "wx1111111111111111", AppSecret: "{env.WXAUTH_TEST_WEB_SECRET}", Mode: "oa", Path: "/silent"}
		}, ""},
		{"secret from an unset variable", func(h *Handler) { h.WebLogins["h5"].AppSecret = "{env." + unset + "}" },
			"web_login h5 app_secret is empty after replacing placeholders"},
		{"no app_id", func(h *Handler) { h.WebLogins["h5"].AppID = "" }, "web_login h5: app_id is required"},
		{"no mode", func(h *Handler) { h.WebLogins["h5"].Mode = "" }, "web_login h5: mode is required"},
		{"qr scope", func(h *Handler) { h.WebLogins["site"].Scope = "snsapi_base" }, "mode qr is always scope snsapi_login"},
		{"bad name", func(h *Handler) { h.WebLogins["a b"] = h.WebLogins["h5"]; delete(h.WebLogins, "h5") }, "the name must be"},
		{"the mini-program's app id", func(h *Handler) { h.WebLogins["h5"].AppID = h.AppID }, "app_id is the mini-program's"},
		{"not an AppID on WeChat's API", func(h *Handler) { h.WebLogins["h5"].AppID = "gh_123" }, "is not a WeChat AppID"},
		{"not a secret on WeChat's API", func(h *Handler) { h.WebLogins["site"].AppSecret = "short" }, "app_secret is not 32 hex characters"},
		{"any shape on a stand-in", func(h *Handler) { h.APIBase = "http://127.0.0.1:9"; h.WebLogins["site"].AppSecret = "short" }, ""},
		{"oa and qr of one app", func(h *Handler) { h.WebLogins["site"].AppID = "wx1111111111111111" }, "an app is one or the other"},
		{"one cookie twice", func(h *Handler) { h.WebLogins["site"].Cookie = "wxauth_h5" }, `cookie "wxauth_h5" is also the cookie of web_login h5`},
		{"a token_from cookie", func(h *Handler) { h.TokenSources = []TokenSource{{From: "cookie", Name: "wxauth_h5"}} }, "also the cookie of token_from"},
		{"a route on an endpoint", func(h *Handler) { h.WebLogins["h5"].Path = "/wx"; h.LoginPath = "/wx/login" }, `endpoint path "/wx/login" is used twice`},
		{"two blocks on one path", func(h *Handler) { h.WebLogins["site"].Path = "/wx/web/h5" }, "is used twice"},
		{"public_url with a path", func(h *Handler) { h.WebLogins["h5"].PublicURL = "https://example.com/app" }, "public_url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkConfig(base(tc.mod))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "fedcba98") {
				t.Fatalf("the secret is in the error: %v", err)
			}
		})
	}

	// The web apps' tokens are the handler's; their cookies are token sources.
	h := base(func(*Handler) {})
	if err := checkConfig(h); err != nil {
		t.Fatal(err)
	}
	apps := h.apps()
	for _, id := range []string{"wx1111111111111111", "wx2222222222222222"} {
		if !slices.Contains(apps, token.App{Platform: "wechat", AppID: id}) {
			t.Errorf("apps %v lack %s", apps, id)
		}
	}
	if h.WebLogins["h5"].app.AppSecret != "fedcba9876543210fedcba9876543210" || h.WebLogins["h5"].AppSecret != "{env.WXAUTH_TEST_WEB_SECRET}" {
		t.Fatalf("placeholders: %+v", h.WebLogins["h5"])
	}
	want := []guard.TokenSource{{From: "header", Name: "Authorization", Scheme: "Bearer"}, {From: "cookie", Name: "wxauth_h5"}, {From: "cookie", Name: "wxauth_site"}}
	if got := h.tokenSources(); !slices.Equal(got, want) {
		t.Fatalf("token sources %v, want %v", got, want)
	}
}

// caddy validate (Provision) warns of link_by unionid with an oa login on
// snsapi_base, which never gets a unionid; not of the others.
func TestWebLoginWarnsOfSnsapiBase(t *testing.T) {
	for _, linkBy := range []string{"unionid", ""} {
		core, logs := observer.New(zap.WarnLevel)
		h := &Handler{logger: zap.New(core), store: session.NewMemory(), Config: Config{
			AppID: "wxmp", AppSecret: "s", APIBase: "http://127.0.0.1:9", LinkBy: linkBy, WebLogins: map[string]*WebLogin{
				"silent": {AppID: "wxoa", AppSecret: "s", Mode: "oa"},
				"info":   {AppID: "wxoa", AppSecret: "s", Mode: "oa", Scope: "snsapi_userinfo", Path: "/info"},
				"site":   {AppID: "wxqr", AppSecret: "s", Mode: "qr"},
			}}}
		if err := checkConfig(h); err != nil {
			t.Fatal(err)
		}
		if err := h.provisionWeb(make([]byte, 32)); err != nil {
			t.Fatal(err)
		}
		warned := logs.FilterMessageSnippet("snsapi_base never gets a unionid").All()
		switch {
		case linkBy == "" && len(warned) != 0:
			t.Fatalf("warned without link_by: %v", warned)
		case linkBy != "" && (len(warned) != 1 || warned[0].ContextMap()["web_login"] != "silent"):
			t.Fatalf("warnings %v, want one for web_login silent", logs.All())
		}
		if len(h.web) != 3 {
			t.Fatalf("%d web logins provisioned", len(h.web))
		}
	}
}
