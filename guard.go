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
	// recheckEvery is how long a cached token is trusted before its session
	// is looked up again, in the background; past staleAfter the request
	// waits for the lookup. A logout on another instance that shares the
	// store so takes effect within staleAfter plus one lookup (lookupTimeout),
	// inside the contract's 10s.
	recheckEvery  = 5 * time.Second
	staleAfter    = 7 * time.Second
	lookupTimeout = 2 * time.Second
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
	expNanos int64 // token expiry plus the verifier's leeway, unix nanos

	headers []headerValue
	repl    []replValue
	// replFn serves repl to the request's replacer: unlike Replacer.Set it
	// does not allocate the replacer's map on every request.
	replFn caddy.ReplacerFunc

	checked  atomic.Int64 // unix nanos when the session was last looked up in the store
	checking atomic.Bool  // a background lookup is running
	dead     atomic.Bool  // the session has ended: refuse at once
}

type headerValue struct {
	name, value string
}

type replValue struct {
	key string
	val any
}

// newIdentity prepares verified claims; leeway is the verifier's, so cached
// tokens expire exactly when a fresh verification would refuse them.
func newIdentity(c *token.Claims, claimHeaders map[string]string, leeway time.Duration) *identity {
	id := &identity{sid: c.SessionID, openid: c.Subject}
	if c.ExpiresAt != nil {
		id.expNanos = c.ExpiresAt.Add(leeway).UnixNano()
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
	h   *Handler
	ctx context.Context // the config's: background lookups end with it

	clock *coarseClock

	mu    sync.RWMutex
	cache map[string]*identity
}

func newGuard(ctx context.Context, h *Handler) *guard {
	g := &guard{h: h, ctx: ctx, clock: startClock(ctx), cache: make(map[string]*identity)}
	registerGuard(h.AppID, g)
	return g
}

// close stops the guard from receiving logouts.
func (g *guard) close() { unregisterGuard(g.h.AppID, g) }

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

// check verifies tok, from the cache when it was verified before. A cached
// token in use has its session looked up again in the background every
// recheckEvery, so its requests do not wait for the store; one idle past
// staleAfter is looked up before it is answered. Either way a logout
// elsewhere takes effect within staleAfter plus one lookup.
func (g *guard) check(ctx context.Context, tok string) (*identity, *apiError) {
	g.mu.RLock()
	id := g.cache[tok]
	g.mu.RUnlock()
	if id != nil {
		n := g.clock.now()
		switch {
		case id.dead.Load():
			g.drop(tok)
			return nil, invalidToken("the session has ended")
		case n >= id.expNanos:
			g.drop(tok)
			return nil, invalidToken("the token has expired")
		}
		switch age := n - id.checked.Load(); {
		case age < int64(recheckEvery):
		case age < int64(staleAfter):
			if id.checking.CompareAndSwap(false, true) {
				go g.recheck(id)
			}
		default:
			// Unused for a while: the session may have ended long ago.
			if err := g.confirm(ctx, id); err != nil {
				id.dead.Store(true)
				g.drop(tok)
				return nil, err
			}
		}
		metrics.checkCached.Inc()
		return id, nil
	}

	t := g.h.tokens.Load()
	if t == nil {
		return nil, errKeysNotLoaded
	}
	claims, err := t.Verify(tok)
	if err != nil {
		if c := g.h.logger.Check(zapcore.DebugLevel, "token refused"); c != nil {
			c.Write(zap.String("reason", err.Error()))
		}
		return nil, invalidToken(tokenReason(err))
	}
	id = newIdentity(claims, g.hookHeaders(), t.Config().Leeway)
	if err := g.confirm(ctx, id); err != nil {
		return nil, err
	}
	g.put(tok, id)
	// A logout may have run between the lookup and the insert.
	if sessionEnded(g.h.AppID, id.sid) {
		g.drop(tok)
		return nil, invalidToken("the session has ended")
	}
	metrics.checkOK.Inc()
	return id, nil
}

// recheck looks a cached token's session up again, off the request path.
func (g *guard) recheck(id *identity) {
	defer id.checking.Store(false)
	if g.confirm(g.ctx, id) != nil {
		id.dead.Store(true)
	}
}

// confirm looks the token's session up in the store. A store that cannot be
// reached does not break issued tokens: the signature stands and the lookup
// is tried again after recheckEvery.
func (g *guard) confirm(ctx context.Context, id *identity) *apiError {
	if sessionEnded(g.h.AppID, id.sid) {
		return invalidToken("the session has ended")
	}
	// Not the request's own end: a client that hangs up must not pass for
	// an unreachable store, which would let the token through unchecked.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lookupTimeout)
	defer cancel()
	s, err := g.h.sessions.Get(ctx, id.sid)
	switch {
	case err == nil:
		if s.OpenID != id.openid {
			return invalidToken("the token does not match its session")
		}
	case errors.Is(err, session.ErrNotFound):
		return invalidToken("the session has ended")
	case g.ctx.Err() != nil:
		return nil // the config is being unloaded
	default:
		g.h.logger.Warn("session store unreachable; accepting signed token", zap.Error(err))
	}
	id.checked.Store(time.Now().UnixNano())
	return nil
}

func (g *guard) put(tok string, id *identity) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.cache) >= maxCachedTokens {
		now := time.Now().UnixNano()
		for k, v := range g.cache {
			if now >= v.expNanos || v.dead.Load() {
				delete(g.cache, k)
			}
		}
		if len(g.cache) >= maxCachedTokens {
			clear(g.cache)
		}
	}
	g.cache[tok] = id
}

func (g *guard) drop(tok string) {
	g.mu.Lock()
	delete(g.cache, tok)
	g.mu.Unlock()
}

// forget refuses the session's cached tokens at once.
func (g *guard) forget(sid string) {
	g.mu.Lock()
	for k, v := range g.cache {
		if v.sid == sid {
			v.dead.Store(true)
			delete(g.cache, k)
		}
	}
	g.mu.Unlock()
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
