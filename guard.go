package wxauth

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/wxauth/caddy-wxauth/session"
	"github.com/wxauth/caddy-wxauth/token"
)

const (
	// recheckEvery bounds how long a cached token is trusted before its session
	// is looked up again, so a logout on another instance that shares the store
	// takes effect within this time (the contract allows 10s).
	recheckEvery = 5 * time.Second
	// maxCachedTokens bounds the verified-token cache.
	maxCachedTokens = 100_000
	// identityPrefix is the prefix of every identity header wxauth sets; the
	// client's copies are always removed so they cannot be spoofed.
	identityPrefix = "X-Wx-"
)

// identity is a verified token, prepared once so that a repeat request only
// copies ready-made header values and maps boxed placeholder values.
type identity struct {
	sid      string
	openid   string
	exp      int64 // unix seconds
	expNanos int64

	headers []headerValue
	repl    []replValue
	// replFn serves repl to the request's replacer: unlike Replacer.Set it
	// does not allocate the replacer's map on every request.
	replFn caddy.ReplacerFunc

	checked atomic.Int64 // unix nanos when the session was last confirmed in the store
}

type headerValue struct {
	name, value string
}

type replValue struct {
	key string
	val any
}

func newIdentity(c *token.Claims, claimHeaders map[string]string) *identity {
	id := &identity{sid: c.SessionID, openid: c.Subject}
	if c.ExpiresAt != nil {
		id.exp = c.ExpiresAt.Unix()
		id.expNanos = c.ExpiresAt.UnixNano()
	}
	id.headers = append(id.headers, headerValue{identityPrefix + "Openid", c.Subject})
	if c.UnionID != "" {
		id.headers = append(id.headers, headerValue{identityPrefix + "Unionid", c.UnionID})
	}
	id.repl = append(id.repl,
		replValue{"http.auth.user.id", c.Subject},
		replValue{"http.auth.user.openid", c.Subject},
		replValue{"http.auth.user.unionid", c.UnionID},
	)
	for _, x := range extraClaims(c.Extra, claimHeaders) {
		id.headers = append(id.headers, headerValue{x.header, x.value})
		id.repl = append(id.repl, replValue{"http.auth.user." + x.name, x.value})
	}
	id.replFn = id.lookup
	return id
}

// lookup answers the identity's placeholders.
func (id *identity) lookup(key string) (any, bool) {
	for i := range id.repl {
		if id.repl[i].key == key {
			return id.repl[i].val, true
		}
	}
	return nil, false
}

// anonymous is the identity of a token-less request in optional mode: empty
// placeholders, so templates upstream never see them unreplaced.
var anonymous = func() *identity {
	id := &identity{repl: []replValue{
		{"http.auth.user.id", ""}, {"http.auth.user.openid", ""}, {"http.auth.user.unionid", ""},
	}}
	id.replFn = id.lookup
	return id
}()

// apply hands the identity to the next handler.
func (id *identity) apply(r *http.Request) {
	// Fresh values (one allocation for all of them): a later handler may
	// edit header values in place, e.g. a request_header replace, and must
	// not change the cached identity.
	vals := make([]string, len(id.headers))
	for i, h := range id.headers {
		vals[i] = h.value
		r.Header[h.name] = vals[i : i+1 : i+1]
	}
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Map(id.replFn)
	}
}

// stripIdentity removes every client-sent identity header: X-Wx-* and the
// headers that login hook claims are mapped to.
func stripIdentity(h http.Header, also []string) {
	for k := range h {
		if strings.HasPrefix(k, identityPrefix) {
			delete(h, k)
		}
	}
	for _, k := range also {
		delete(h, k)
	}
}

// guard checks tokens on protected requests.
type guard struct {
	h *Handler

	clock *coarseClock

	mu    sync.RWMutex
	cache map[string]*identity

	revokedMu sync.Mutex
	revoked   map[string]int64 // sid -> token expiry; sessions this instance logged out
}

func newGuard(ctx context.Context, h *Handler) *guard {
	return &guard{h: h, clock: startClock(ctx), cache: make(map[string]*identity), revoked: make(map[string]int64)}
}

// serve is the protected path.
func (g *guard) serve(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	stripIdentity(r.Header, g.h.strip)
	tok := g.find(r)
	if tok == "" {
		if g.h.Optional {
			metrics.checkAnonymous.Inc()
			anonymous.apply(r)
			return next.ServeHTTP(w, r)
		}
		metrics.checkMissing.Inc()
		return writeError(w, errMissingToken)
	}
	id, err := g.check(r.Context(), tok)
	if err != nil {
		metrics.checkInvalid.Inc()
		return writeError(w, err)
	}
	id.apply(r)
	return next.ServeHTTP(w, r)
}

func (g *guard) hookHeaders() map[string]string {
	if g.h.LoginHook == nil {
		return nil
	}
	return g.h.LoginHook.ClaimHeaders
}

func (g *guard) find(r *http.Request) string {
	for i := range g.h.TokenSources {
		if t := g.h.TokenSources[i].extract(r); t != "" {
			return t
		}
	}
	return ""
}

// check verifies tok, from the cache when it was verified before.
func (g *guard) check(ctx context.Context, tok string) (*identity, *apiError) {
	g.mu.RLock()
	id := g.cache[tok]
	g.mu.RUnlock()
	if id != nil {
		n := g.clock.now()
		if n >= id.expNanos {
			g.mu.Lock()
			delete(g.cache, tok)
			g.mu.Unlock()
			return nil, invalidToken("the token has expired")
		}
		if n-id.checked.Load() < int64(recheckEvery) {
			metrics.checkCached.Inc()
			return id, nil
		}
		if err := g.confirm(ctx, id, time.Now()); err != nil {
			g.mu.Lock()
			delete(g.cache, tok)
			g.mu.Unlock()
			return nil, err
		}
		return id, nil
	}

	now := time.Now()
	claims, err := g.h.tokens.Verify(tok)
	if err != nil {
		if c := g.h.logger.Check(zapcore.DebugLevel, "token refused"); c != nil {
			c.Write(zap.String("reason", err.Error()))
		}
		return nil, invalidToken(tokenReason(err))
	}
	id = newIdentity(claims, g.hookHeaders())
	if err := g.confirm(ctx, id, now); err != nil {
		return nil, err
	}
	g.put(tok, id, now)
	metrics.checkOK.Inc()
	return id, nil
}

// confirm looks the token's session up in the store. A store that cannot be
// reached does not break issued tokens: the signature stands and the lookup is
// retried soon.
func (g *guard) confirm(ctx context.Context, id *identity, now time.Time) *apiError {
	if g.isRevoked(id.sid) {
		return invalidToken("the session has ended")
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	s, err := g.h.sessions.Get(ctx, id.sid)
	switch {
	case err == nil:
		if s.OpenID != id.openid {
			return invalidToken("the token does not match its session")
		}
		id.checked.Store(now.UnixNano())
	case errors.Is(err, session.ErrNotFound):
		return invalidToken("the session has ended")
	default:
		g.h.logger.Warn("session store unreachable; accepting signed token", zap.Error(err))
		id.checked.Store(now.Add(time.Second - recheckEvery).UnixNano())
	}
	return nil
}

func (g *guard) put(tok string, id *identity, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.cache) >= maxCachedTokens {
		for k, v := range g.cache {
			if now.Unix() >= v.exp {
				delete(g.cache, k)
			}
		}
		if len(g.cache) >= maxCachedTokens {
			clear(g.cache)
		}
	}
	g.cache[tok] = id
}

// revoke makes this instance refuse the session's tokens at once.
func (g *guard) revoke(sid string, exp int64) {
	now := time.Now().Unix()
	g.revokedMu.Lock()
	for k, e := range g.revoked {
		if e <= now {
			delete(g.revoked, k)
		}
	}
	g.revoked[sid] = exp
	g.revokedMu.Unlock()

	g.mu.Lock()
	for k, v := range g.cache {
		if v.sid == sid {
			delete(g.cache, k)
		}
	}
	g.mu.Unlock()
}

func (g *guard) isRevoked(sid string) bool {
	g.revokedMu.Lock()
	_, ok := g.revoked[sid]
	g.revokedMu.Unlock()
	return ok
}

// tokenReason turns a verification error into a message for the client
// without echoing the token.
func tokenReason(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	if errors.Is(err, jwt.ErrTokenExpired) {
		return "the token has expired"
	}
	return "the token is not valid: " + msg
}
