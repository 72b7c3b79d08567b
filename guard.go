package wxauth

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wxauth/caddy-wxauth/internal/apierr"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/wxauth/caddy-wxauth/session"
	"github.com/wxauth/caddy-wxauth/token"
)

// defaultLookupTimeout bounds one session lookup of the guard.
const defaultLookupTimeout = 2 * time.Second

// storeTroubleFor is how long after a lookup failed on the store the guard
// confirms cached tokens in the background instead of making requests wait
// for a store that does not answer.
const storeTroubleFor = 30 * time.Second

// guardConfig is everything the token check needs; it holds no Handler, so
// the check can be built and tested on its own.
type guardConfig struct {
	// ctx is the config's lifetime: background lookups end with it.
	ctx context.Context
	// verify checks a token's signature and claims, without I/O; it
	// returns the verifier's clock leeway with the claims. An *apierr.Error
	// (keys not loaded) is answered as it is.
	verify func(tok string) (*token.Claims, time.Duration, error)
	// lookup reads a session with its user's current claims; an error
	// matching session.ErrNotFound means the session has ended.
	lookup func(ctx context.Context, sid string) (*session.Session, error)
	// now is the clock; time.Now in production.
	now func() time.Time
	// fresh says when a cached token's session must be looked up again.
	fresh freshness
	// ended is the app's process-wide record of ended sessions and users.
	ended *endedSet

	sources       []TokenSource
	strip         []string          // client headers removed besides X-Wx-*
	claimHeaders  map[string]string // claim -> header name
	optional      bool
	forwardToken  bool          // keep the credential on the request for next
	cacheSize     int           // 0: DefaultCacheSize
	lookupTimeout time.Duration // 0: defaultLookupTimeout
	logger        *zap.Logger
}

// guard checks tokens on protected requests. A token is verified once, then
// served from a bounded cache until it expires or its session ends; the
// freshness policy decides when the store is asked again.
type guard struct {
	guardConfig
	cache *tokenCache

	mu    sync.Mutex
	users map[string]*user // openid -> the cached state its identities share

	storeTrouble atomic.Int64 // unix nanos of the last lookup the store failed; 0 after one it answered

	// lead is the header of the first token source when that is a header
	// source (the usual Authorization: Bearer), else "": serve reads it, and
	// takes it out, in the pass over the header map that strips the client's
	// identity headers, instead of two more map operations.
	lead string
}

func newGuard(cfg guardConfig) *guard {
	if cfg.cacheSize <= 0 {
		cfg.cacheSize = DefaultCacheSize
	}
	if cfg.lookupTimeout <= 0 {
		cfg.lookupTimeout = defaultLookupTimeout
	}
	if cfg.logger == nil {
		cfg.logger = zap.NewNop()
	}
	g := &guard{guardConfig: cfg, cache: newTokenCache(cfg.cacheSize), users: map[string]*user{}}
	if len(cfg.sources) > 0 && cfg.sources[0].From == "header" {
		g.lead = cfg.sources[0].Name
	}
	cfg.ended.register(g)
	return g
}

// close stops the guard from receiving ended sessions.
func (g *guard) close() { g.ended.unregister(g) }

// serve is the protected path.
func (g *guard) serve(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	tok, src := g.scrub(r.Header), 0
	if tok == "" {
		from := 0
		if g.lead != "" {
			from = 1 // scrub read the first source
		}
		tok, src = g.findFrom(r, from)
	}
	if tok == "" {
		if g.optional {
			metrics.checkAnonymous.Inc()
			anonymous.apply(r)
			return next.ServeHTTP(w, r)
		}
		metrics.checkMissing.Inc()
		return apierr.Write(w, apierr.MissingToken)
	}
	id, err := g.check(r.Context(), tok)
	if err != nil {
		metrics.checkInvalid.Inc()
		return apierr.Write(w, err)
	}
	if !g.forwardToken {
		if src == 0 && g.lead != "" {
			g.removeAfter(r, 0) // scrub took the lead header out
		} else {
			g.removeToken(r, src)
		}
	}
	id.user.view.Load().apply(r)
	return next.ServeHTTP(w, r)
}

// scrub removes every client-sent identity header, X-Wx-* and the headers
// that claims are mapped to, and returns the token that the lead header
// holds, if any, read in the same pass over the header map. Unless tokens
// are forwarded, the lead header goes too when it holds a token: before
// the check, which is no different for a refused token, whose request goes
// no further.
func (g *guard) scrub(h http.Header) (tok string) {
	for k, v := range h {
		switch {
		case strings.HasPrefix(k, identityPrefix):
			delete(h, k)
		case g.lead != "" && k == g.lead:
			if tok = g.sources[0].fromHeader(v); tok != "" && !g.forwardToken {
				delete(h, k)
			}
		}
	}
	for _, k := range g.strip {
		delete(h, k)
		if k == g.lead {
			tok = ""
		}
	}
	return tok
}

// find returns the request's token from the first source that has one,
// and that source's index.
func (g *guard) find(r *http.Request) (string, int) { return g.findFrom(r, 0) }

// findFrom is find from source i on.
func (g *guard) findFrom(r *http.Request, i int) (string, int) {
	for ; i < len(g.sources); i++ {
		if t := g.sources[i].extract(r); t != "" {
			return t, i
		}
	}
	return "", -1
}

// removeToken takes the checked token out of r, from source i, and any
// token a later source holds: a second credential must not slip through.
func (g *guard) removeToken(r *http.Request, i int) {
	g.sources[i].remove(r)
	g.removeAfter(r, i)
}

// removeAfter takes out the tokens that sources after i hold.
func (g *guard) removeAfter(r *http.Request, i int) {
	for j := i + 1; j < len(g.sources); j++ {
		// A query source's removal runs even when it found no token: it
		// also takes out parameters whose name does not decode, which an
		// app may read as the token's.
		if s := &g.sources[j]; s.From == "query" || s.extract(r) != "" {
			s.remove(r)
		}
	}
}

// check verifies tok, from the cache when it was verified before.
func (g *guard) check(ctx context.Context, tok string) (*identity, *apierr.Error) {
	if id := g.cache.get(tok); id != nil {
		now := g.now().UnixNano()
		switch {
		case id.dead.Load():
			g.drop(tok)
			return nil, apierr.InvalidToken("the session has ended")
		case now >= id.expNanos:
			g.drop(tok)
			return nil, apierr.InvalidToken("the token has expired")
		}
		due := g.fresh.due(id.checked.Load(), now)
		if due == recheckNow && now-g.storeTrouble.Load() < int64(storeTroubleFor) {
			// The store failed lately: do not make every request wait for it.
			due = recheckSoon
		}
		switch due {
		case recheckSoon:
			if id.checking.CompareAndSwap(false, true) {
				go g.recheck(id)
			}
		case recheckNow:
			// Not confirmed for too long: the session may have ended. A
			// store that does not answer keeps a token this instance
			// confirmed before: only the feed can end it then.
			if _, err := g.confirm(ctx, id); err != nil && err != errUnconfirmed {
				id.dead.Store(true)
				g.drop(tok)
				return nil, err
			}
		}
		metrics.checkCached.Inc()
		return id, nil
	}
	return g.first(ctx, tok)
}

// first verifies a token this guard has not cached, reads its session once
// and caches it.
func (g *guard) first(ctx context.Context, tok string) (*identity, *apierr.Error) {
	claims, leeway, err := g.verify(tok)
	if err != nil {
		var ae *apierr.Error
		if errors.As(err, &ae) {
			return nil, ae
		}
		if c := g.logger.Check(zapcore.DebugLevel, "token refused"); c != nil {
			c.Write(zap.String("reason", tokenReason(err)))
		}
		return nil, apierr.InvalidToken(tokenReason(err))
	}
	id := &identity{sid: claims.SessionID, openid: claims.Subject}
	if claims.IssuedAt != nil {
		// Until the session is read, a bound: a session begins before its
		// tokens are issued, and iat is in whole seconds.
		id.created = claims.IssuedAt.Add(time.Second).UnixNano()
	}
	if claims.ExpiresAt != nil {
		id.expNanos = claims.ExpiresAt.Add(leeway).UnixNano()
	}
	// A signature proves the token was issued, not that its session is
	// alive: a token this instance never confirmed waits for the store.
	s, aerr := g.confirm(ctx, id)
	if aerr == errUnconfirmed && g.ended.confirmedAlive(id.sid) {
		// Confirmed by a config of this process before a reload.
		aerr = nil
	}
	if aerr != nil {
		return nil, aerr
	}
	unionid, extra := claims.UnionID, claims.Extra
	if s != nil {
		unionid, extra = s.UnionID, s.Claims
	}
	g.attach(id, unionid, newView(id.openid, unionid, extra, g.claimHeaders, g.logger))
	if old := g.cache.put(tok, id); old != nil && old != id {
		g.detach(old)
	}
	// The session may have ended while it was being read.
	if g.ended.sessionEnded(id.sid) || g.ended.userEnded(id.openid, id.created) {
		id.dead.Store(true)
		g.drop(tok)
		return nil, apierr.InvalidToken("the session has ended")
	}
	metrics.checkOK.Inc()
	return id, nil
}

// recheck confirms a cached token's session off the request path.
func (g *guard) recheck(id *identity) {
	defer id.checking.Store(false)
	if _, err := g.confirm(g.ctx, id); err != nil && err != errUnconfirmed {
		id.dead.Store(true)
	}
}

// errUnconfirmed is confirm's answer when the store could not say whether a
// session is alive. A token confirmed before keeps working on it (the
// freshness policy asks again later); a token seen for the first time is
// refused with it, since only the store knows whether it was logged out.
var errUnconfirmed = apierr.New(http.StatusServiceUnavailable, "store_unavailable",
	"the session store is not reachable; try again shortly").WithHeader("Retry-After", "1")

// confirm looks the token's session up in the store and returns it, or
// errUnconfirmed when the store does not answer.
func (g *guard) confirm(ctx context.Context, id *identity) (*session.Session, *apierr.Error) {
	if g.ended.sessionEnded(id.sid) || g.ended.userEnded(id.openid, id.created) {
		return nil, apierr.InvalidToken("the session has ended")
	}
	// Not the request's own end: a client that hangs up must not pass for
	// an unreachable store, which would let the token through unchecked.
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.lookupTimeout)
	defer cancel()
	s, err := g.lookup(lctx, id.sid)
	if err == nil || errors.Is(err, session.ErrNotFound) {
		g.storeTrouble.Store(0)
	}
	switch {
	case err == nil:
		if s.OpenID != id.openid {
			return nil, apierr.InvalidToken("the token does not match its session")
		}
		id.created = s.Created.UnixNano()
		if g.ended.userEnded(id.openid, id.created) {
			return nil, apierr.InvalidToken("the session has ended")
		}
		g.ended.confirm(id.sid, id.expNanos)
	case errors.Is(err, session.ErrNotFound):
		return nil, apierr.InvalidToken("the session has ended")
	case g.ctx.Err() != nil:
		return nil, errUnconfirmed // the config is being unloaded
	default:
		metrics.storeTokenCheck.Inc()
		g.storeTrouble.Store(g.now().UnixNano())
		if c := g.logger.Check(zapcore.WarnLevel, "session store unreachable; only tokens confirmed before are accepted"); c != nil {
			c.Write(zap.Error(err))
		}
		return nil, errUnconfirmed
	}
	id.checked.Store(g.now().UnixNano())
	return s, nil
}

// attach points id at its user's shared state, with v as the user's view.
func (g *guard) attach(id *identity, unionid string, v *view) {
	g.mu.Lock()
	u := g.users[id.openid]
	if u == nil {
		u = &user{openid: id.openid}
		g.users[id.openid] = u
	}
	u.unionid = unionid
	u.ids = append(u.ids, id)
	u.view.Store(v)
	g.mu.Unlock()
	id.user = u
}

// detach releases id's hold on its user's state.
func (g *guard) detach(id *identity) {
	g.mu.Lock()
	if u := id.user; u != nil {
		if i := slices.Index(u.ids, id); i >= 0 {
			last := len(u.ids) - 1
			u.ids[i], u.ids[last] = u.ids[last], nil
			u.ids = u.ids[:last]
		}
		if len(u.ids) == 0 && g.users[u.openid] == u {
			delete(g.users, u.openid)
		}
	}
	g.mu.Unlock()
}

// endIf refuses openid's cached tokens that match, at once: they are
// dropped from the cache when next used (or evicted).
func (g *guard) endIf(openid string, match func(*identity) bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if u := g.users[openid]; u != nil {
		for _, id := range u.ids {
			if match(id) {
				id.dead.Store(true)
			}
		}
	}
}

func (g *guard) drop(tok string) {
	if id := g.cache.del(tok); id != nil {
		g.detach(id)
	}
}

// Invalidate refuses the cached tokens of session sid of openid at once.
func (g *guard) Invalidate(openid, sid string) {
	g.endIf(openid, func(id *identity) bool { return id.sid == sid })
}

// EndUser refuses the cached tokens of every session of openid that began
// before at.
func (g *guard) EndUser(openid string, at time.Time) {
	n := at.UnixNano()
	g.endIf(openid, func(id *identity) bool { return id.created < n })
}

// SetClaims replaces the claims that openid's cached tokens hand upstream.
func (g *guard) SetClaims(openid string, claims map[string]any) {
	g.mu.Lock()
	u := g.users[openid]
	var unionid string
	if u != nil {
		unionid = u.unionid
	}
	g.mu.Unlock()
	if u != nil {
		u.view.Store(newView(openid, unionid, claims, g.claimHeaders, g.logger))
	}
}
