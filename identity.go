package wxauth

import (
	"net/http"
	"sync/atomic"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
)

// identityPrefix is the prefix of every identity header wxauth sets; the
// client's copies are always removed so they cannot be spoofed.
const identityPrefix = "X-Wx-"

// identity is a verified token, prepared once so that a repeat request only
// copies ready-made header values and maps boxed placeholder values.
type identity struct {
	sid      string
	openid   string
	expNanos int64 // token expiry plus the verifier's leeway, unix nanos
	created  int64 // when the session began, unix nanos (for ending every session of a user)

	// user holds the headers and placeholders of the user's current claims,
	// shared by every cached token of the openid, so a claim change reaches
	// them all without touching each.
	user *user

	checked  atomic.Int64 // unix nanos when the session was last confirmed in the store
	checking atomic.Bool  // a background confirmation is running
	dead     atomic.Bool  // the session has ended: refuse at once
}

// view is what the next handler gets for a user: identity headers and
// {http.auth.user.*} placeholders, built once per claim change.
type view struct {
	headers []headerValue
	repl    []replValue
	// replFn serves repl to the request's replacer: unlike Replacer.Set it
	// does not allocate the replacer's map on every request.
	replFn caddy.ReplacerFunc
}

type headerValue struct {
	name, value string
}

type replValue struct {
	key string
	val any
}

// user is the cached state of one openid.
type user struct {
	openid  string
	unionid string // guarded by the guard's users lock
	view    atomic.Pointer[view]
	ids     []*identity // cached identities of the user (a few); guarded by the guard's users lock
}

// newView prepares what the next handler gets for openid with claims, which
// are mapped to headers through claimHeaders; log gets the warning about
// claims that cannot be headers.
func newView(openid, unionid string, claims map[string]any, claimHeaders map[string]string, log *zap.Logger) *view {
	v := &view{}
	v.headers = append(v.headers, headerValue{identityPrefix + "Openid", openid})
	if unionid != "" {
		v.headers = append(v.headers, headerValue{identityPrefix + "Unionid", unionid})
	}
	v.repl = append(v.repl,
		replValue{"http.auth.user.id", openid},
		replValue{"http.auth.user.openid", openid},
		replValue{"http.auth.user.unionid", unionid},
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
	}}
	v.replFn = v.lookup
	return v
}()

// apply hands the view to the next handler.
func (v *view) apply(r *http.Request) {
	// Fresh values (one allocation for all of them): a later handler may
	// edit header values in place, e.g. a request_header replace, and must
	// not change the cached view.
	vals := make([]string, len(v.headers))
	for i, h := range v.headers {
		vals[i] = h.value
		r.Header[h.name] = vals[i : i+1 : i+1]
	}
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Map(v.replFn)
	}
}
