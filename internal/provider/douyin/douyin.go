// Package douyin is the login provider of Douyin (ByteDance) mini-programs:
// code2Session v2 at developer.toutiao.com, which takes tt.login's code,
// its anonymous_code or both, and the user data and phone numbers Douyin
// seals with the session key as WeChat does.
package douyin

import (
	"context"

	"go.uber.org/zap"

	"github.com/wxauth/caddy-wxauth/internal/apierr"
	"github.com/wxauth/caddy-wxauth/internal/login"
	"github.com/wxauth/caddy-wxauth/internal/provider/platform"
)

// Platform is the name of the platform in an Identity, tokens and events.
const Platform = "douyin"

// DefaultAPIBase is Douyin's mini-program server API.
const DefaultAPIBase = "https://developer.toutiao.com"

// Douyin's err_no values for code2Session.
const (
	codeBadAppID       = 40015
	codeBadSecret      = 40017
	codeBadCode        = 40018
	codeBadAnonCode    = 40019
	codeTooManyRequest = 28003018 // the open platform's common "request rate too high"
)

// configFixes says, for each err_no that means the app is set up wrong,
// what to fix.
var configFixes = map[int]string{
	codeBadAppID:  "Douyin refused the app id (err_no 40015): set the douyin block's app_id to the mini-program's AppID (控制台 > 开发 > 开发配置)",
	codeBadSecret: "Douyin refused the app secret (err_no 40017): set the douyin block's app_secret to the mini-program's current AppSecret (look for a stray space or newline)",
}

// Provider logs users of one Douyin mini-program in.
type Provider struct {
	// SealedData opens tt.getUserInfo's encryptedData and the getPhoneNumber
	// button's, sealed with the session key as WeChat seals them.
	platform.SealedData
	c *platform.Client
}

// What the provider can do: Douyin seals user data and phone numbers as WeChat does.
var (
	_ login.Provider        = (*Provider)(nil)
	_ login.Decrypter       = (*Provider)(nil)
	_ login.EncryptedPhoner = (*Provider)(nil)
)

// New returns the provider of cfg, or an error naming the field that is
// wrong: app_id and app_secret are required, api_base (default
// https://developer.toutiao.com) must be an http(s) URL.
func New(cfg login.PlatformConfig) (*Provider, error) {
	c, err := platform.NewClient(Platform, "Douyin", DefaultAPIBase, cfg)
	if err != nil {
		return nil, err
	}
	return &Provider{SealedData: platform.SealedData{AppID: cfg.AppID}, c: c}, nil
}

// request is code2Session v2's body.
type request struct {
	AppID         string `json:"appid"`
	Secret        string `json:"secret"`
	Code          string `json:"code"`
	AnonymousCode string `json:"anonymous_code"`
}

// answer is code2Session v2's answer.
type answer struct {
	ErrNo   int    `json:"err_no"`
	ErrTips string `json:"err_tips"`
	Data    struct {
		SessionKey      string `json:"session_key"`
		OpenID          string `json:"openid"`
		AnonymousOpenID string `json:"anonymous_openid"`
		UnionID         string `json:"unionid"`
	} `json:"data"`
}

// Exchange resolves tt.login's code and anonymous_code with POST
// /api/apps/v2/jscode2session. With a code the user's openid wins and the
// anonymous_openid, when asked for, is given beside it; an anonymous_code
// alone logs in the device's anonymous_openid, marked Anonymous, without a
// session key (Douyin gives one only for a code).
func (p *Provider) Exchange(ctx context.Context, log *zap.Logger, code login.Code) (*login.Identity, error) {
	if code.Code == "" && code.AnonymousCode == "" {
		return nil, apierr.InvalidRequest(`"code" or "anonymous_code" is required: the ones tt.login gave the mini-program`)
	}
	var a answer
	err := p.c.PostJSON(ctx, log, "/api/apps/v2/jscode2session", request{
		AppID: p.c.AppID, Secret: p.c.Secret, Code: code.Code, AnonymousCode: code.AnonymousCode,
	}, &a)
	if err != nil {
		return nil, err
	}
	if a.ErrNo != 0 {
		return nil, p.c.Fail(log, "jscode2session", refusal(a, code))
	}
	id := &login.Identity{Platform: Platform, Surface: "mp", AppID: p.c.AppID}
	d := a.Data
	if code.Code == "" {
		if d.AnonymousOpenID == "" {
			return nil, p.c.Upstream("answered without anonymous_openid")
		}
		id.OpenID, id.Anonymous = d.AnonymousOpenID, true
		return id, nil
	}
	if d.OpenID == "" || d.SessionKey == "" {
		return nil, p.c.Upstream("answered without openid or session_key")
	}
	id.OpenID, id.UnionID, id.SessionKey, id.AnonymousOpenID = d.OpenID, d.UnionID, d.SessionKey, d.AnonymousOpenID
	return id, nil
}

// refusal says what an err_no of code2Session means.
func refusal(a answer, code login.Code) platform.Refusal {
	r := platform.Refusal{Code: a.ErrNo, Msg: a.ErrTips, Hide: []string{code.Code, code.AnonymousCode}}
	switch a.ErrNo {
	case codeBadCode, codeBadAnonCode:
		r.Kind = platform.BadCode
	case codeTooManyRequest:
		r.Kind = platform.Limited
	}
	if fix, ok := configFixes[a.ErrNo]; ok {
		r.Kind, r.Fix = platform.Misconfigured, fix
	}
	return r
}
