// Package token issues and verifies wxauth's "third session" tokens: JWTs
// signed with HS256 (default) or EdDSA, whose subject is the user's openid
// on a platform (plt, WeChat when absent) and whose audience is the app_id
// the user logged in to. It also manages
// the signing keys: generation, persistence in a shared store, rotation.
package token

import (
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// ErrInvalid is wrapped by every error of Tokens.Verify, together with
// one of the kinds below and the jwt/v5 sentinel of the cause, if any
// (e.g. jwt.ErrTokenExpired).
var ErrInvalid = errors.New("token: invalid")

// Kinds of Verify errors: each error of Tokens.Verify wraps exactly one,
// so callers can tell the client why with errors.Is instead of reading the
// message. None of them carries the token or key material.
var (
	// ErrMalformed means the string is not a well-formed token: empty,
	// longer than MaxTokenLen, not three base64url parts, a header or
	// claims that do not decode, a kid that is not a string.
	ErrMalformed = errors.New("token: malformed")
	// ErrUnknownKey means the token names a key the keyring does not hold
	// (rotated out, or of another deployment), or names none while the
	// keyring holds several.
	ErrUnknownKey = errors.New("token: unknown signing key")
	// ErrBadSignature means the signature does not verify with the named
	// key, or the token's algorithm is not allowed or not that key's.
	ErrBadSignature = errors.New("token: bad signature")
	// ErrAudience means the token was issued for another app_id.
	ErrAudience = errors.New("token: issued for another audience")
	// ErrExpired means the token's exp has passed, beyond the leeway.
	ErrExpired = errors.New("token: expired")
	// ErrClaims means a claim wxauth requires is missing or out of place:
	// exp, iat, aud, sub or sid missing, iat in the future, iss not ours.
	ErrClaims = errors.New("token: missing or bad claims")
)

// verifyError is an error of Verify. Its message is the cause's, after
// "token: invalid: ".
type verifyError struct {
	kind  error // one of the kinds above
	cause error
}

func (e *verifyError) Error() string   { return ErrInvalid.Error() + ": " + e.cause.Error() }
func (e *verifyError) Unwrap() []error { return []error{ErrInvalid, e.kind, e.cause} }

// kindOf sorts an error of the jwt parser (or of keyfunc) into a kind.
func kindOf(err error) error {
	switch {
	case errors.Is(err, errBadKid), errors.Is(err, jwt.ErrTokenMalformed):
		return ErrMalformed
	case errors.Is(err, errUnknownKid), errors.Is(err, errNoKid):
		return ErrUnknownKey
	case errors.Is(err, errAlgMatch), errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return ErrBadSignature
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return ErrAudience
	case errors.Is(err, jwt.ErrTokenExpired):
		return ErrExpired
	}
	return ErrClaims
}

// MaxTokenLen bounds the work spent on a presented token: longer strings
// are refused before any decoding. Issue refuses to make longer tokens.
const MaxTokenLen = 4096

// Defaults of Config.
const (
	DefaultIssuer = "wxauth"
	DefaultTTL    = 2 * time.Hour
	DefaultLeeway = 30 * time.Second
)

// Claims are the claims of a wxauth token.
type Claims struct {
	// RegisteredClaims holds iss, sub (the openid), aud (the app_id), exp
	// and iat.
	jwt.RegisteredClaims
	// SessionID is the server-side session the token belongs to.
	SessionID string `json:"sid"`
	// UnionID is the user's unionid on the platform, when known.
	UnionID string `json:"unionid,omitempty"`
	// Platform is the platform the user logged in on ("wechat", "qq",
	// "douyin", "alipay", "baidu", "kuaishou"); empty in tokens issued
	// before platforms existed, which are WeChat's.
	Platform string `json:"plt,omitempty"`
	// Surface is where the user logged in: "mp" (a mini-program), "oa" or
	// "qr" (web login); empty means "mp".
	Surface string `json:"srf,omitempty"`
	// Anonymous marks a token whose subject names a device, not a person
	// (a Douyin guest's anonymous_openid).
	Anonymous bool `json:"anon,omitempty"`
	// Extra holds claims added by the app's login hook (e.g. uid, roles).
	// After Verify, JSON numbers in it are json.Number, so large integer
	// ids keep their precision.
	Extra map[string]any `json:"ext,omitempty"`
}

// PlatformWeChat is the platform of a token without plt.
const PlatformWeChat = "wechat"

// App is an app whose users' tokens a Tokens accepts: tokens for it carry
// aud = AppID and plt = Platform.
type App struct {
	// Platform names the app's platform ("wechat", "qq", ...).
	Platform string
	// AppID is the app's id on the platform.
	AppID string
}

// Subject is who a token is for, and where they logged in.
type Subject struct {
	// OpenID is the user's openid in the app (the sub claim); required.
	OpenID string
	// UnionID is the user's unionid, when known.
	UnionID string
	// SessionID is the server-side session; required.
	SessionID string
	// Platform is the user's platform; empty means WeChat.
	Platform string
	// AppID is the app the user logged in to (the aud claim); empty means
	// Config.Audience.
	AppID string
	// Surface is "mp", "oa" or "qr"; empty means "mp".
	Surface string
	// Anonymous marks a device's anonymous openid (Douyin's guests).
	Anonymous bool
	// Extra holds claims added by the app (ext).
	Extra map[string]any
}

// Config configures Tokens.
type Config struct {
	// Issuer is the iss claim; default "wxauth".
	Issuer string
	// Audience is the WeChat mini-program's app_id: the aud claim of
	// Issue's tokens. Audience or Apps is required.
	Audience string
	// Apps are the other apps whose tokens are accepted (other platforms,
	// web logins). A token is accepted only when its (plt, aud) is
	// (wechat, Audience) or one of these.
	Apps []App
	// TTL is the lifetime of issued tokens; default 2h.
	TTL time.Duration
	// Leeway is the clock skew allowed on exp and iat; default 30s.
	Leeway time.Duration
}

// Tokens issues and verifies tokens. It is safe for concurrent use; the
// keyring can be swapped at any time (key rotation).
type Tokens struct {
	cfg    Config
	ring   atomic.Pointer[Keyring]
	parser *jwt.Parser
}

// New returns Tokens for cfg, signing and verifying with ring.
func New(cfg Config, ring *Keyring) (*Tokens, error) {
	if cfg.Audience == "" && len(cfg.Apps) == 0 {
		return nil, errors.New("token: audience (app_id) is required")
	}
	if cfg.Audience != "" {
		cfg.Apps = append([]App{{PlatformWeChat, cfg.Audience}}, cfg.Apps...)
	}
	if cfg.Issuer == "" {
		cfg.Issuer = DefaultIssuer
	}
	switch {
	case cfg.TTL < 0:
		return nil, fmt.Errorf("token: negative ttl %s", cfg.TTL)
	case cfg.TTL == 0:
		cfg.TTL = DefaultTTL
	}
	switch {
	case cfg.Leeway < 0:
		return nil, fmt.Errorf("token: negative leeway %s", cfg.Leeway)
	case cfg.Leeway == 0:
		cfg.Leeway = DefaultLeeway
	}
	if ring == nil {
		return nil, errors.New("token: keyring is required")
	}
	t := &Tokens{
		cfg: cfg,
		// The method list keeps "none" and every other algorithm out;
		// keyfunc then pins each token to the algorithm of its key.
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{HS256, EdDSA}),
			// aud is checked with plt in Verify: an app id is unique
			// only within its platform.
			jwt.WithIssuer(cfg.Issuer),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(cfg.Leeway),
			jwt.WithStrictDecoding(), // one encoding per token: no malleable signatures
			jwt.WithJSONNumber(),
		),
	}
	t.ring.Store(ring)
	return t, nil
}

// Config returns the effective configuration, defaults applied; Apps
// starts with (wechat, Audience) when Audience is set.
func (t *Tokens) Config() Config { return t.cfg }

// SetKeyring replaces the keyring atomically; nil is ignored.
func (t *Tokens) SetKeyring(r *Keyring) {
	if r != nil {
		t.ring.Store(r)
	}
}

// Keyring returns the keyring in use.
func (t *Tokens) Keyring() *Keyring { return t.ring.Load() }

// Issue signs a token for openid in session sid, valid from now for the
// configured TTL. unionid and extra are optional. It returns the token and
// its expiry (whole seconds, as in the token).
func (t *Tokens) Issue(openid, unionid, sid string, extra map[string]any, now time.Time) (string, time.Time, error) {
	return t.IssueFor(Subject{OpenID: openid, UnionID: unionid, SessionID: sid, Extra: extra}, now, time.Time{})
}

// ErrNoLifetime is returned by IssueUntil when notAfter leaves the token
// no whole second to live.
var ErrNoLifetime = errors.New("token: the expiry cap is not after the issue time")

// IssueUntil is Issue for a session with an age limit: the token expires at
// now + TTL or at notAfter, whichever is earlier. exp and iat are whole
// seconds (now and notAfter rounded down), so exp never passes notAfter; the
// token's lifetime is exp - iat. A zero notAfter caps nothing.
func (t *Tokens) IssueUntil(openid, unionid, sid string, extra map[string]any, now, notAfter time.Time) (string, time.Time, error) {
	return t.IssueFor(Subject{OpenID: openid, UnionID: unionid, SessionID: sid, Extra: extra}, now, notAfter)
}

// IssueFor is IssueUntil for any subject: a user of any app the Tokens
// accepts, on any platform and surface.
func (t *Tokens) IssueFor(sub Subject, now, notAfter time.Time) (string, time.Time, error) {
	if sub.OpenID == "" || sub.SessionID == "" {
		return "", time.Time{}, errors.New("token: issue needs an openid and a session id")
	}
	if sub.Platform == "" {
		sub.Platform = PlatformWeChat
	}
	if sub.AppID == "" {
		sub.AppID = t.cfg.Audience
	}
	if !t.serves(sub.Platform, sub.AppID) {
		return "", time.Time{}, fmt.Errorf("token: app %q of platform %s is not one this issuer serves", sub.AppID, sub.Platform)
	}
	now = now.Truncate(time.Second)
	exp := now.Add(t.cfg.TTL)
	if !notAfter.IsZero() {
		if limit := notAfter.Truncate(time.Second); limit.Before(exp) {
			exp = limit
		}
		if !exp.After(now) {
			return "", time.Time{}, ErrNoLifetime
		}
	}
	claims := &Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    t.cfg.Issuer,
			Subject:   sub.OpenID,
			Audience:  jwt.ClaimStrings{sub.AppID},
			ExpiresAt: jwt.NewNumericDate(exp),
			IssuedAt:  jwt.NewNumericDate(now),
			// Every token is another: two issued in one second for one
			// session (a refresh, a replayed login) never look alike.
			ID: rand.Text()[:16],
		},
		SessionID: sub.SessionID,
		UnionID:   sub.UnionID,
		Platform:  sub.Platform,
		Surface:   sub.Surface,
		Anonymous: sub.Anonymous,
		Extra:     sub.Extra,
	}
	k := t.ring.Load().Signing()
	var (
		method jwt.SigningMethod = jwt.SigningMethodHS256
		key    any               = k.Secret
	)
	if k.Alg == EdDSA {
		method, key = jwt.SigningMethodEdDSA, k.Private
	}
	tok := jwt.NewWithClaims(method, claims)
	tok.Header["kid"] = k.ID
	s, err := tok.SignedString(key)
	if err != nil {
		// jwt's errors here name the key type or the JSON problem, never
		// the claims or the key material.
		return "", time.Time{}, fmt.Errorf("token: signing: %w", err)
	}
	if len(s) > MaxTokenLen {
		return "", time.Time{}, fmt.Errorf("token: issued token is %d bytes, over the %d-byte limit (too many extra claims?)", len(s), MaxTokenLen)
	}
	return s, exp, nil
}

// Verify checks a token's form, signature, key, algorithm and claims, and
// returns its claims. Every error wraps ErrInvalid and one kind
// (ErrMalformed, ErrUnknownKey, ErrBadSignature, ErrAudience, ErrExpired,
// ErrClaims), and says why; none quotes the token. Strings over
// MaxTokenLen bytes or not of the form a.b.c are refused before any
// decoding.
func (t *Tokens) Verify(token string) (*Claims, error) {
	switch {
	case token == "":
		return nil, invalid(ErrMalformed, "empty token")
	case len(token) > MaxTokenLen:
		return nil, invalid(ErrMalformed, "token longer than the limit")
	case strings.Count(token, ".") != 2:
		return nil, invalid(ErrMalformed, "not a JWS compact token")
	}
	claims := new(Claims)
	if _, err := t.parser.ParseWithClaims(token, claims, t.ring.Load().keyfunc); err != nil {
		return nil, &verifyError{kind: kindOf(err), cause: err}
	}
	// jwt checks exp, aud and iss; the claims wxauth relies on are
	// checked here.
	switch {
	case claims.IssuedAt == nil:
		return nil, invalid(ErrClaims, "missing iat")
	case claims.Subject == "":
		return nil, invalid(ErrClaims, "missing sub")
	case claims.SessionID == "":
		return nil, invalid(ErrClaims, "missing sid")
	}
	plt := claims.Platform
	if plt == "" {
		plt = PlatformWeChat
	}
	if len(claims.Audience) == 0 {
		return nil, &verifyError{kind: ErrClaims, cause: fmt.Errorf("%w: aud", jwt.ErrTokenRequiredClaimMissing)}
	}
	if len(claims.Audience) != 1 || !t.serves(plt, claims.Audience[0]) {
		return nil, &verifyError{kind: ErrAudience, cause: fmt.Errorf("%w: not a token of an app this server serves", jwt.ErrTokenInvalidAudience)}
	}
	return claims, nil
}

// serves reports whether tokens of app appID on platform are accepted.
func (t *Tokens) serves(platform, appID string) bool {
	for _, a := range t.cfg.Apps {
		if a.AppID == appID && a.Platform == platform {
			return true
		}
	}
	return false
}

func invalid(kind error, reason string) error {
	return &verifyError{kind: kind, cause: errors.New(reason)}
}
