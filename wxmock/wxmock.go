package wxmock

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// defaultAccessTokenTTL is WeChat's access_token lifetime.
const defaultAccessTokenTTL = 2 * time.Hour

// Handler is a stand-in for the WeChat server API; see the package doc for
// the endpoints it serves. Requests to other paths go to the next handler.
type Handler struct {
	// AppID, when set, is the only appid code2Session and stable_token
	// accept (others get errcode 40013). Placeholders like {env.*} work.
	// Handlers with the same app_id share their state.
	AppID string `json:"app_id,omitempty"`

	// AppSecret, when set, is the only secret code2Session and stable_token
	// accept (others get errcode 40125). Placeholders like {env.*} work.
	AppSecret string `json:"app_secret,omitempty"`

	// AccessTokenTTL is the lifetime of issued access_tokens, reported as
	// their expires_in. Default: 2h, as at WeChat.
	AccessTokenTTL caddy.Duration `json:"access_token_ttl,omitempty"`

	// AnyCode, when set, is a development mode for WeChat DevTools, whose
	// wx.login gives codes wxmock never issued (random 32-character strings
	// with a tourist appid): code2Session takes every code wxmock did not
	// issue itself as a login of the user with this name, who gets the same
	// stable openid and unionid as through /wxmock/login?user=. Each such
	// code works once, as at WeChat (again: errcode 40163, after 5 minutes
	// 40029); the special codes (invalid, used, busy, ...) and the codes
	// wxmock issued keep their meaning. Letters, digits, '_', '-' and '.',
	// at most 64. Never for anything but development: any caller that
	// reaches wxmock with the app's secret logs in.
	AnyCode string `json:"any_code,omitempty"`

	// Platforms configures the stand-ins for other mini-program platforms,
	// by platform name (qq, douyin, alipay, baidu, kuaishou). A platform
	// not named here is still served, accepting any app id and secret.
	Platforms map[string]*Platform `json:"platforms,omitempty"`

	// WebApps are the web apps (official accounts, website apps) whose
	// web login calls the stand-in accepts; empty accepts any app id and
	// secret. See WebApp.
	WebApps []WebApp `json:"web_apps,omitempty"`

	appID     string
	appSecret string
	state     *state
	sites     map[string]*site // the other platforms' stand-ins, by name
	logger    *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.wxmock",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision resolves placeholders and attaches the shared state of the app.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	repl := caddy.NewReplacer()
	h.appID = repl.ReplaceKnown(h.AppID, "")
	h.appSecret = repl.ReplaceKnown(h.AppSecret, "")
	if h.AccessTokenTTL == 0 {
		h.AccessTokenTTL = caddy.Duration(defaultAccessTokenTTL)
	}
	st, _, err := states.LoadOrNew(h.appID, func() (caddy.Destructor, error) {
		return newState(), nil
	})
	if err != nil {
		return err
	}
	h.state = st.(*state)
	if err := h.provisionPlatforms(repl); err != nil {
		return err
	}
	h.logger.Warn("wxmock stands in for the WeChat API: for development and tests only",
		zap.String("app_id", h.appID))
	if h.AnyCode != "" {
		h.logger.Warn("wxmock any_code: every login code wxmock did not issue logs in as one user",
			zap.String("user", h.AnyCode))
	}
	return nil
}

// Validate checks the configuration.
func (h *Handler) Validate() error {
	// expires_in is in whole seconds.
	if time.Duration(h.AccessTokenTTL) < time.Second {
		return fmt.Errorf("access_token_ttl must be at least 1s")
	}
	if h.AnyCode != "" && !validUserName(h.AnyCode) {
		return fmt.Errorf("any_code %q: a user name is letters, digits, '_', '-' and '.', at most %d", h.AnyCode, maxUserName)
	}
	if err := h.validateWebApps(); err != nil {
		return err
	}
	return h.validatePlatforms()
}

// maxUserName bounds the user name of any_code.
const maxUserName = 64

// validUserName reports whether name is a user name any_code accepts.
func validUserName(name string) bool {
	if name == "" || len(name) > maxUserName {
		return false
	}
	for _, c := range name {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-', c == '.':
		default:
			return false
		}
	}
	return true
}

// Cleanup releases the shared states; the last handler of an app drops
// them.
func (h *Handler) Cleanup() error {
	perr := h.cleanupPlatforms()
	if h.state == nil {
		return perr
	}
	h.state = nil
	_, err := states.Delete(h.appID)
	return errors.Join(err, perr)
}

// ServeHTTP answers the WeChat API and developer endpoints and passes every
// other request to next.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	switch r.URL.Path {
	case "/sns/jscode2session":
		h.code2Session(w, r)
	case "/cgi-bin/stable_token":
		h.stableToken(w, r)
	case "/wxa/business/getuserphonenumber":
		h.phoneNumber(w, r)
	case "/wxa/checksession":
		h.checkSession(w, r)
	case "/cgi-bin/message/subscribe/send":
		h.subscribeSend(w, r)
	case "/wxmock/login":
		h.devLogin(w, r)
	case "/wxmock/userinfo":
		h.devUserInfo(w, r)
	case "/wxmock/phonecode":
		h.devPhoneCode(w, r)
	case "/wxmock/expire_tokens":
		h.devExpireTokens(w, r)
	case "/wxmock/stats":
		h.devStats(w, r)
	case "/wxmock/reset":
		h.devReset(w, r)
	default:
		if f := h.platformRoute(r.URL.Path); f != nil {
			f(w, r)
			return nil
		}
		return next.ServeHTTP(w, r)
	}
	return nil
}

// writeJSON writes v with status; a failed write means the client left.
func writeJSON(w http.ResponseWriter, contentType string, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "wxmock: cannot encode answer", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// logCall notes a WeChat API call at debug level: which API and its
// errcode, never codes, secrets, keys or tokens.
func (h *Handler) logCall(api string, errcode int) {
	if ce := h.logger.Check(zapcore.DebugLevel, "wechat api call"); ce != nil {
		ce.Write(zap.String("api", api), zap.Int("errcode", errcode))
	}
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
	_ caddyfile.Unmarshaler       = (*Handler)(nil)
)
