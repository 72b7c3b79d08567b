// Package login is the login of a mini-program user: the Provider seam
// that each platform (WeChat, and later others) plugs into, the merge of
// concurrent and replayed logins with one code, and the flow that turns a
// provider's identity into a stored session.
package login

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"go.uber.org/zap"
)

// Identity is who a login code names on its platform.
type Identity struct {
	// Platform names the platform that vouched for the user: "wechat",
	// "qq", "douyin", "alipay", "baidu" or "kuaishou".
	Platform string
	// Surface is where the user logged in: "mp" (a mini-program), "oa"
	// (WeChat's in-app browser, official account OAuth) or "qr" (a
	// website's QR login). Empty means "mp".
	Surface string
	// AppID is the app on the platform the code was made for.
	AppID string
	// OpenID identifies the user within the app.
	OpenID string
	// UnionID identifies the user across the developer's apps on the
	// platform; empty when the platform gives none.
	UnionID string
	// SessionKey is the platform's secret for this user's session: it
	// decrypts the user's data and signs their raw data. It never leaves
	// the server: it is kept sealed in the store, never logged, never
	// answered to a client or sent to the app hook.
	SessionKey string
	// Anonymous is set when OpenID names a device, not a person (Douyin's
	// anonymous_openid of a guest who has not logged in).
	Anonymous bool
	// AnonymousOpenID is the device's anonymous openid given beside a
	// real login (Douyin), so the app can merge a guest's data into the
	// user's.
	AnonymousOpenID string
	// UserInfo is the profile the platform gave with the login (web
	// login's sns/userinfo, without tokens or privilege lists); nil when
	// it gave none.
	UserInfo json.RawMessage
}

// PlatformConfig is what the provider of a mini-program platform other than
// WeChat is built from: the handler's platform block, placeholders
// resolved. Each platform package has New(PlatformConfig) returning its
// Provider, or an error naming the field that is wrong (a key that does not
// parse), for caddy validate.
type PlatformConfig struct {
	// AppID is the app's id on the platform (Baidu: the AppKey).
	AppID string
	// AppSecret is the app's secret (Baidu: sk); not for Alipay.
	AppSecret string
	// PrivateKey is Alipay's app private key (RSA2, PEM PKCS#1 or PKCS#8,
	// or bare base64), which signs gateway requests.
	PrivateKey string
	// PlatformPublicKey is Alipay's public key (PEM or bare base64), which
	// verifies the gateway's answers and sealed phone numbers.
	PlatformPublicKey string
	// AESKey is Alipay's content key (base64 of 16 bytes), which opens
	// sealed phone numbers.
	AESKey string
	// APIBase is the platform's API origin (Alipay: the gateway URL);
	// empty means the platform's own.
	APIBase string
	// Timeout bounds each call to the platform; 0 means 5 s.
	Timeout time.Duration
	// Client makes the calls; nil means a client with Timeout.
	Client *http.Client
	// ConfigError, when set, is called once per answer that says the app
	// is misconfigured (platform_config), with the platform's code, so the
	// caller counts it; the provider logs it at error level itself.
	ConfigError func(errcode string)
}

// Code is what a client sends to log in: the login code its platform gave
// it, and for Douyin the guest's anonymous_code (either or both).
type Code struct {
	// Code is the platform's login code (wx.login, tt.login, ...).
	Code string
	// AnonymousCode is Douyin's anonymous_code; empty elsewhere.
	AnonymousCode string
}

// Provider exchanges a login code for the user's identity on one platform.
//
// Errors are *apierr.Error values of the contract: invalid_code (401),
// risky_user (403), rate_limited (429 with Retry-After) and upstream_error
// (502), with the platform's errcode only when it sent one. The platform's
// own message goes to log only: it can name the server's address.
type Provider interface {
	Exchange(ctx context.Context, log *zap.Logger, code Code) (*Identity, error)
}

// Encrypted is user data the client got from its platform, sealed with the
// session key.
type Encrypted struct {
	Data string // encryptedData
	IV   string // iv
	// RawData and Signature, when given, are checked against the session
	// key before anything is decrypted.
	RawData   string
	Signature string
}

// Decrypter is a Provider that opens the user data its platform sealed with
// the session key. Errors are *apierr.Error: invalid_signature when the
// signature does not match, decrypt_failed saying why otherwise.
type Decrypter interface {
	DecryptUserData(sessionKey string, in Encrypted) (json.RawMessage, error)
}

// PhoneNumberer is a Provider that resolves a phone number code (WeChat's
// getPhoneNumber button) naming the user openid, so the platform refuses
// another user's code. asked reports whether the platform was asked at
// all, so a caller's quota counts only calls that reached it. Errors are
// as Provider's.
type PhoneNumberer interface {
	PhoneNumber(ctx context.Context, log *zap.Logger, code, openid string) (info json.RawMessage, asked bool, err error)
}

// EncryptedPhoner is a Provider whose phone number comes as user data sealed
// with the session key (the getPhoneNumber answer's encryptedData and iv on
// QQ, Douyin, Baidu and Kuaishou). It answers the contract's phone shape
// {"phone_number", "pure_phone_number", "country_code"}. Errors are as
// Decrypter's.
type EncryptedPhoner interface {
	PhoneFromEncrypted(sessionKey string, in Encrypted) (json.RawMessage, error)
}

// SealedPhoner is a Provider whose phone number comes sealed by the
// platform with the app's own key rather than by a code (Alipay's
// my.getPhoneNumber): raw is the text the mini-program got, posted
// unchanged. It answers the contract's phone shape {"phone_number",
// "pure_phone_number", "country_code"}. Errors are *apierr.Error.
type SealedPhoner interface {
	OpenPhone(raw []byte) (json.RawMessage, error)
}

// SessionChecker is a Provider that asks its platform whether sessionKey is
// still openid's valid session key. An invalid key is (false, nil); errors
// are as Provider's.
type SessionChecker interface {
	CheckSessionKey(ctx context.Context, openid, sessionKey string) (valid bool, err error)
}

// AccessTokener is a Provider that hands the app its platform access token,
// so the cluster and its apps share one token and one quota. With stale
// empty it returns the current token; with the token a platform call just
// refused it replaces that token once for the whole cluster, or returns
// the current one when another caller already did. Errors are as
// Provider's.
type AccessTokener interface {
	AccessToken(ctx context.Context, log *zap.Logger, stale string) (token string, expiresAt time.Time, err error)
}
