package guard

import (
	"net/http"
	"net/textproto"
	"sort"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/wxauth/caddy-wxauth/internal/users"
)

// identityPrefix is the prefix of every identity header wxauth sets; the
// client's copies are always removed so they cannot be spoofed.
const identityPrefix = "X-Wx-"

// Identity is a verified token, prepared once so that a repeat request only
// copies ready-made header values and maps boxed placeholder values.
type Identity struct {
	sid      string
	openid   string
	key      string // the user record's key (users.KeyRule)
	platform string // "wechat" for tokens without plt
	appID    string
	surface  string // "mp" for tokens without srf
	anon     bool
	expNanos int64 // token expiry plus the verifier's leeway, unix nanos
	exp      int64 // token expiry, unix nanos; 0 when the token has none
	iat      int64 // when the token was issued, unix nanos; 0 when it does not say
	created  int64 // when the session began, unix nanos (for ending every session of a user)

	// face holds the headers and placeholders of the user's current claims
	// as this token's app sees the user, shared by every cached token of
	// that face, so a claim change reaches them all without touching each.
	face *face

	checked  atomic.Int64 // unix nanos when the session was last confirmed in the store
	checking atomic.Bool  // a background confirmation is running
	dead     atomic.Bool  // the session has ended: refuse at once
}

// OpenID is the caller's openid.
func (id *Identity) OpenID() string { return id.openid }

// PastHalfLife reports whether the caller's token, at now, has lived half
// its life or more: a cookie that keeps being used is re-issued then.
func (id *Identity) PastHalfLife(now time.Time) bool {
	if id.iat == 0 || id.exp == 0 {
		return false
	}
	return now.UnixNano()-id.iat >= (id.exp-id.iat)/2
}

// User is the key of the caller's user record (users.KeyRule).
func (id *Identity) User() string { return id.key }

// Platform is the caller's platform ("wechat", "qq", ...).
func (id *Identity) Platform() string { return id.platform }

// AppID is the app the caller logged in to.
func (id *Identity) AppID() string { return id.appID }

// Anonymous reports whether the caller is a device, not a person (a
// Douyin guest logged in by anonymous_code).
func (id *Identity) Anonymous() bool { return id.anon }

// Surface is where the caller logged in: "mp", "oa" or "qr".
func (id *Identity) Surface() string { return id.surface }

// SID is the id of the caller's session.
func (id *Identity) SID() string { return id.sid }

// view is what the next handler gets for a user: identity headers and
// {http.auth.user.*} placeholders, built once per claim change.
type view struct {
	headers []headerValue
	repl    []replValue
	// replFn serves repl to the request's replacer (Config.Placeholders):
	// unlike Caddy's Replacer.Set it does not allocate the replacer's map on
	// every request.
	replFn func(key string) (any, bool)
}

type headerValue struct {
	name, value string
}

type replValue struct {
	key string
	val any
}

// user is the cached state of one user record: the faces it shows to the
// apps the guard's tokens are for (one, unless link_by unionid joins the
// person's logins on several apps). Guarded by the guard's users lock.
type user struct {
	key   string
	faces []*face
}

// faceID is how one app sees a user: everything in the identity headers
// but the claims.
type faceID struct {
	openid, unionid, platform, appID, surface string
	anon                                      bool
}

// face is the cached state of one faceID.
type face struct {
	faceID
	view atomic.Pointer[view]
	ids  []*Identity // cached identities (a few); guarded by the guard's users lock
}

// newView prepares what the next handler gets for face f with claims, which
// are mapped to headers through claimHeaders; log gets the warning about
// claims that cannot be headers.
func newView(f faceID, claims map[string]any, claimHeaders map[string]string, log *zap.Logger) *view {
	v := &view{}
	v.headers = append(v.headers,
		headerValue{identityPrefix + "Openid", f.openid},
		headerValue{identityPrefix + "Platform", f.platform},
		headerValue{identityPrefix + "Surface", f.surface},
		headerValue{identityPrefix + "Appid", f.appID})
	if f.unionid != "" {
		v.headers = append(v.headers, headerValue{identityPrefix + "Unionid", f.unionid})
	}
	if f.anon {
		v.headers = append(v.headers, headerValue{identityPrefix + "Anonymous", "1"})
	}
	v.repl = append(v.repl,
		replValue{"http.auth.user.id", f.openid},
		replValue{"http.auth.user.openid", f.openid},
		replValue{"http.auth.user.unionid", f.unionid},
		replValue{"http.auth.user.platform", f.platform},
		replValue{"http.auth.user.surface", f.surface},
		replValue{"http.auth.user.app_id", f.appID},
	)
	for _, x := range extraClaims(claims, claimHeaders, log) {
		v.headers = append(v.headers, headerValue{x.header, x.value})
		v.repl = append(v.repl, replValue{"http.auth.user." + x.name, x.value})
	}
	v.replFn = v.lookup
	return v
}

// lookup answers the view's placeholders.
func (v *view) lookup(key string) (any, bool) {
	for i := range v.repl {
		if v.repl[i].key == key {
			return v.repl[i].val, true
		}
	}
	return nil, false
}

// anonymous is the view of a token-less request in optional mode: empty
// placeholders, so templates upstream never see them unreplaced.
var anonymous = func() *view {
	v := &view{repl: []replValue{
		{"http.auth.user.id", ""}, {"http.auth.user.openid", ""}, {"http.auth.user.unionid", ""},
		{"http.auth.user.platform", ""}, {"http.auth.user.surface", ""}, {"http.auth.user.app_id", ""},
	}}
	v.replFn = v.lookup
	return v
}()

// apply hands the view to the next handler, its placeholders through
// placeholders.
func (v *view) apply(r *http.Request, placeholders func(*http.Request, func(string) (any, bool))) {
	// Fresh values (one allocation for all of them): a later handler may
	// edit header values in place, e.g. a request_header replace, and must
	// not change the cached view.
	vals := make([]string, len(v.headers))
	for i, h := range v.headers {
		vals[i] = h.value
		r.Header[h.name] = vals[i : i+1 : i+1]
	}
	placeholders(r, v.replFn)
}

// extraClaim is a claim added by the app's login hook, ready to be handed
// upstream as a header (X-Wx-<Name> unless mapped) and as placeholder
// {http.auth.user.<name>}.
type extraClaim struct {
	name   string
	header string
	value  string
}

// extraClaims flattens claims in a stable order. A value that is not a
// valid header value (stored before claims were checked on the way in) is
// left out, with one warning for the view: a bad claim must not cost the
// user every request.
func extraClaims(m map[string]any, headers map[string]string, log *zap.Logger) []extraClaim {
	if len(m) == 0 {
		return nil
	}
	out := make([]extraClaim, 0, len(m))
	var skipped []string
	for k, v := range m {
		if !users.PlainName(k) || users.ReservedClaim(k) {
			continue
		}
		s, err := users.ClaimText(v)
		if err != nil {
			skipped = append(skipped, k)
			continue
		}
		hdr := headers[k]
		if hdr == "" {
			hdr = identityPrefix + k
		}
		out = append(out, extraClaim{name: k, header: textproto.CanonicalMIMEHeaderKey(hdr), value: s})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	if len(skipped) > 0 {
		sort.Strings(skipped)
		// The names only: a value may be personal, and is what broke.
		log.Warn("claims left out of the identity headers: not a string, number or boolean fit for a header", zap.Strings("claims", skipped))
	}
	return out
}

// TokenClaims are the claims a new token carries in ext: the ones fit for
// a header, so a token never hands on a value or a name stored before
// claims were checked. m itself is returned when all are fit.
func TokenClaims(m map[string]any) map[string]any {
	fit := make(map[string]any, len(m))
	for k, v := range m {
		if _, err := users.ClaimText(v); err == nil && !users.ReservedClaim(k) {
			fit[k] = v
		}
	}
	switch {
	case len(fit) == len(m):
		return m
	case len(fit) == 0:
		return nil
	}
	return fit
}
