// Package baidu is the login provider of Baidu smart programs (百度智能小程序):
// jscode2sessionkey at spapi.baidu.com, and Baidu's own sealing of user
// data and phone numbers (AES-192-CBC with the session key, the AppKey
// inside the plaintext).
package baidu

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"go.uber.org/zap"

	"github.com/wxauth/caddy-wxauth/internal/apierr"
	"github.com/wxauth/caddy-wxauth/internal/login"
	"github.com/wxauth/caddy-wxauth/internal/provider/platform"
)

// Platform is the name of the platform in an Identity, tokens and events.
const Platform = "baidu"

// DefaultAPIBase is Baidu's smart program API.
const DefaultAPIBase = "https://spapi.baidu.com"

// Baidu's refusals of jscode2sessionkey: an errno with an error text, or,
// in its OAuth form, an error text alone.
const (
	// errnoBadParameter is "parameter is invalid"; its description names
	// the field (Code2SessionKeyParam.ClientID, .Sk, .Code).
	errnoBadParameter = 10010100
	// errnoTooFast is Baidu's "访问量超过接口最大 QPS".
	errnoTooFast = 5010003
	// errorInvalidGrant is OAuth's refusal of an authorization code.
	errorInvalidGrant = "invalid_grant"
	// errorInvalidClient and errorUnauthorizedClient are OAuth's refusals
	// of the client_id and sk.
	errorInvalidClient      = "invalid_client"
	errorUnauthorizedClient = "unauthorized_client"
)

// fixClient says what to do when Baidu refuses the AppKey or secret; %s
// names Baidu's refusal.
const fixClient = "Baidu refused the app (%s): set the baidu block's app_id to the smart program's AppKey and app_secret to its App Secret (sk), both from smartprogram.baidu.com (开发设置); look for a stray space or newline"

// Provider logs users of one Baidu smart program in.
type Provider struct {
	c *platform.Client
}

// What the provider can do; Baidu has no way to check a session key from
// the server.
var (
	_ login.Provider        = (*Provider)(nil)
	_ login.Decrypter       = (*Provider)(nil)
	_ login.EncryptedPhoner = (*Provider)(nil)
)

// New returns the provider of cfg, or an error naming the field that is
// wrong: app_id (the AppKey) and app_secret (the App Secret, sk) are
// required, api_base (default https://spapi.baidu.com) must be an http(s)
// URL.
func New(cfg login.PlatformConfig) (*Provider, error) {
	c, err := platform.NewClient(Platform, "Baidu", DefaultAPIBase, cfg)
	if err != nil {
		return nil, err
	}
	return &Provider{c: c}, nil
}

// answer is jscode2sessionkey's answer.
type answer struct {
	OpenID           string `json:"openid"`
	SessionKey       string `json:"session_key"`
	Errno            int    `json:"errno"`
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

// Exchange resolves a swan.getLoginCode code with POST
// /oauth/jscode2sessionkey (form code, client_id, sk).
func (p *Provider) Exchange(ctx context.Context, log *zap.Logger, code login.Code) (*login.Identity, error) {
	if code.Code == "" {
		return nil, apierr.InvalidRequest(`"code" is required: the code swan.getLoginCode gave the smart program`)
	}
	var a answer
	form := url.Values{"code": {code.Code}, "client_id": {p.c.AppID}, "sk": {p.c.Secret}}
	if err := p.c.PostForm(ctx, log, "/oauth/jscode2sessionkey", form, &a); err != nil {
		return nil, err
	}
	if a.Errno != 0 || a.Error != "" {
		return nil, p.c.Fail(log, "jscode2sessionkey", refusal(a, code.Code))
	}
	if a.OpenID == "" || a.SessionKey == "" {
		return nil, p.c.Upstream("answered without openid or session_key")
	}
	// Baidu gives no unionid here (it has an API of its own for that).
	return &login.Identity{Platform: Platform, Surface: "mp", AppID: p.c.AppID, OpenID: a.OpenID, SessionKey: a.SessionKey}, nil
}

// refusal says what a refusal of jscode2sessionkey means. Its code is the
// errno where Baidu gave one, else its error text.
func refusal(a answer, code string) platform.Refusal {
	r := platform.Refusal{Code: a.Errno, Msg: a.Error + ": " + a.ErrorDescription, Hide: []string{code}}
	if a.Errno == 0 {
		r.Code = a.Error
	}
	switch {
	case a.Error == errorInvalidClient || a.Error == errorUnauthorizedClient:
		r.Kind, r.Fix = platform.Misconfigured, fmt.Sprintf(fixClient, a.Error)
	case a.Errno == errnoBadParameter && namesAppField(a.ErrorDescription):
		r.Kind, r.Fix = platform.Misconfigured, fmt.Sprintf(fixClient, "errno 10010100, a bad client_id or sk")
	case a.Error == errorInvalidGrant, a.Errno == errnoBadParameter:
		// A bad parameter that is not the app's is the one the client
		// sent: its code.
		r.Kind = platform.BadCode
	case a.Errno == errnoTooFast:
		r.Kind = platform.Limited
	}
	return r
}

// namesAppField reports whether a "parameter is invalid" description
// names the app's parameters rather than the code.
func namesAppField(description string) bool {
	d := strings.ToLower(description)
	return strings.Contains(d, "clientid") || strings.Contains(d, "client_id") || strings.Contains(d, ".sk")
}
