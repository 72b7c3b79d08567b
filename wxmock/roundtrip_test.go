package wxmock

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/wxauth/caddy-wxauth/internal/apierr"
	lg "github.com/wxauth/caddy-wxauth/internal/login"
	"github.com/wxauth/caddy-wxauth/internal/provider/baidu"
	"github.com/wxauth/caddy-wxauth/internal/provider/douyin"
	"github.com/wxauth/caddy-wxauth/internal/provider/kuaishou"
	"github.com/wxauth/caddy-wxauth/internal/provider/qq"
)

// platformProvider is what wxauth asks of a platform's provider.
type platformProvider interface {
	lg.Provider
	lg.Decrypter
	lg.EncryptedPhoner
}

// newProvider builds wxauth's provider of platform pointed at wxmock's
// stand-in under base.
func newProvider(t *testing.T, platform string, cfg lg.PlatformConfig) platformProvider {
	t.Helper()
	var p platformProvider
	var err error
	switch platform {
	case "qq":
		p, err = qq.New(cfg)
	case "douyin":
		p, err = douyin.New(cfg)
	case "baidu":
		p, err = baidu.New(cfg)
	case "kuaishou":
		p, err = kuaishou.New(cfg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// serveWxmock serves h over HTTP, as Caddy would.
func serveWxmock(t *testing.T, h *Handler) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h.ServeHTTP(w, r, next); err != nil {
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// Each provider logs in, decrypts and reads phone numbers against its
// stand-in; the stand-in's refusals reach wxauth as the contract's errors.
func TestProvidersAgainstTheirStandIns(t *testing.T) {
	h := newPlatformHandler(t, "")
	base := serveWxmock(t, h)
	ctx, log := context.Background(), zap.NewNop()
	for _, platform := range []string{"qq", "douyin", "baidu", "kuaishou"} {
		id := appIDOf(t, platform)
		t.Run(platform, func(t *testing.T) {
			var counted []string
			cfg := lg.PlatformConfig{AppID: id, AppSecret: platformSecret, APIBase: base + "/" + platform,
				ConfigError: func(code string) { counted = append(counted, code) }}
			p := newProvider(t, platform, cfg)

			who, err := p.Exchange(ctx, log, lg.Code{Code: devCode(t, h, platform, "user=frank")})
			if err != nil {
				t.Fatal(err)
			}
			if who.Platform != platform || who.AppID != id || who.OpenID != openID(id, "frank") || who.SessionKey == "" || who.Anonymous {
				t.Fatalf("identity %+v", who)
			}
			if gives := platform == "qq" || platform == "douyin"; gives != (who.UnionID == unionID("frank")) {
				t.Fatalf("unionid %q", who.UnionID)
			}

			info := object(t, serve(t, h, "GET", "/"+platform+"/wxmock/userinfo?user=frank", ""))
			in := lg.Encrypted{Data: info["encryptedData"].(string), IV: info["iv"].(string)}
			if raw, ok := info["rawData"].(string); ok {
				in.RawData, in.Signature = raw, info["signature"].(string)
			}
			data, err := p.DecryptUserData(who.SessionKey, in)
			if err != nil || !strings.Contains(string(data), who.OpenID) {
				t.Fatalf("userinfo: %s %v", data, err)
			}
			ph := object(t, serve(t, h, "GET", "/"+platform+"/wxmock/phone?user=frank&phone=13700001234", ""))
			phone, err := p.PhoneFromEncrypted(who.SessionKey, lg.Encrypted{Data: ph["encryptedData"].(string), IV: ph["iv"].(string)})
			if err != nil || string(phone) != `{"phone_number":"13700001234","pure_phone_number":"13700001234","country_code":"86"}` {
				t.Fatalf("phone: %s %v", phone, err)
			}
			// Data sealed for another app of the platform is refused.
			other := object(t, serve(t, h, "GET", "/"+platform+"/wxmock/phone?user=frank&appid=another-app", ""))
			if _, err := p.PhoneFromEncrypted(who.SessionKey, lg.Encrypted{Data: other["encryptedData"].(string), IV: other["iv"].(string)}); apierr.As(err).Code != "decrypt_failed" {
				t.Fatalf("another app's phone: %v", err)
			}

			for code, want := range map[string]string{
				"invalid": "invalid_code", "used": "invalid_code", "busy": "upstream_error", "html": "upstream_error", "reset": "upstream_error",
			} {
				_, err := p.Exchange(ctx, log, lg.Code{Code: code})
				if e := apierr.As(err); e.Code != want || (code == "html" || code == "reset") != (e.ErrCode == nil) {
					t.Errorf("code %q: %v (errcode %v), want %s", code, err, e.ErrCode, want)
				}
			}
			_, err = p.Exchange(ctx, log, lg.Code{Code: "limit"})
			if want := map[bool]string{true: "rate_limited", false: "invalid_code"}[platform != "kuaishou"]; apierr.As(err).Code != want {
				t.Errorf("limit: %v, want %s", err, want)
			}

			cfg.AppSecret = "not-the-secret"
			_, err = newProvider(t, platform, cfg).Exchange(ctx, log, lg.Code{Code: devCode(t, h, platform, "")})
			var e *apierr.Error
			if !errors.As(err, &e) || e.Code != "platform_config" || e.Platform != platform || len(counted) != 1 || counted[0] != e.ErrCodeString() {
				t.Fatalf("wrong secret: %v, counted %v", err, counted)
			}
		})
	}
}

// A Douyin guest logs in with the anonymous_code alone, and later with
// both codes: the app can merge the guest's data into the user's.
func TestDouyinGuestAgainstTheStandIn(t *testing.T) {
	h := newPlatformHandler(t, "")
	p := newProvider(t, "douyin", lg.PlatformConfig{AppID: appIDOf(t, "douyin"), AppSecret: platformSecret, APIBase: serveWxmock(t, h) + "/douyin"})
	ctx := context.Background()
	guest, err := p.Exchange(ctx, zap.NewNop(), lg.Code{AnonymousCode: devCode(t, h, "douyin", "user=gina&anonymous=1")})
	if err != nil || !guest.Anonymous || guest.OpenID == "" || guest.SessionKey != "" {
		t.Fatalf("guest: %+v %v", guest, err)
	}
	user, err := p.Exchange(ctx, zap.NewNop(), lg.Code{
		Code: devCode(t, h, "douyin", "user=gina"), AnonymousCode: devCode(t, h, "douyin", "user=gina&anonymous=1")})
	if err != nil || user.Anonymous || user.OpenID != openID(appIDOf(t, "douyin"), "gina") || user.AnonymousOpenID != guest.OpenID {
		t.Fatalf("user: %+v %v", user, err)
	}
	_, err = p.Exchange(ctx, zap.NewNop(), lg.Code{AnonymousCode: "invalid"})
	if e := apierr.As(err); e.Code != "invalid_code" || e.ErrCode != 40019 {
		t.Fatalf("bad anonymous code: %v", err)
	}
}
