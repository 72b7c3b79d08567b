// Package wechat is the login provider of WeChat mini-programs, over the
// WeChat client of package github.com/wxauth/caddy-wxauth/wechat: the
// code2Session exchange, user data decryption, phone numbers and the
// session key check, with WeChat's errors mapped to the contract.
package wechat

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

// Platform is the name of the platform in an Identity.
const Platform = "wechat"

// Config is what a Provider needs, given once.
type Config struct {
	// AppID is the mini-program's AppID.
	AppID string
	// Client calls WeChat.
	Client *wx.Client
	// Access holds the app's access_token.
	Access *wx.AccessTokens
	// Log takes the config errors of calls made without a request's
	// logger; nil logs nothing.
	Log *zap.Logger
	// Now is the clock of the config errors' log limit; nil means clock.Real.
	Now clock.Clock
	// ConfigError is told each WeChat errcode that means the server is
	// misconfigured (40125 invalid secret, ...), e.g. to count it; nil for
	// none.
	ConfigError func(errcode int)
}

// configLogEvery is how often each config errcode is logged at ERROR at
// most: a wrong secret fails every login, the log says so once a minute.
const configLogEvery = time.Minute

// Provider logs users of one mini-program in with WeChat.
type Provider struct {
	appID     string
	client    *wx.Client
	access    *wx.AccessTokens
	log       *zap.Logger
	now       clock.Clock
	configErr func(errcode int)
	logGate   *throttle.Gate // config errcodes logged at ERROR
}

// New returns the provider of cfg.
func New(cfg Config) *Provider {
	p := &Provider{appID: cfg.AppID, client: cfg.Client, access: cfg.Access, log: cfg.Log,
		now: cfg.Now, configErr: cfg.ConfigError}
	if p.log == nil {
		p.log = zap.NewNop()
	}
	if p.now == nil {
		p.now = clock.Real
	}
	p.logGate = throttle.New(configLogEvery, p.now)
	return p
}

// fail maps err to the contract's error. An errcode that means the server
// is misconfigured is told to ConfigError every time, and logged at ERROR
// with its fix at most once a minute per errcode.
func (p *Provider) fail(log *zap.Logger, err error) *apierr.Error {
	e := mapError(err)
	code, misconfigured := configErrcode(err)
	if !misconfigured {
		return e
	}
	if p.configErr != nil {
		p.configErr(code)
	}
	if p.logGate.Due(strconv.Itoa(code)) {
		if log == nil {
			log = p.log
		}
		log.Error("WeChat says the server is misconfigured", zap.Int("errcode", code), zap.String("fix", e.Message), zap.Error(err))
	}
	return e
}

// The provider's capabilities.
var (
	_ login.Provider       = (*Provider)(nil)
	_ login.Decrypter      = (*Provider)(nil)
	_ login.PhoneNumberer  = (*Provider)(nil)
	_ login.SessionChecker = (*Provider)(nil)
	_ login.AccessTokener  = (*Provider)(nil)
)

// Exchange resolves a wx.login code with code2Session.
func (p *Provider) Exchange(ctx context.Context, log *zap.Logger, code login.Code) (*login.Identity, error) {
	ws, err := p.client.Code2Session(ctx, code.Code)
	if err != nil {
		log.Info("login refused by WeChat", zap.Error(err))
		return nil, p.fail(log, err)
	}
	return &login.Identity{
		Platform: Platform, Surface: "mp", AppID: p.appID,
		OpenID: ws.OpenID, UnionID: ws.UnionID, SessionKey: ws.SessionKey,
	}, nil
}

// DecryptUserData checks the raw data's signature, when given, and opens
// encryptedData with sessionKey; the data's watermark must name this app.
func (p *Provider) DecryptUserData(sessionKey string, in login.Encrypted) (json.RawMessage, error) {
	if in.Signature != "" && !wx.VerifyRawData(in.RawData, sessionKey, in.Signature) {
		return nil, apierr.New(http.StatusBadRequest, "invalid_signature", "signature does not match rawData and the session_key; the data may be stale: call wx.login again")
	}
	data, err := wx.DecryptUserData(p.appID, sessionKey, in.Data, in.IV)
	if err != nil {
		return nil, apierr.New(http.StatusBadRequest, "decrypt_failed", decryptReason(err))
	}
	return data, nil
}

// PhoneNumber resolves a getPhoneNumber code with the managed access_token,
// naming openid so WeChat refuses another user's code. It returns WeChat's
// phone_info unchanged.
func (p *Provider) PhoneNumber(ctx context.Context, log *zap.Logger, code, openid string) (info json.RawMessage, asked bool, err error) {
	err = p.access.Do(ctx, func(tok string) error {
		asked = true
		var err error
		info, err = p.client.PhoneNumber(ctx, tok, code, openid)
		return err
	})
	if err != nil {
		log.Info("phone number refused", zap.Error(err))
		return nil, asked, p.fail(log, err)
	}
	return info, asked, nil
}

// CheckSessionKey asks WeChat's checksession whether sessionKey is still
// openid's session_key.
func (p *Provider) CheckSessionKey(ctx context.Context, openid, sessionKey string) (bool, error) {
	err := p.access.Do(ctx, func(tok string) error {
		return p.client.CheckSession(ctx, tok, openid, sessionKey)
	})
	switch {
	case err == nil:
		return true, nil
	case wx.IsSessionKeyInvalid(err):
		return false, nil
	}
	return false, p.fail(nil, err)
}

// AccessToken hands out the managed access_token, or replaces stale, the
// token WeChat refused, once for the cluster (see wx.AccessTokens.Refresh).
func (p *Provider) AccessToken(ctx context.Context, log *zap.Logger, stale string) (string, time.Time, error) {
	tok, exp, err := p.access.Refresh(ctx, stale)
	if err != nil {
		log.Warn("access_token for the app failed", zap.Bool("stale", stale != ""), zap.Error(err))
		return "", time.Time{}, p.fail(log, err)
	}
	return tok, exp, nil
}
