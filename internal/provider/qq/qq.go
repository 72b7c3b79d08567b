// Package qq is the login provider of QQ mini-programs: code2Session at
// api.q.qq.com, which has WeChat's shape, and the user data and phone
// numbers QQ seals with the session key as WeChat does.
package qq

import (
	"context"
	"net/url"

	"go.uber.org/zap"

	"github.com/wxauth/caddy-wxauth/internal/apierr"
	"github.com/wxauth/caddy-wxauth/internal/login"
	"github.com/wxauth/caddy-wxauth/internal/provider/platform"
)

// Platform is the name of the platform in an Identity, tokens and events.
const Platform = "qq"

// DefaultAPIBase is QQ's server API.
const DefaultAPIBase = "https://api.q.qq.com"

// QQ's errcodes; QQ documents -1, 40029 and 45011 for code2Session and
// otherwise answers with WeChat's codes, whose meaning it shares.
const (
	codeInvalid       = 40029
	codeUsed          = 40163
	codeRisky         = 40226
	codeRateLimited   = 45011
	codeInvalidAppID  = 40013
	codeInvalidSecret = 40125
	codeAppIDMissing  = 41002
	codeSecretMissing = 41004
)

// configFixes says, for each errcode that means the app is set up wrong,
// what to fix.
var configFixes = map[int]string{
	codeInvalidAppID:  "QQ refused the app id (errcode 40013): set the qq block's app_id to the mini-program's AppID from q.qq.com (开发设置)",
	codeInvalidSecret: "QQ refused the app secret (errcode 40125): set the qq block's app_secret to the mini-program's current AppSecret (look for a stray space or newline)",
	codeAppIDMissing:  "QQ got no app id (errcode 41002): set the qq block's app_id",
	codeSecretMissing: "QQ got no app secret (errcode 41004): set the qq block's app_secret",
}

// Provider logs users of one QQ mini-program in.
type Provider struct {
	// SealedData opens qq.getUserInfo's encryptedData and the getPhoneNumber
	// button's, sealed with the session key as WeChat seals them.
	platform.SealedData
	c *platform.Client
}

// The provider's capabilities: QQ seals user data and phone numbers as WeChat does.
var (
	_ login.Provider        = (*Provider)(nil)
	_ login.Decrypter       = (*Provider)(nil)
	_ login.EncryptedPhoner = (*Provider)(nil)
)

// New returns the provider of cfg, or an error naming the field that is
// wrong: app_id and app_secret are required, api_base (default
// https://api.q.qq.com) must be an http(s) URL.
func New(cfg login.PlatformConfig) (*Provider, error) {
	c, err := platform.NewClient(Platform, "QQ", DefaultAPIBase, cfg)
	if err != nil {
		return nil, err
	}
	return &Provider{SealedData: platform.SealedData{AppID: cfg.AppID}, c: c}, nil
}

// session is code2Session's answer.
type session struct {
	ErrCode    int    `json:"errcode"`
	ErrMsg     string `json:"errmsg"`
	OpenID     string `json:"openid"`
	SessionKey string `json:"session_key"`
	UnionID    string `json:"unionid"`
}

// Exchange resolves a qq.login code with GET /sns/jscode2session.
func (p *Provider) Exchange(ctx context.Context, log *zap.Logger, code login.Code) (*login.Identity, error) {
	if code.Code == "" {
		return nil, apierr.InvalidRequest(`"code" is required: the code qq.login gave the mini-program`)
	}
	var s session
	err := p.c.Get(ctx, log, "/sns/jscode2session", url.Values{
		"appid": {p.c.AppID}, "secret": {p.c.Secret}, "js_code": {code.Code}, "grant_type": {"authorization_code"},
	}, &s)
	if err != nil {
		return nil, err
	}
	if s.ErrCode != 0 {
		return nil, p.c.Fail(log, "jscode2session", refusal(s, code.Code))
	}
	if s.OpenID == "" || s.SessionKey == "" {
		return nil, p.c.Upstream("answered without openid or session_key")
	}
	return &login.Identity{
		Platform: Platform, Surface: "mp", AppID: p.c.AppID,
		OpenID: s.OpenID, UnionID: s.UnionID, SessionKey: s.SessionKey,
	}, nil
}

// refusal says what an errcode of code2Session means.
func refusal(s session, code string) platform.Refusal {
	r := platform.Refusal{Code: s.ErrCode, Msg: s.ErrMsg, Hide: []string{code}}
	switch s.ErrCode {
	case codeInvalid, codeUsed:
		r.Kind = platform.BadCode
	case codeRisky:
		r.Kind = platform.Risky
	case codeRateLimited:
		r.Kind = platform.Limited
	}
	if fix, ok := configFixes[s.ErrCode]; ok {
		r.Kind, r.Fix = platform.Misconfigured, fix
	}
	return r
}
