package wechat

import (
	"context"
	"errors"
	"net/http"
	"net/url"
)

// Web login scopes: what an official account's OAuth (oa) or a website's QR
// login (qr) asks the user for.
const (
	// ScopeBase is a silent oa login: the openid only, never a unionid.
	ScopeBase = "snsapi_base"
	// ScopeUserInfo is an oa login the user confirms, with the profile.
	ScopeUserInfo = "snsapi_userinfo"
	// ScopeLogin is a website's QR login, with the profile.
	ScopeLogin = "snsapi_login"
)

// WebUser is who a web login code (official account OAuth or website QR
// login) names. It holds no WeChat token: the OAuth access_token and
// refresh_token are used inside OAuthLogin and dropped, so nothing a
// caller logs or keeps can leak them.
type WebUser struct {
	// OpenID identifies the user within the web app.
	OpenID string
	// UnionID identifies the user across the open platform account's apps;
	// empty when WeChat gave none (always with snsapi_base).
	UnionID string
	// Scope is the scope WeChat says the code was granted.
	Scope string
	// Snapshot is set for a visitor of a snapshot page (WeChat's preview of
	// a shared page, is_snapshotuser 1): the openid is a virtual one, not a
	// user. No profile is fetched for a snapshot visitor.
	Snapshot bool
	// Profile is the user's sns/userinfo, when asked for and not a snapshot
	// visitor.
	Profile *Profile
}

// Profile is the part of sns/userinfo a web login hands on: never the
// privilege list.
type Profile struct {
	// OpenID is the user in the web app.
	OpenID string `json:"openid"`
	// UnionID is the user across the open platform account, when bound.
	UnionID string `json:"unionid,omitempty"`
	// Nickname is the user's WeChat nickname.
	Nickname string `json:"nickname"`
	// Sex is 1 male, 2 female, 0 unknown; WeChat answers 0 since 2021.
	Sex int `json:"sex"`
	// Province, City and Country are the user's region; WeChat answers
	// them empty since 2021.
	Province string `json:"province"`
	City     string `json:"city"`
	Country  string `json:"country"`
	// HeadImgURL is the avatar's address.
	HeadImgURL string `json:"headimgurl"`
}

// OAuthLogin exchanges a web login code at sns/oauth2/access_token and,
// with userInfo, fetches the user's sns/userinfo with the access_token it
// got. The code is single-use, so its call is retried only like
// Code2Session's; the profile call is retried like any idempotent one.
//
// The client's AppID and AppSecret are the web app's (the official
// account's or the website app's), not a mini-program's.
func (c *Client) OAuthLogin(ctx context.Context, code string, userInfo bool) (*WebUser, error) {
	const api = "sns/oauth2/access_token"
	q := url.Values{
		"appid":      {c.appID},
		"secret":     {c.secret},
		"code":       {code},
		"grant_type": {"authorization_code"},
	}
	var tok struct {
		AccessToken    string `json:"access_token"`
		OpenID         string `json:"openid"`
		Scope          string `json:"scope"`
		UnionID        string `json:"unionid"`
		IsSnapshotUser int    `json:"is_snapshotuser"`
	}
	err := c.call(ctx, request{
		api: api, method: http.MethodGet, path: "/sns/oauth2/access_token", query: q,
		secrets: []string{c.secret, code},
	}, &tok)
	if err != nil {
		return nil, err
	}
	if tok.OpenID == "" || tok.AccessToken == "" {
		return nil, &UpstreamError{API: api, Err: errors.New("reply without openid or access_token")}
	}
	u := &WebUser{OpenID: tok.OpenID, UnionID: tok.UnionID, Scope: tok.Scope, Snapshot: tok.IsSnapshotUser == 1}
	if u.Snapshot || !userInfo {
		return u, nil
	}
	if u.Profile, err = c.userInfo(ctx, tok.AccessToken, tok.OpenID); err != nil {
		return nil, err
	}
	if u.Profile.UnionID == "" {
		u.Profile.UnionID = u.UnionID
	}
	if u.UnionID == "" {
		u.UnionID = u.Profile.UnionID
	}
	return u, nil
}

// userInfo fetches sns/userinfo with a web login's access_token.
func (c *Client) userInfo(ctx context.Context, accessToken, openid string) (*Profile, error) {
	const api = "sns/userinfo"
	q := url.Values{"access_token": {accessToken}, "openid": {openid}, "lang": {"zh_CN"}}
	var p Profile
	err := c.call(ctx, request{
		api: api, method: http.MethodGet, path: "/sns/userinfo", query: q,
		idempotent: true, secrets: []string{accessToken},
	}, &p)
	if err != nil {
		return nil, err
	}
	if p.OpenID != openid {
		return nil, &UpstreamError{API: api, Err: errors.New("reply names another openid")}
	}
	return &p, nil
}
