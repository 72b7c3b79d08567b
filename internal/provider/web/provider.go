package web

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/wxauth/caddy-wxauth/internal/apierr"
	"github.com/wxauth/caddy-wxauth/internal/clock"
	"github.com/wxauth/caddy-wxauth/internal/login"
	"github.com/wxauth/caddy-wxauth/internal/throttle"
	wx "github.com/wxauth/caddy-wxauth/wechat"
)

// Config is what a Provider is built from.
type Config struct {
	// App is the web app, prepared (see App.Prepare).
	App App
	// APIBase is WeChat's server API, where sns/* is called: the handler's
	// api_base. Empty means WeChat's own.
	APIBase string
	// Timeout bounds each call to WeChat; 0 means the client's default.
	Timeout time.Duration
	// HTTPClient makes the calls; nil means a client of the wechat package's own.
	HTTPClient *http.Client
	// Observe is told each call's API name, duration and error, for metrics; nil for none.
	Observe func(api string, d time.Duration, err error)
	// Log takes the config errors of calls made without a request's
	// logger; nil logs nothing.
	Log *zap.Logger
	// Now is the clock of the config errors' log limit; nil means clock.Real.
	Now clock.Clock
	// ConfigError is told each WeChat errcode that means the web app is
	// misconfigured (40125 invalid secret, ...), e.g. to count it; nil for none.
	ConfigError func(errcode int)
}

// ErrSnapshotUser refuses a visitor of a snapshot page (WeChat's preview
// of a shared page, is_snapshotuser 1): WeChat gives such a visitor a
// virtual openid, not the user's, so no session is made. The routes answer
// it with a page that tells the visitor to open the full page.
var ErrSnapshotUser = apierr.Forbidden("WeChat shows this page as a snapshot (快照页); open the full page (使用完整服务) to log in")

// Provider logs users of one web app in with WeChat. It is a
// login.Provider whose identities carry the surface (oa or qr) and, for
// snsapi_userinfo and snsapi_login, the profile.
type Provider struct {
	app       App
	client    *wx.Client
	log       *zap.Logger
	configErr func(errcode int)
	logGate   *throttle.Gate // config errcodes logged at ERROR
}

var _ login.Provider = (*Provider)(nil)

// New returns the provider of cfg.
func New(cfg Config) *Provider {
	p := &Provider{
		app: cfg.App, log: cfg.Log, configErr: cfg.ConfigError,
		client: wx.NewClient(wx.Config{
			AppID: cfg.App.AppID, AppSecret: cfg.App.AppSecret, BaseURL: cfg.APIBase,
			Timeout: cfg.Timeout, HTTPClient: cfg.HTTPClient, Observe: cfg.Observe,
		}),
		logGate: throttle.New(time.Minute, cfg.Now),
	}
	if p.log == nil {
		p.log = zap.NewNop()
	}
	return p
}

// Exchange resolves a web login code: sns/oauth2/access_token, then, unless
// the scope is snsapi_base, sns/userinfo. A snapshot page's visitor is
// refused with ErrSnapshotUser.
func (p *Provider) Exchange(ctx context.Context, log *zap.Logger, code login.Code) (*login.Identity, error) {
	if log == nil {
		log = p.log
	}
	u, err := p.client.OAuthLogin(ctx, code.Code, p.app.Scope != wx.ScopeBase)
	if err != nil {
		log.Info("web login refused by WeChat", zap.String("web_login", p.app.Name), zap.Error(err))
		return nil, p.fail(log, err)
	}
	if u.Snapshot {
		log.Info("web login of a snapshot page's visitor refused", zap.String("web_login", p.app.Name))
		return nil, ErrSnapshotUser
	}
	id := &login.Identity{Platform: Platform, Surface: p.app.Mode, AppID: p.app.AppID, OpenID: u.OpenID, UnionID: u.UnionID}
	if u.Profile != nil {
		if id.UserInfo, err = json.Marshal(u.Profile); err != nil {
			return nil, apierr.Internal
		}
	}
	return id, nil
}

// fail maps err to the contract's error. An errcode that means the web app
// is misconfigured is told to ConfigError every time, and logged at ERROR
// with its fix at most once a minute per errcode.
func (p *Provider) fail(log *zap.Logger, err error) *apierr.Error {
	e, misconfigured := mapError(&p.app, err)
	if !misconfigured {
		return e
	}
	code, _ := e.ErrCode.(int)
	if p.configErr != nil {
		p.configErr(code)
	}
	if p.logGate.Due(strconv.Itoa(code)) {
		log.Error("WeChat says a web login is misconfigured", zap.String("web_login", p.app.Name),
			zap.Int("errcode", code), zap.String("fix", e.Message), zap.Error(err))
	}
	return e
}
