// Package alipay is the login provider of Alipay mini-programs: the auth
// code of my.getAuthCode exchanged through Alipay's open platform gateway
// (alipay.system.oauth.token, an RSA2-signed call whose answer is verified
// with Alipay's public key), and the phone number my.getPhoneNumber seals
// with the app's AES content key.
//
// Keys are used in Alipay's public key mode (公钥模式): the app's private
// key signs requests, Alipay's public key verifies answers. Certificate
// mode (app_cert_sn, alipay_root_cert_sn, alipay_cert_sn) is not
// supported; a certificate given as a key is refused with a message that
// says so.
//
// Alipay has no session key: an Alipay identity has an empty SessionKey
// and the provider does not decrypt user data (login.Decrypter).
package alipay

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/wxauth/caddy-wxauth/internal/apierr"
	"github.com/wxauth/caddy-wxauth/internal/clock"
	"github.com/wxauth/caddy-wxauth/internal/login"
	"github.com/wxauth/caddy-wxauth/internal/throttle"
)

// Platform is the name of the platform in an Identity and in errors.
const Platform = "alipay"

// DefaultGateway is Alipay's open platform gateway, the default api_base.
const DefaultGateway = "https://openapi.alipay.com/gateway.do"

const (
	// defaultTimeout bounds a gateway call when the config sets none.
	defaultTimeout = 5 * time.Second
	// oauthMethod is the gateway method that exchanges an auth code.
	oauthMethod = "alipay.system.oauth.token"
	// oauthNode is the member of the answer that holds the method's result.
	oauthNode = "alipay_system_oauth_token_response"
	// timestampLayout is the gateway's timestamp, in Beijing time.
	timestampLayout = "2006-01-02 15:04:05"
	// maxAnswer bounds the answer read; Alipay's are well under 4 KiB.
	maxAnswer = 64 << 10
	// maxCode bounds the auth code sent on; Alipay's are 32-40 characters.
	maxCode = 512
	// maxID bounds an open_id or user_id (Alipay's: 16 or about 47).
	maxID = 128
	// configLogEvery is how often each config sub_code is logged at ERROR
	// at most: a wrong key fails every login, the log says so once a minute.
	configLogEvery = time.Minute
)

// Provider logs users of one Alipay mini-program in.
type Provider struct {
	appID     string
	key       *rsa.PrivateKey
	alipayKey *rsa.PublicKey
	aesKey    string // base64 of the content key; "": no phone numbers
	gateway   *url.URL
	client    *http.Client
	timeout   time.Duration
	now       clock.Clock
	zone      *time.Location
	configErr func(errcode string)
	logGate   *throttle.Gate // config sub_codes logged at ERROR
}

// The provider's capabilities. Alipay has no session key, so it is not a
// login.Decrypter.
var (
	_ login.Provider     = (*Provider)(nil)
	_ login.SealedPhoner = (*Provider)(nil)
)

// New returns the provider of cfg. app_id, private_key and the Alipay
// public key are required; aes_key only for phone numbers. Keys are PEM
// (PKCS#1 or PKCS#8 private key, PKIX public key) or bare base64 of the
// DER. An error names the field that is wrong and never quotes a key.
func New(cfg login.PlatformConfig) (*Provider, error) {
	p := &Provider{
		appID: strings.TrimSpace(cfg.AppID), timeout: cfg.Timeout, now: clock.Real,
		zone: beijing(), configErr: cfg.ConfigError,
	}
	// Through p.now, which tests replace.
	p.logGate = throttle.New(configLogEvery, func() time.Time { return p.now() })
	if p.appID == "" {
		return nil, errors.New("alipay: app_id is required: the mini-program's APPID")
	}
	if strings.TrimSpace(cfg.PrivateKey) == "" {
		return nil, errors.New("alipay: private_key is required: the app's RSA2 private key (应用私钥) that signs requests")
	}
	priv, err := parsePrivateKey(cfg.PrivateKey)
	if err != nil {
		return nil, errors.New("alipay: private_key " + err.Error())
	}
	if strings.TrimSpace(cfg.PlatformPublicKey) == "" {
		return nil, errors.New("alipay: alipay_public_key is required: Alipay's public key (支付宝公钥) that verifies its answers")
	}
	pub, err := parsePublicKey(cfg.PlatformPublicKey)
	if err != nil {
		return nil, errors.New("alipay: alipay_public_key " + err.Error())
	}
	if pub.Equal(&priv.PublicKey) {
		return nil, errors.New("alipay: alipay_public_key is the public half of private_key (the 应用公钥): set it to Alipay's public key (支付宝公钥)")
	}
	p.key, p.alipayKey = priv, pub
	if strings.TrimSpace(cfg.AESKey) != "" {
		key, err := parseAESKey(cfg.AESKey)
		if err != nil {
			return nil, errors.New("alipay: aes_key " + err.Error())
		}
		p.aesKey = base64.StdEncoding.EncodeToString(key)
	}
	if p.gateway, err = parseGateway(cfg.APIBase); err != nil {
		return nil, err
	}
	if p.timeout <= 0 {
		p.timeout = defaultTimeout
	}
	p.client = noRedirects(cfg.Client, p.timeout)
	return p, nil
}

// parseGateway checks api_base: an http(s) URL without a query, since
// every query parameter of a gateway call must be signed.
func parseGateway(base string) (*url.URL, error) {
	if base == "" {
		base = DefaultGateway
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("alipay: api_base must be the gateway's http(s) URL without a query, such as " + DefaultGateway)
	}
	return u, nil
}

// noRedirects returns a client that never follows a redirect (an answer
// from elsewhere could not be Alipay's), from c or a new one with timeout.
func noRedirects(c *http.Client, timeout time.Duration) *http.Client {
	var hc http.Client
	if c != nil {
		hc = *c
	} else {
		hc.Timeout = timeout
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &hc
}

// beijing is the zone of the gateway's timestamps. Asia/Shanghai has kept
// +08:00 without daylight saving since 1991, so where the system has no
// time zone data a fixed +08:00 is just as right.
func beijing() *time.Location {
	if loc, err := time.LoadLocation("Asia/Shanghai"); err == nil {
		return loc
	}
	return time.FixedZone("CST", 8*60*60)
}

// Exchange resolves an auth code (my.getAuthCode) with
// alipay.system.oauth.token. The openid is Alipay's open_id, or its
// user_id for apps that still get that; the unionid is its union_id.
func (p *Provider) Exchange(ctx context.Context, log *zap.Logger, code login.Code) (*login.Identity, error) {
	switch {
	case code.AnonymousCode != "":
		return nil, apierr.Unsupported("Alipay has no anonymous login: send the auth code of my.getAuthCode as \"code\"")
	case code.Code == "":
		return nil, apierr.InvalidRequest(`"code" is required: the authCode of my.getAuthCode`)
	case len(code.Code) > maxCode:
		return nil, apierr.InvalidRequest(`"code" is too long to be an Alipay auth code`)
	}
	if log == nil {
		log = zap.NewNop()
	}
	body, err := p.call(ctx, code.Code)
	if err != nil {
		log.Warn("Alipay gateway call failed", zap.Error(err))
		if isTimeout(err) {
			return nil, upstream("Alipay did not answer in time")
		}
		return nil, upstream("Alipay could not be reached or gave an unusable answer")
	}
	a, err := p.readAnswer(log, body)
	if err != nil {
		return nil, err
	}
	if a.refused {
		log.Info("login refused by Alipay", zap.String("alipay_code", a.Code), zap.String("sub_code", a.SubCode), zap.Bool("signed", a.signed))
		return nil, p.fail(log, a)
	}
	openID := a.OpenID
	if openID == "" {
		openID = a.UserID
	}
	if !validID(openID) || a.UnionID != "" && !validID(a.UnionID) {
		log.Warn("Alipay's answer has no usable open_id or user_id")
		return nil, upstream("Alipay's answer names no user")
	}
	return &login.Identity{Platform: Platform, Surface: "mp", AppID: p.appID, OpenID: openID, UnionID: a.UnionID}, nil
}

// validID reports whether id can be an Alipay user id: letters, digits,
// '_' and '-', so it is safe in a header and a store key.
func validID(id string) bool {
	if id == "" || len(id) > maxID {
		return false
	}
	for _, c := range id {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// call makes the signed gateway call for code and returns the answer's
// body. The common parameters and the sign go in the query, the method's
// own (grant_type, code) in the form body, as Alipay's SDKs send them; the
// sign covers them all.
func (p *Provider) call(ctx context.Context, code string) ([]byte, error) {
	params := map[string]string{
		"app_id": p.appID, "method": oauthMethod, "format": "JSON", "charset": "utf-8", "sign_type": "RSA2",
		"timestamp": p.now().In(p.zone).Format(timestampLayout), "version": "1.0",
		"grant_type": "authorization_code", "code": code,
	}
	sign, err := signRSA2(p.key, signContent(params))
	if err != nil {
		return nil, err
	}
	query, form := url.Values{"sign": {sign}}, url.Values{}
	for name, value := range params {
		if name == "grant_type" || name == "code" {
			form.Set(name, value)
		} else {
			query.Set(name, value)
		}
	}
	u := *p.gateway
	u.RawQuery = query.Encode()
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded;charset=utf-8")
	resp, err := p.client.Do(req)
	if err != nil {
		// The URL error quotes the query; its cause is what matters.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, errors.New("gateway answered HTTP " + resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxAnswer {
		return nil, errors.New("gateway answer over 64 KiB")
	}
	return body, nil
}

// isTimeout reports whether err is a call that ran out of time.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// answer is a gateway answer read and checked.
type answer struct {
	tokenAnswer
	refused bool // a refusal, not a login
	signed  bool // the sign verified (a refusal may come unsigned)
}

// readAnswer checks the answer's sign and reads it. A login counts only
// with a sign that verifies; a refusal without any sign is taken as it
// is (Alipay cannot sign for an app id it does not know, and a refusal
// hands nothing out), but one whose sign does not verify is not.
func (p *Provider) readAnswer(log *zap.Logger, body []byte) (*answer, error) {
	ga, err := splitAnswer(body, oauthNode)
	if err != nil {
		log.Warn("Alipay's answer is not the gateway's JSON")
		return nil, upstream("Alipay gave an answer that is not the gateway's JSON")
	}
	if ga.sign != "" && !verifyRSA2(p.alipayKey, ga.raw, ga.sign) {
		p.logConfig(log, "sign", "Alipay's answer does not verify with alipay_public_key: if every login fails so, set it to this app's 支付宝公钥")
		return nil, upstream("Alipay's answer does not verify with alipay_public_key")
	}
	a := &answer{signed: ga.sign != ""}
	if err := json.Unmarshal(ga.raw, &a.tokenAnswer); err != nil {
		log.Warn("Alipay's answer has fields of the wrong type", zap.Error(err))
		return nil, upstream("Alipay gave an answer that is not the gateway's JSON")
	}
	a.refused = a.tokenAnswer.refused(ga.node)
	if !a.refused && !a.signed {
		log.Warn("Alipay's login answer has no sign")
		return nil, upstream("Alipay's answer carries no sign")
	}
	return a, nil
}

// fail maps a refusal to the contract's error. A sub_code that means the
// app is misconfigured is told to ConfigError every time and logged at
// ERROR with its fix at most once a minute per sub_code.
func (p *Provider) fail(log *zap.Logger, a *answer) *apierr.Error {
	e := mapRefusal(&a.tokenAnswer)
	if _, misconfigured := configFixes[a.SubCode]; misconfigured {
		if p.configErr != nil {
			p.configErr(a.SubCode)
		}
		p.logConfig(log, a.SubCode, e.Message)
	}
	return e
}

// logConfig logs at ERROR what to fix, at most once a minute per what.
func (p *Provider) logConfig(log *zap.Logger, what, fix string) {
	if p.logGate.Due(what) {
		log.Error("Alipay login: the app's config needs a fix", zap.String("platform", Platform), zap.String("errcode", what), zap.String("fix", fix))
	}
}
