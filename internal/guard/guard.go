// Package guard is the token check on protected requests: where a token
// is read from and taken out, its verification and cache, the session
// confirmations that keep a cached token honest, and what the next handler
// is handed (identity headers, {http.auth.user.*} placeholders). It is plain
// Go: the Caddy glue passes its clock, store lookups, metrics and
// placeholder replacer in through Config.
package guard

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/wxauth/caddy-wxauth/internal/apierr"
	"github.com/wxauth/caddy-wxauth/internal/background"
	"github.com/wxauth/caddy-wxauth/internal/clock"
	"github.com/wxauth/caddy-wxauth/internal/users"
	"github.com/wxauth/caddy-wxauth/session"
	"github.com/wxauth/caddy-wxauth/token"
)

// defaultLookupTimeout bounds one session lookup of the guard.
const defaultLookupTimeout = 2 * time.Second

// storeTroubleFor is how long after a lookup failed on the store the guard
// confirms cached tokens in the background instead of making requests wait
// for a store that does not answer.
const storeTroubleFor = 30 * time.Second

// Config is everything the token check needs; it holds no Caddy handler,
// so the check can be built and tested on its own.
type Config struct {
	// Ctx is the config's lifetime: background lookups end with it.
	Ctx context.Context
	// Verify checks a token's signature and claims, without I/O; it
	// returns the verifier's clock leeway with the claims. An *apierr.Error
	// (keys not loaded) is answered as it is.
	Verify func(tok string) (*token.Claims, time.Duration, error)
	// Lookup reads a session with its user's current claims; an error
	// matching session.ErrNotFound means the session has ended.
	Lookup func(ctx context.Context, sid string) (*session.Session, error)
	// Now is the clock.
	Now clock.Clock
	// Fresh says when a cached token's session must be looked up again.
	Fresh Freshness
	// Ended is the app's process-wide record of ended sessions and users.
	Ended *Ended
	// Placeholders hands a request's {http.auth.user.*} values, answered by
	// lookup, to whatever serves placeholders (Caddy's replacer); nil: none.
	Placeholders func(r *http.Request, lookup func(key string) (any, bool))
	// Counters count the checks' results; unset ones count nothing.
	Counters Counters

	// Keys names the user record of a token's user, the key of the
	// change feed's and the ended records' entries.
	Keys users.KeyRule

	Sources      []TokenSource     // where tokens are read, tried in order
	Strip        []string          // client headers removed besides X-Wx-*
	ClaimHeaders map[string]string // claim -> header name
	// Refused, when set, is told of a token of source src refused as
	// invalid (its session ended, it expired) before the refusal is
	// answered. Returning true means the source's owner took the dead
	// credential back (a web login clears its cookie, which a page cannot):
	// the request goes on without it, anonymous when optional.
	Refused func(w http.ResponseWriter, r *http.Request, src int) bool

	Optional      bool          // requests without a token go on anonymously
	ForwardToken  bool          // keep the credential on the request for next
	CacheSize     int           // 0: DefaultCacheSize
	LookupTimeout time.Duration // 0: defaultLookupTimeout
	Logger        *zap.Logger   // refused tokens (debug) and store trouble (warn)
}

// Counter counts up; a prometheus.Counter is one.
type Counter interface{ Inc() }

// Counters are the token check's metrics.
type Counters struct {
	OK, Cached, Missing, Invalid, Anonymous Counter // checks by result
	StoreTrouble                            Counter // lookups the store failed
	Panics                                  Counter // background confirmations that panicked
}

type noCount struct{}

func (noCount) Inc() {}

// Guard checks tokens on protected requests. A token is verified once, then
// served from a bounded cache until it expires or its session ends; the
// freshness policy decides when the store is asked again.
type Guard struct {
	cfg
	cache *tokenCache

	mu    sync.Mutex
	users map[string]*user // user key -> the cached state its identities share

	storeTrouble atomic.Int64 // unix nanos of the last lookup the store failed; 0 after one it answered

	// lead is the header of the first token source when that is a header
	// source (the usual Authorization: Bearer), else "": Serve reads it, and
	// takes it out, in the pass over the header map that strips the client's
	// identity headers, instead of two more map operations.
	lead string
}

// cfg is Config, embedded in Guard under a name of the package's own.
type cfg = Config

// New returns the guard of c; Close stops it receiving ended sessions.
func New(c Config) *Guard {
	if c.CacheSize <= 0 {
		c.CacheSize = DefaultCacheSize
	}
	if c.LookupTimeout <= 0 {
		c.LookupTimeout = defaultLookupTimeout
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Placeholders == nil {
		c.Placeholders = func(*http.Request, func(string) (any, bool)) {}
	}
	for _, p := range []*Counter{&c.Counters.OK, &c.Counters.Cached, &c.Counters.Missing,
		&c.Counters.Invalid, &c.Counters.Anonymous, &c.Counters.StoreTrouble, &c.Counters.Panics} {
		if *p == nil {
			*p = noCount{}
		}
	}
	g := &Guard{cfg: c, cache: newTokenCache(c.CacheSize), users: map[string]*user{}}
	if len(c.Sources) > 0 && c.Sources[0].From == "header" {
		g.lead = c.Sources[0].Name
	}
	c.Ended.register(g)
	return g
}

// Close stops the guard from receiving ended sessions.
func (g *Guard) Close() { g.Ended.unregister(g) }

// Serve is the protected path, before the next handler: a request with a
// valid token goes on (pass) with the caller's identity, returned as id
// with the index of the token's source, one without is refused, its answer
// written to w and err what writing it returned (or, when optional, goes on
// anonymous, id nil). The caller runs the next handler: the guard holds no
// handler type of a server's.
func (g *Guard) Serve(w http.ResponseWriter, r *http.Request) (id *Identity, src int, pass bool, err error) {
	tok, src := g.scrub(r.Header), 0
	if tok == "" {
		from := 0
		if g.lead != "" {
			from = 1 // scrub read the first source
		}
		tok, src = g.findFrom(r, from)
	}
	if tok == "" {
		if g.Optional {
			g.Counters.Anonymous.Inc()
			anonymous.apply(r, g.Placeholders)
			return nil, -1, true, nil
		}
		g.Counters.Missing.Inc()
		return nil, -1, false, apierr.Write(w, g.Missing(r))
	}
	id, aerr := g.Check(r.Context(), tok)
	if aerr != nil {
		if aerr.Code == "invalid_token" && g.Refused != nil && g.Refused(w, r, src) {
			// Taken back: the request is served as if it had never held it.
			if g.Sources[src].remove(r); g.Sources[src].extract(r) == "" {
				return g.Serve(w, r)
			}
		}
		g.Counters.Invalid.Inc()
		return nil, -1, false, apierr.Write(w, aerr)
	}
	if !g.ForwardToken {
		if src == 0 && g.lead != "" {
			g.removeAfter(r, 0) // scrub took the lead header out
		} else {
			g.removeToken(r, src)
		}
	}
	id.face.view.Load().apply(r, g.Placeholders)
	return id, src, true, nil
}

// scrub removes every client-sent identity header, X-Wx-* and the headers
// that claims are mapped to, and returns the token that the lead header
// holds, if any, read in the same pass over the header map. Unless tokens
// are forwarded, the lead header goes too when it holds a token: before
// the check, which is no different for a refused token, whose request goes
// no further.
func (g *Guard) scrub(h http.Header) (tok string) {
	for k, v := range h {
		switch {
		case strings.HasPrefix(k, identityPrefix):
			delete(h, k)
		case g.lead != "" && k == g.lead:
			if tok = g.Sources[0].fromHeader(v); tok != "" && !g.ForwardToken {
				delete(h, k)
			}
		}
	}
	for _, k := range g.Strip {
		delete(h, k)
		if k == g.lead {
			tok = ""
		}
	}
	return tok
}

// Find returns the request's token from the first source that has one.
func (g *Guard) Find(r *http.Request) string {
	tok, _ := g.findFrom(r, 0)
	return tok
}

// Missing is the answer to r, which holds no token: missing_token, whose
// message says how to send a token when a header source's header holds
// one without the scheme (a bare "Authorization: <token>"). Only this path
// reads the headers again; a request with a token never comes here.
func (g *Guard) Missing(r *http.Request) *apierr.Error {
	for i := range g.Sources {
		if s := &g.Sources[i]; s.From == "header" && s.Scheme != "" {
			if v := r.Header[s.Name]; len(v) > 0 && looksLikeToken(strings.TrimSpace(v[0])) {
				return apierr.MissingToken.WithMessage(fmt.Sprintf(
					"the %s header holds a token without the %s scheme; send it as %s: %s <token>",
					s.Name, s.Scheme, s.Name, s.Scheme))
			}
		}
	}
	return apierr.MissingToken
}

// findFrom returns the request's token from the first source, from source
// i on, that has one, and that source's index.
func (g *Guard) findFrom(r *http.Request, i int) (string, int) {
	for ; i < len(g.Sources); i++ {
		if t := g.Sources[i].extract(r); t != "" {
			return t, i
		}
	}
	return "", -1
}

// removeToken takes the checked token out of r, from source i, and any
// token a later source holds: a second credential must not slip through.
func (g *Guard) removeToken(r *http.Request, i int) {
	g.Sources[i].remove(r)
	g.removeAfter(r, i)
}

// removeAfter takes out the tokens that sources after i hold.
func (g *Guard) removeAfter(r *http.Request, i int) {
	for j := i + 1; j < len(g.Sources); j++ {
		// A query source's removal runs even when it found no token: it
		// also takes out parameters whose name does not decode, which an
		// app may read as the token's.
		if s := &g.Sources[j]; s.From == "query" || s.extract(r) != "" {
			s.remove(r)
		}
	}
}

// Check verifies tok, from the cache when it was verified before, and
// returns the caller's identity.
func (g *Guard) Check(ctx context.Context, tok string) (*Identity, *apierr.Error) {
	if id := g.cache.get(tok); id != nil {
		now := g.Now().UnixNano()
		switch {
		case id.dead.Load():
			g.drop(tok)
			return nil, apierr.InvalidToken("the session has ended")
		case now >= id.expNanos:
			g.drop(tok)
			return nil, apierr.InvalidToken("the token has expired")
		}
		due := g.Fresh.due(id.checked.Load(), now)
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
		g.Counters.Cached.Inc()
		return id, nil
	}
	return g.first(ctx, tok)
}

// first verifies a token this guard has not cached, reads its session once
// and caches it.
func (g *Guard) first(ctx context.Context, tok string) (*Identity, *apierr.Error) {
	claims, leeway, err := g.Verify(tok)
	if err != nil {
		var ae *apierr.Error
		if errors.As(err, &ae) {
			return nil, ae
		}
		if c := g.Logger.Check(zapcore.DebugLevel, "token refused"); c != nil {
			c.Write(zap.String("reason", tokenReason(err)))
		}
		return nil, apierr.InvalidToken(tokenReason(err))
	}
	id := &Identity{sid: claims.SessionID, openid: claims.Subject, platform: claims.Platform,
		surface: claims.Surface, anon: claims.Anonymous}
	if id.platform == "" {
		id.platform = token.PlatformWeChat
	}
	if id.surface == "" {
		id.surface = "mp"
	}
	if len(claims.Audience) > 0 {
		id.appID = claims.Audience[0]
	}
	id.key = g.Keys.Key(id.platform, id.appID, id.openid, claims.UnionID)
	if claims.IssuedAt != nil {
		// Until the session is read, a bound: a session begins before its
		// tokens are issued, and iat is in whole seconds.
		id.created = claims.IssuedAt.Add(time.Second).UnixNano()
		id.iat = claims.IssuedAt.UnixNano()
	}
	if claims.ExpiresAt != nil {
		id.exp = claims.ExpiresAt.UnixNano()
		id.expNanos = id.exp + int64(leeway)
	}
	// A signature proves the token was issued, not that its session is
	// alive: a token this instance never confirmed waits for the store.
	s, aerr := g.confirm(ctx, id)
	if aerr == errUnconfirmed && g.Ended.confirmedAlive(id.sid) {
		// Confirmed by a config of this process before a reload.
		aerr = nil
	}
	if aerr != nil {
		return nil, aerr
	}
	unionid, extra := claims.UnionID, claims.Extra
	if s != nil {
		unionid, extra = s.UnionID, s.Claims
		// The key the login stored, which the feed's events name: a
		// link_by changed since, or another instance's rule, does not
		// move a session to another user. Set before attach, never
		// after (detach reads it).
		id.key = s.UserKey()
	}
	g.attach(id, unionid, extra)
	if old := g.cache.put(tok, id); old != nil && old != id {
		g.detach(old)
	}
	// The session may have ended while it was being read.
	if g.Ended.sessionEnded(id.sid) || g.Ended.userEnded(id.key, id.created) {
		id.dead.Store(true)
		g.drop(tok)
		return nil, apierr.InvalidToken("the session has ended")
	}
	g.Counters.OK.Inc()
	return id, nil
}

// TokenExpired refuses a token past its expiry, still verified within the
// verifier's leeway, whose session ended with it (or cannot be extended):
// no refresh helps, only a new login.
var TokenExpired = apierr.InvalidToken("the token has expired; call wx.login and log in again")

// PastExpiry reports whether id's token is past its own expiry, though
// still accepted within the verifier's leeway.
func (g *Guard) PastExpiry(id *Identity) bool {
	return id.exp != 0 && g.Now().UnixNano() >= id.exp
}

// recheck confirms a cached token's session off the request path.
func (g *Guard) recheck(id *Identity) {
	defer id.checking.Store(false)
	background.Runner{Logger: g.Logger, Panicked: func(string) { g.Counters.Panics.Inc() }}.Run("recheck", func() {
		if _, err := g.confirm(g.Ctx, id); err != nil && err != errUnconfirmed {
			id.dead.Store(true)
		}
	})
}

// errUnconfirmed is confirm's answer when the store could not say whether a
// session is alive. A token confirmed before keeps working on it (the
// freshness policy asks again later); a token seen for the first time is
// refused with it, since only the store knows whether it was logged out.
var errUnconfirmed = apierr.New(http.StatusServiceUnavailable, "store_unavailable",
	"the session store is not reachable; try again shortly").WithHeader("Retry-After", "1")

// confirm looks the token's session up in the store and returns it, or
// errUnconfirmed when the store does not answer.
func (g *Guard) confirm(ctx context.Context, id *Identity) (*session.Session, *apierr.Error) {
	if g.Ended.sessionEnded(id.sid) || g.Ended.userEnded(id.key, id.created) {
		return nil, apierr.InvalidToken("the session has ended")
	}
	// Not the request's own end: a client that hangs up must not pass for
	// an unreachable store, which would let the token through unchecked.
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.LookupTimeout)
	defer cancel()
	s, err := g.Lookup(lctx, id.sid)
	if err == nil || errors.Is(err, session.ErrNotFound) {
		g.storeTrouble.Store(0)
	}
	switch {
	case err == nil:
		if s.OpenID != id.openid {
			return nil, apierr.InvalidToken("the token does not match its session")
		}
		id.created = s.Created.UnixNano()
		if g.Ended.userEnded(s.UserKey(), id.created) {
			return nil, apierr.InvalidToken("the session has ended")
		}
		g.Ended.confirm(id.sid, id.expNanos)
	case errors.Is(err, session.ErrNotFound):
		if g.PastExpiry(id) {
			// Accepted within the leeway, but its session ended with it.
			return nil, TokenExpired
		}
		return nil, apierr.InvalidToken("the session has ended")
	case g.Ctx.Err() != nil:
		return nil, errUnconfirmed // the config is being unloaded
	default:
		g.Counters.StoreTrouble.Inc()
		g.storeTrouble.Store(g.Now().UnixNano())
		if c := g.Logger.Check(zapcore.WarnLevel, "session store unreachable; only tokens confirmed before are accepted"); c != nil {
			c.Write(zap.Error(err))
		}
		return nil, errUnconfirmed
	}
	id.checked.Store(g.Now().UnixNano())
	return s, nil
}

// attach points id at its user's shared state, the user now having unionid
// and claims.
func (g *Guard) attach(id *Identity, unionid string, claims map[string]any) {
	fid := faceID{openid: id.openid, unionid: unionid, platform: id.platform, appID: id.appID, surface: id.surface, anon: id.anon}
	v := newView(fid, claims, g.ClaimHeaders, g.Logger)
	g.mu.Lock()
	u := g.users[id.key]
	if u == nil {
		u = &user{key: id.key}
		g.users[id.key] = u
	}
	var f *face
	for _, c := range u.faces {
		if c.faceID == fid {
			f = c
			break
		}
	}
	if f == nil {
		f = &face{faceID: fid}
		u.faces = append(u.faces, f)
	}
	f.ids = append(f.ids, id)
	f.view.Store(v)
	g.mu.Unlock()
	id.face = f
}

// detach releases id's hold on its user's state.
func (g *Guard) detach(id *Identity) {
	g.mu.Lock()
	defer g.mu.Unlock()
	f, u := id.face, g.users[id.key]
	if f == nil {
		return
	}
	if i := slices.Index(f.ids, id); i >= 0 {
		last := len(f.ids) - 1
		f.ids[i], f.ids[last] = f.ids[last], nil
		f.ids = f.ids[:last]
	}
	if len(f.ids) > 0 || u == nil {
		return
	}
	if i := slices.Index(u.faces, f); i >= 0 {
		u.faces = slices.Delete(u.faces, i, i+1)
	}
	if len(u.faces) == 0 {
		delete(g.users, id.key)
	}
}

// endIf refuses the user's cached tokens that match, at once: they are
// dropped from the cache when next used (or evicted).
func (g *Guard) endIf(key string, match func(*Identity) bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if u := g.users[key]; u != nil {
		for _, f := range u.faces {
			for _, id := range f.ids {
				if match(id) {
					id.dead.Store(true)
				}
			}
		}
	}
}

func (g *Guard) drop(tok string) {
	if id := g.cache.del(tok); id != nil {
		g.detach(id)
	}
}

// Invalidate refuses the cached tokens of session sid of user key at once.
func (g *Guard) Invalidate(key, sid string) {
	g.endIf(key, func(id *Identity) bool { return id.sid == sid })
}

// EndUser refuses the cached tokens of every session of user key that
// began before at.
func (g *Guard) EndUser(key string, at time.Time) {
	n := at.UnixNano()
	g.endIf(key, func(id *Identity) bool { return id.created < n })
}

// SetClaims replaces the claims that user key's cached tokens hand
// upstream, on every face.
func (g *Guard) SetClaims(key string, claims map[string]any) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if u := g.users[key]; u != nil {
		for _, f := range u.faces {
			f.view.Store(newView(f.faceID, claims, g.ClaimHeaders, g.Logger))
		}
	}
}

// tokenReason tells the client why its token was refused, from the kind
// of the verification error; it never echoes the token or a key.
func tokenReason(err error) string {
	switch {
	case errors.Is(err, token.ErrExpired):
		return "the token has expired"
	case errors.Is(err, token.ErrMalformed):
		return "the token is not valid: it is not a well-formed token"
	case errors.Is(err, token.ErrUnknownKey):
		return "the token is not valid: it is signed with a key this server does not hold; log in again"
	case errors.Is(err, token.ErrBadSignature):
		return "the token is not valid: bad signature"
	case errors.Is(err, token.ErrAudience):
		return "the token is not valid: it was issued for another app"
	case errors.Is(err, token.ErrClaims):
		return "the token is not valid: missing or bad claims"
	}
	return "the token is not valid"
}
