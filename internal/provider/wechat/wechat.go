// Package wechat is the login provider of WeChat mini-programs, over the
// WeChat client of package github.com/wxauth/caddy-wxauth/wechat: the
// code2Session exchange, user data decryption, phone numbers and the
// session key check, with WeChat's errors mapped to the contract.
package wechat

import (
	"context"
	"encoding/json"
	"net/http"

	"go.uber.org/zap"

	"github.com/wxauth/caddy-wxauth/internal/apierr"
	"github.com/wxauth/caddy-wxauth/internal/login"
	wx "github.com/wxauth/caddy-wxauth/wechat"
)

// Platform is the name of the platform in an Identity.
const Platform = "wechat"

// Provider logs users of one mini-program in with WeChat.
type Provider struct {
	appID  string
	client *wx.Client
	access *wx.AccessTokens
}

// New returns the provider of mini-program appID, calling WeChat through
// client, with the app's access_token from access.
func New(appID string, client *wx.Client, access *wx.AccessTokens) *Provider {
	return &Provider{appID: appID, client: client, access: access}
}

// The provider's capabilities.
var (
	_ login.Provider       = (*Provider)(nil)
	_ login.Decrypter      = (*Provider)(nil)
	_ login.PhoneNumberer  = (*Provider)(nil)
	_ login.SessionChecker = (*Provider)(nil)
)

// Exchange resolves a wx.login code with code2Session.
func (p *Provider) Exchange(ctx context.Context, log *zap.Logger, code string) (*login.Identity, error) {
	ws, err := p.client.Code2Session(ctx, code)
	if err != nil {
		log.Info("login refused by WeChat", zap.Error(err))
		return nil, mapError(err)
	}
	return &login.Identity{
		Platform: Platform, AppID: p.appID,
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
		return nil, asked, mapError(err)
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
	return false, mapError(err)
}
