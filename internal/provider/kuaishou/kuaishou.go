// Package kuaishou is the login provider of Kuaishou mini-programs:
// code2session at open.kuaishou.com, and the user data and phone numbers
// Kuaishou seals with the session key as WeChat does.
package kuaishou

import (
	"context"
	"net/url"

	"go.uber.org/zap"

	"github.com/wxauth/caddy-wxauth/internal/apierr"
	"github.com/wxauth/caddy-wxauth/internal/login"
	"github.com/wxauth/caddy-wxauth/internal/provider/platform"
)

// Platform is the name of the platform in an Identity, tokens and events.
const Platform = "kuaishou"

// DefaultAPIBase is Kuaishou's open platform API.
const DefaultAPIBase = "https://open.kuaishou.com"

// Kuaishou's result codes (its open platform's OAuth codes).
const (
	resultOK            = 1
	resultInvalidClient = 100200101 // wrong app_id or app_secret
	resultBadCode       = 100200105
)

// fixInvalidClient says what to do about 100200101.
const fixInvalidClient = "Kuaishou refused the app (result 100200101, invalid client): set the kuaishou block's app_id and app_secret to the mini-program's AppID and AppSecret from mp.kuaishou.com (look for a stray space or newline)"

// Provider logs users of one Kuaishou mini-program in.
type Provider struct {
	// SealedData opens ks.getUserInfo's and the getPhoneNumber button's
	// encryptedData, which Kuaishou seals with the session key as WeChat
	// does.
	platform.SealedData
	c *platform.Client
}

// Kuaishou's provider has the three capabilities.
var (
	_ login.Provider        = (*Provider)(nil)
	_ login.Decrypter       = (*Provider)(nil)
	_ login.EncryptedPhoner = (*Provider)(nil)
)

// New returns the provider of cfg, or an error naming the field that is
// wrong: app_id and app_secret are required, api_base (default
// https://open.kuaishou.com) must be an http(s) URL.
func New(cfg login.PlatformConfig) (*Provider, error) {
	c, err := platform.NewClient(Platform, "Kuaishou", DefaultAPIBase, cfg)
	if err != nil {
		return nil, err
	}
	return &Provider{c: c, SealedData: platform.SealedData{AppID: cfg.AppID}}, nil
}

// answer is code2session's answer; result 1 is success.
type answer struct {
	Result     *int   `json:"result"`
	ErrorMsg   string `json:"error_msg"`
	OpenID     string `json:"open_id"`
	SessionKey string `json:"session_key"`
	UnionID    string `json:"union_id"`
}

// Exchange resolves a ks.login code with POST /oauth2/mp/code2session.
func (p *Provider) Exchange(ctx context.Context, log *zap.Logger, code login.Code) (*login.Identity, error) {
	if code.Code == "" {
		return nil, apierr.InvalidRequest(`"code" is required: the code ks.login gave the mini-program`)
	}
	form := url.Values{"app_id": {p.c.AppID}, "app_secret": {p.c.Secret}, "js_code": {code.Code}}
	var a answer
	if err := p.c.PostForm(ctx, log, "/oauth2/mp/code2session", form, &a); err != nil {
		return nil, err
	}
	switch {
	case a.Result == nil:
		return nil, p.c.Upstream("answered without a result")
	case *a.Result != resultOK:
		r := platform.Refusal{Code: *a.Result, Msg: a.ErrorMsg, Hide: []string{code.Code}}
		switch *a.Result {
		case resultBadCode:
			r.Kind = platform.BadCode
		case resultInvalidClient:
			r.Kind, r.Fix = platform.Misconfigured, fixInvalidClient
		}
		return nil, p.c.Fail(log, "code2session", r)
	}
	if a.OpenID == "" || a.SessionKey == "" {
		return nil, p.c.Upstream("answered without open_id or session_key")
	}
	return &login.Identity{
		Platform: Platform, Surface: "mp", AppID: p.c.AppID,
		OpenID: a.OpenID, UnionID: a.UnionID, SessionKey: a.SessionKey,
	}, nil
}
