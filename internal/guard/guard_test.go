package guard

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wxauth/caddy-wxauth/internal/apierr"
	"github.com/wxauth/caddy-wxauth/internal/clock"
	"github.com/wxauth/caddy-wxauth/internal/users"
	"github.com/wxauth/caddy-wxauth/session"
	"github.com/wxauth/caddy-wxauth/token"
)

// fakeSessions is a session store for the guard: sessions by sid, with an
// error or a hang to simulate a failing store.
type fakeSessions struct {
	mu      sync.Mutex
	byID    map[string]*session.Session
	err     error         // returned by every lookup when set
	hang    bool          // lookups block until their context ends
	lookups int           // lookups made
	entered chan string   // when set, receives each looked-up sid
	release chan struct{} // when set, each lookup waits for a value
}

func (f *fakeSessions) lookup(ctx context.Context, sid string) (*session.Session, error) {
	f.mu.Lock()
	f.lookups++
	s, err, hang, entered, release := f.byID[sid], f.err, f.hang, f.entered, f.release
	f.mu.Unlock()
	if entered != nil {
		entered <- sid
	}
	if release != nil {
		<-release
	}
	if hang {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if err != nil {
		return nil, err
	}
	if s == nil {
		return nil, session.ErrNotFound
	}
	c := *s
	return &c, nil
}

func (f *fakeSessions) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lookups
}

func (f *fakeSessions) set(fn func(f *fakeSessions)) {
	f.mu.Lock()
	fn(f)
	f.mu.Unlock()
}

// guardFixture is a guard over fakes: tokens are "tok-<sid>", each valid
// for an hour from the fixture's start.
type guardFixture struct {
	t     *testing.T
	clock *clock.Fake
	store *fakeSessions
	ended *Ended
	g     *Guard
	// storeTrouble counts the lookups the store failed (Counters.StoreTrouble).
	storeTrouble *countingCounter
}

func newGuardFixture(t *testing.T, mod ...func(*Config)) *guardFixture {
	t.Helper()
	f := &guardFixture{t: t, clock: clock.NewFake(), store: &fakeSessions{byID: map[string]*session.Session{}}, storeTrouble: new(countingCounter)}
	f.ended = NewEnded(f.clock.Now)
	start := f.clock.Now()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cfg := Config{
		Ctx: ctx,
		Verify: func(tok string) (*token.Claims, time.Duration, error) {
			sid, ok := sidOf(tok)
			if !ok {
				return nil, 0, errors.New("token: malformed")
			}
			f.store.mu.Lock()
			s := f.store.byID[sid]
			f.store.mu.Unlock()
			openid, iat := "o-"+sid, start.Add(-time.Second)
			c := &token.Claims{SessionID: sid}
			if s != nil {
				openid, iat = s.OpenID, s.Created
				c.Platform, c.Surface, c.UnionID, c.Anonymous = s.Platform, s.Surface, s.UnionID, s.Anonymous
				if s.AppID != "" {
					c.Audience = jwt.ClaimStrings{s.AppID}
				}
			}
			c.Subject = openid
			c.IssuedAt = jwt.NewNumericDate(iat)
			c.ExpiresAt = jwt.NewNumericDate(start.Add(time.Hour))
			return c, 0, nil
		},
		Lookup:        f.store.lookup,
		Now:           f.clock.Now,
		Fresh:         pollFreshness{soon: 5 * time.Second, stale: 7 * time.Second},
		Ended:         f.ended,
		Counters:      Counters{StoreTrouble: f.storeTrouble},
		Sources:       []TokenSource{{From: "header", Name: "Authorization", Scheme: "Bearer"}},
		LookupTimeout: 20 * time.Millisecond,
	}
	for _, m := range mod {
		m(&cfg)
	}
	f.g = New(cfg)
	t.Cleanup(f.g.Close)
	return f
}

func sidOf(tok string) (string, bool) {
	if len(tok) > 4 && tok[:4] == "tok-" {
		return tok[4:], true
	}
	return "", false
}

// login adds a session for openid and returns its token.
func (f *guardFixture) login(sid, openid string, claims map[string]any) string {
	f.store.set(func(s *fakeSessions) {
		s.byID[sid] = &session.Session{ID: sid, OpenID: openid, Created: f.clock.Now().Add(-time.Minute), Claims: claims}
	})
	return "tok-" + sid
}

func (f *guardFixture) logout(sid string) {
	f.store.set(func(s *fakeSessions) { delete(s.byID, sid) })
}

// check runs the token check and returns the error code, or "" when accepted.
func (f *guardFixture) check(tok string) string {
	f.t.Helper()
	id, err := f.g.Check(context.Background(), tok)
	if err != nil {
		return err.Code
	}
	if id == nil || id.face == nil || id.face.view.Load() == nil {
		f.t.Fatal("accepted without an identity")
	}
	return ""
}

// waitIdle waits until no background confirmation of tok runs.
func (f *guardFixture) waitIdle(tok string) {
	f.t.Helper()
	id := f.g.cache.get(tok)
	if id == nil {
		return
	}
	deadline := time.Now().Add(5 * time.Second)
	for id.checking.Load() {
		if time.Now().After(deadline) {
			f.t.Fatal("background confirmation did not finish")
		}
		time.Sleep(time.Millisecond) // polling a flag a goroutine clears
	}
}

func TestGuardChecks(t *testing.T) {
	cases := []struct {
		name string
		// act runs after a first, accepted check of tok.
		act     func(f *guardFixture, tok string)
		want    string // error code of the next check, "" for accepted
		lookups int    // store lookups in all, the first check's included
	}{
		{"fresh token answered from the cache", func(f *guardFixture, tok string) { f.clock.Advance(4 * time.Second) }, "", 1},
		{"ended on this instance: refused at once", func(f *guardFixture, tok string) {
			f.logout("s1")
			f.ended.EndSession("alice", "s1", time.Hour)
		}, "invalid_token", 1},
		{"ended elsewhere, still fresh: answered (within the bound)", func(f *guardFixture, tok string) {
			f.logout("s1")
			f.clock.Advance(4 * time.Second)
		}, "", 1},
		{"ended elsewhere, idle past stale: confirmed and refused", func(f *guardFixture, tok string) {
			f.logout("s1")
			f.clock.Advance(8 * time.Second)
		}, "invalid_token", 2},
		{"expired", func(f *guardFixture, tok string) { f.clock.Advance(time.Hour) }, "invalid_token", 1},
		{"store errors on a stale token: accepted on the signature", func(f *guardFixture, tok string) {
			f.store.set(func(s *fakeSessions) { s.err = errors.New("connection refused") })
			f.clock.Advance(8 * time.Second)
		}, "", 2},
		{"store hangs on a stale token: accepted after the lookup timeout", func(f *guardFixture, tok string) {
			f.store.set(func(s *fakeSessions) { s.hang = true })
			f.clock.Advance(8 * time.Second)
		}, "", 2},
		{"store failed lately: a stale token is answered at once, confirmed in the background", func(f *guardFixture, tok string) {
			f.store.set(func(s *fakeSessions) { s.hang = true })
			f.clock.Advance(8 * time.Second)
			if f.check(tok) != "" {
				f.t.Fatal("refused while the store hangs")
			}
			f.clock.Advance(8 * time.Second)
			f.store.set(func(s *fakeSessions) { s.hang = false; s.release = make(chan struct{}) })
			if f.check(tok) != "" { // answered without waiting for the held lookup
				f.t.Fatal("refused")
			}
			close(f.store.release)
			f.waitIdle(tok)
			f.store.set(func(s *fakeSessions) { s.release = nil })
		}, "", 3},
		{"user ended everywhere", func(f *guardFixture, tok string) {
			f.ended.EndUser("alice", f.clock.Now(), time.Hour)
		}, "invalid_token", 1},
		{"user ended before the session began: still valid", func(f *guardFixture, tok string) {
			f.ended.EndUser("alice", f.clock.Now().Add(-time.Hour), time.Hour)
		}, "", 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newGuardFixture(t)
			tok := f.login("s1", "alice", nil)
			if got := f.check(tok); got != "" {
				t.Fatalf("first check: %s", got)
			}
			tc.act(f, tok)
			if got := f.check(tok); got != tc.want {
				t.Fatalf("check = %q, want %q", got, tc.want)
			}
			if n := f.store.count(); n != tc.lookups {
				t.Fatalf("%d lookups, want %d", n, tc.lookups)
			}
			if tc.want != "" && f.g.cache.get(tok) != nil {
				t.Fatal("a refused token stays cached")
			}
		})
	}
}

func TestGuardFirstUse(t *testing.T) {
	t.Run("bad token", func(t *testing.T) {
		f := newGuardFixture(t)
		if got := f.check("garbage"); got != "invalid_token" {
			t.Fatalf("got %q", got)
		}
		if f.store.count() != 0 {
			t.Fatal("a bad token reached the store")
		}
	})
	t.Run("session gone", func(t *testing.T) {
		f := newGuardFixture(t)
		if got := f.check("tok-nosuch"); got != "invalid_token" {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("session of another user", func(t *testing.T) {
		f := newGuardFixture(t)
		tok := f.login("s1", "alice", nil)
		f.store.set(func(s *fakeSessions) { s.byID["s1"] = &session.Session{ID: "s1", OpenID: "mallory"} })
		f.g.Verify = func(string) (*token.Claims, time.Duration, error) {
			c := &token.Claims{SessionID: "s1"}
			c.Subject = "alice"
			c.ExpiresAt = jwt.NewNumericDate(f.clock.Now().Add(time.Hour))
			return c, 0, nil
		}
		if got := f.check(tok); got != "invalid_token" {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("keys not loaded", func(t *testing.T) {
		f := newGuardFixture(t, func(c *Config) {
			c.Verify = func(string) (*token.Claims, time.Duration, error) { return nil, 0, errKeysNotLoaded }
		})
		if got := f.check("tok-s1"); got != "store_unavailable" {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("store down: a token never confirmed here is refused", func(t *testing.T) {
		f := newGuardFixture(t)
		tok := f.login("s1", "alice", nil)
		f.store.set(func(s *fakeSessions) { s.err = errors.New("down") })
		before := f.storeTrouble.Load()
		if got := f.check(tok); got != "store_unavailable" {
			t.Fatalf("got %q", got)
		}
		if f.storeTrouble.Load() != before+1 {
			t.Fatal("the store error was not counted")
		}
		// Not cached as valid: the store's answer decides once it is back.
		f.store.set(func(s *fakeSessions) { s.err = nil; delete(s.byID, "s1") })
		if got := f.check(tok); got != "invalid_token" {
			t.Fatalf("after the store came back: %q", got)
		}
	})
	t.Run("store down: a token confirmed before is accepted, confirmed later", func(t *testing.T) {
		f := newGuardFixture(t)
		tok := f.login("s1", "alice", nil)
		if got := f.check(tok); got != "" {
			t.Fatalf("before the outage: %q", got)
		}
		f.store.set(func(s *fakeSessions) { s.err = errors.New("down") })
		f.clock.Advance(8 * time.Second) // stale: confirmed before answering
		before := f.storeTrouble.Load()
		if got := f.check(tok); got != "" {
			t.Fatalf("during the outage: %q", got)
		}
		if f.storeTrouble.Load() != before+1 {
			t.Fatal("the store error was not counted")
		}
		f.store.set(func(s *fakeSessions) { s.err = nil; delete(s.byID, "s1") })
		f.clock.Advance(8 * time.Second)
		// The store failed lately, so the confirmation runs in the
		// background; the answer after it refuses the ended session.
		_ = f.check(tok)
		f.waitIdle(tok)
		if got := f.check(tok); got != "invalid_token" {
			t.Fatalf("after the store came back: %q", got)
		}
	})
}

func TestGuardBackgroundRecheck(t *testing.T) {
	f := newGuardFixture(t)
	tok := f.login("s1", "alice", nil)
	if got := f.check(tok); got != "" {
		t.Fatal(got)
	}
	f.logout("s1")
	f.clock.Advance(6 * time.Second) // due soon: answered, confirmed in the background
	if got := f.check(tok); got != "" {
		t.Fatalf("due soon: %q", got)
	}
	f.waitIdle(tok)
	if n := f.store.count(); n != 2 {
		t.Fatalf("%d lookups, want 2", n)
	}
	if got := f.check(tok); got != "invalid_token" {
		t.Fatalf("after the background confirmation: %q", got)
	}
}

// A background confirmation that panics is recovered and counted; the
// token goes on being answered, and the next confirmation runs.
func TestGuardRecheckPanicIsRecovered(t *testing.T) {
	panics := new(countingCounter)
	var boom atomic.Bool
	f := newGuardFixture(t, func(c *Config) {
		c.Counters.Panics = panics
		lookup := c.Lookup
		c.Lookup = func(ctx context.Context, sid string) (*session.Session, error) {
			if boom.Load() {
				panic("lookup broke")
			}
			return lookup(ctx, sid)
		}
	})
	tok := f.login("s1", "alice", nil)
	if got := f.check(tok); got != "" {
		t.Fatal(got)
	}
	boom.Store(true)
	f.clock.Advance(6 * time.Second) // due soon: confirmed in the background
	if got := f.check(tok); got != "" {
		t.Fatalf("due soon: %q", got)
	}
	f.waitIdle(tok)
	if panics.Load() != 1 {
		t.Fatalf("%d panics counted, want 1", panics.Load())
	}
	boom.Store(false)
	f.logout("s1")
	f.clock.Advance(6 * time.Second)
	_ = f.check(tok)
	f.waitIdle(tok)
	if got := f.check(tok); got != "invalid_token" {
		t.Fatalf("the confirmation after a panic did not run: %q", got)
	}
}

// A logout that lands while a first verification reads the session must
// not leave the token cached as valid.
func TestGuardLogoutRacesFirstVerification(t *testing.T) {
	f := newGuardFixture(t)
	tok := f.login("s1", "alice", nil)
	entered, release := make(chan string), make(chan struct{})
	f.store.set(func(s *fakeSessions) { s.entered, s.release = entered, release })
	done := make(chan string)
	go func() {
		id, err := f.g.Check(context.Background(), tok)
		switch {
		case err != nil:
			done <- err.Code
		case id != nil:
			done <- ""
		}
	}()
	<-entered // the session was read as valid...
	f.logout("s1")
	f.ended.EndSession("alice", "s1", time.Hour) // ...and ends before the token is cached
	close(release)
	if got := <-done; got != "invalid_token" {
		t.Fatalf("racing check = %q, want invalid_token", got)
	}
	f.store.set(func(s *fakeSessions) { s.entered, s.release = nil, nil })
	if got := f.check(tok); got != "invalid_token" {
		t.Fatalf("next check = %q", got)
	}
}

func TestGuardClaims(t *testing.T) {
	f := newGuardFixture(t, func(c *Config) { c.ClaimHeaders = map[string]string{"uid": "X-User-Id"} })
	t1 := f.login("s1", "alice", map[string]any{"uid": "7", "role": "member"})
	t2 := f.login("s2", "alice", map[string]any{"uid": "7", "role": "member"})
	other := f.login("s3", "bob", map[string]any{"uid": "8"})
	for _, tok := range []string{t1, t2, other} {
		if got := f.check(tok); got != "" {
			t.Fatal(got)
		}
	}
	f.g.SetClaims("alice", map[string]any{"uid": "7", "role": "banned"})
	for tok, want := range map[string]string{t1: "banned", t2: "banned", other: ""} {
		r := serveGuard(t, f.g, tok)
		if r.Header.Get("X-Wx-Role") != want {
			t.Fatalf("%s: X-Wx-Role = %q, want %q", tok, r.Header.Get("X-Wx-Role"), want)
		}
	}
	if r := serveGuard(t, f.g, other); r.Header.Get("X-User-Id") != "8" || r.Header.Get("X-Wx-Openid") != "bob" {
		t.Fatalf("bob's headers: %v", r.Header)
	}
}

func TestGuardEndUser(t *testing.T) {
	f := newGuardFixture(t)
	t1, t2, other := f.login("s1", "alice", nil), f.login("s2", "alice", nil), f.login("s3", "bob", nil)
	for _, tok := range []string{t1, t2, other} {
		if got := f.check(tok); got != "" {
			t.Fatal(got)
		}
	}
	f.ended.EndUser("alice", f.clock.Now(), time.Hour)
	for tok, want := range map[string]string{t1: "invalid_token", t2: "invalid_token", other: ""} {
		if got := f.check(tok); got != want {
			t.Fatalf("%s: %q, want %q", tok, got, want)
		}
	}
	// A session begun after the end is valid.
	f.clock.Advance(time.Second)
	f.store.set(func(s *fakeSessions) {
		s.byID["s4"] = &session.Session{ID: "s4", OpenID: "alice", Created: f.clock.Now().Add(time.Second)}
	})
	if got := f.check("tok-s4"); got != "" {
		t.Fatalf("new session after the end: %q", got)
	}
}

// serveGuard runs one protected request through g and returns what the
// next handler saw.
func serveGuard(t *testing.T, g *Guard, tok string) *http.Request {
	t.Helper()
	var seen *http.Request
	next := nextFunc(func(w http.ResponseWriter, r *http.Request) error {
		seen = r
		return nil
	})
	req := httptest.NewRequest(http.MethodGet, "/api", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("X-Wx-Openid", "spoofed")
	req.Header.Set("X-Wx-Role", "admin")
	w := httptest.NewRecorder()
	if err := serveThen(g, w, req, next); err != nil {
		t.Fatal(err)
	}
	if seen == nil {
		t.Fatalf("refused: %d %s", w.Code, w.Body)
	}
	return seen
}

func TestGuardServe(t *testing.T) {
	t.Run("missing token", func(t *testing.T) {
		f := newGuardFixture(t)
		w := httptest.NewRecorder()
		err := serveThen(f.g, w, httptest.NewRequest(http.MethodGet, "/", nil), nextFunc(func(http.ResponseWriter, *http.Request) error {
			t.Fatal("next handler called")
			return nil
		}))
		if err != nil || w.Code != 401 || w.Header().Get("WWW-Authenticate") == "" {
			t.Fatalf("%v %d %v", err, w.Code, w.Header())
		}
	})
	t.Run("optional: anonymous, spoofed headers removed", func(t *testing.T) {
		f := newGuardFixture(t, func(c *Config) { c.Optional = true })
		var seen *http.Request
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set("X-Wx-Openid", "spoofed")
		_ = serveThen(f.g, httptest.NewRecorder(), req, nextFunc(func(_ http.ResponseWriter, r *http.Request) error {
			seen = r
			return nil
		}))
		if seen == nil || seen.Header.Get("X-Wx-Openid") != "" {
			t.Fatalf("anonymous request: %v", seen)
		}
	})
	t.Run("identity headers replace the client's", func(t *testing.T) {
		f := newGuardFixture(t)
		r := serveGuard(t, f.g, f.login("s1", "alice", nil))
		if r.Header.Get("X-Wx-Openid") != "alice" || r.Header.Get("X-Wx-Role") != "" {
			t.Fatalf("headers: %v", r.Header)
		}
	})
}

// pollFreshness, the policy of these tests, confirms a cached token's
// session in the background after soon, and before answering after stale.
type pollFreshness struct {
	soon, stale time.Duration
}

func (p pollFreshness) due(checked, now int64) staleness {
	switch age := time.Duration(now - checked); {
	case age < p.soon:
		return fresh
	case age < p.stale:
		return recheckSoon
	}
	return recheckNow
}

// countingCounter is a Counter a test reads.
type countingCounter struct{ atomic.Int64 }

func (c *countingCounter) Inc() { c.Add(1) }

// nextFunc is a next handler made of a function.
type nextFunc func(http.ResponseWriter, *http.Request) error

func (f nextFunc) ServeHTTP(w http.ResponseWriter, r *http.Request) error { return f(w, r) }

// serveThen runs g on r and then, when r goes on, next: what the Caddy
// glue does.
func serveThen(g *Guard, w http.ResponseWriter, r *http.Request, next nextFunc) error {
	if _, _, pass, err := g.Serve(w, r); !pass {
		return err
	}
	return next.ServeHTTP(w, r)
}

// errKeysNotLoaded is what the glue's verify answers while the keys could
// not be loaded.
var errKeysNotLoaded = apierr.New(http.StatusServiceUnavailable, "store_unavailable", "the signing keys could not be loaded")

// A token past its expiry, still accepted within the verifier's leeway,
// whose session ended with it is refused as expired, saying to log in
// again; before its expiry, a session that is gone has ended.
func TestExpiredTokenInLeewaySaysExpired(t *testing.T) {
	withLeeway := func(c *Config) {
		verify := c.Verify
		c.Verify = func(tok string) (*token.Claims, time.Duration, error) {
			claims, _, err := verify(tok)
			return claims, time.Minute, err
		}
	}
	for _, tc := range []struct {
		name   string
		cached bool
	}{{"first sight", false}, {"cached", true}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newGuardFixture(t, withLeeway)
			tok := f.login("s1", "o-s1", nil)
			if tc.cached {
				if code := f.check(tok); code != "" {
					t.Fatalf("a fresh token: %s", code)
				}
			}
			// The session's record expires with the token.
			f.clock.Advance(time.Hour + 10*time.Second)
			f.logout("s1")
			id, aerr := f.g.Check(context.Background(), tok)
			if aerr == nil {
				t.Fatalf("accepted: %+v", id)
			}
			if aerr.Code != "invalid_token" || !strings.Contains(aerr.Message, "the token has expired") || !strings.Contains(aerr.Message, "wx.login") {
				t.Fatalf("refused with %s: %s", aerr.Code, aerr.Message)
			}
		})
	}
	f := newGuardFixture(t, withLeeway)
	tok := f.login("s2", "o-s2", nil)
	f.logout("s2")
	if _, aerr := f.g.Check(context.Background(), tok); aerr == nil || aerr.Message != "the session has ended" {
		t.Fatalf("a live token of an ended session: %v", aerr)
	}
}

// Under link_by unionid one person logged in on two apps is one user: each
// token hands on how its app sees them, a claim change reaches both, and
// ending the user ends both.
func TestLinkedUserFaces(t *testing.T) {
	f := newGuardFixture(t, func(c *Config) { c.Keys = users.KeyRule{PrimaryApp: "wxmp", LinkByUnionID: true} })
	add := func(s session.Session) string {
		s.Created = f.clock.Now().Add(-time.Minute)
		f.store.set(func(st *fakeSessions) { st.byID[s.ID] = &s })
		return "tok-" + s.ID
	}
	// As the login flow stores them: each session names its user's key.
	mp := add(session.Session{ID: "s1", OpenID: "m1", UnionID: "u1", Platform: "wechat", AppID: "wxmp", Surface: "mp", User: "unionid+u1"})
	web := add(session.Session{ID: "s2", OpenID: "w1", UnionID: "u1", Platform: "wechat", AppID: "wxweb", Surface: "qr", User: "unionid+u1"})
	guest := add(session.Session{ID: "s3", OpenID: "d1", Platform: "douyin", AppID: "tt1", Surface: "mp", Anonymous: true, User: "douyin+tt1+d1"})
	// Logged in before link_by unionid was set: its user stays its openid.
	before := add(session.Session{ID: "s4", OpenID: "m4", UnionID: "u4", Platform: "wechat", AppID: "wxmp", Surface: "mp"})
	want := map[string]http.Header{
		mp:    {"X-Wx-Openid": {"m1"}, "X-Wx-Unionid": {"u1"}, "X-Wx-Platform": {"wechat"}, "X-Wx-Surface": {"mp"}, "X-Wx-Appid": {"wxmp"}},
		web:   {"X-Wx-Openid": {"w1"}, "X-Wx-Unionid": {"u1"}, "X-Wx-Platform": {"wechat"}, "X-Wx-Surface": {"qr"}, "X-Wx-Appid": {"wxweb"}},
		guest: {"X-Wx-Openid": {"d1"}, "X-Wx-Platform": {"douyin"}, "X-Wx-Surface": {"mp"}, "X-Wx-Appid": {"tt1"}, "X-Wx-Anonymous": {"1"}},
	}
	headers := func(tok string) http.Header {
		req := httptest.NewRequest(http.MethodGet, "/api", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		return passRequest(t, f.g, req).Header
	}
	for tok, h := range want {
		if got := headers(tok); !reflect.DeepEqual(got, h) {
			t.Errorf("%s: headers %v, want %v", tok, got, h)
		}
	}
	f.g.SetClaims("unionid+u1", map[string]any{"uid": "7"})
	for _, tok := range []string{mp, web} {
		if got := headers(tok).Get("X-Wx-Uid"); got != "7" {
			t.Errorf("%s: claim %q after SetClaims on the person", tok, got)
		}
	}
	if got := headers(guest).Get("X-Wx-Uid"); got != "" {
		t.Errorf("another user got the claim: %q", got)
	}
	f.g.EndUser("unionid+u1", f.clock.Now())
	for _, tok := range []string{mp, web} {
		if _, err := f.g.Check(context.Background(), tok); err == nil {
			t.Errorf("%s: accepted after the person's sessions ended", tok)
		}
	}
	if _, err := f.g.Check(context.Background(), guest); err != nil {
		t.Errorf("another user's token refused: %v", err)
	}
	// The feed names the key the session was stored under.
	if _, err := f.g.Check(context.Background(), before); err != nil {
		t.Fatal(err)
	}
	f.g.EndUser("m4", f.clock.Now())
	if _, err := f.g.Check(context.Background(), before); err == nil {
		t.Error("a session stored before link_by is not ended by its stored user key")
	}
}

func TestPastHalfLife(t *testing.T) {
	at := time.Unix(1000, 0)
	id := &Identity{iat: at.UnixNano(), exp: at.Add(time.Hour).UnixNano()}
	for _, c := range []struct {
		after time.Duration
		want  bool
	}{{0, false}, {29 * time.Minute, false}, {30 * time.Minute, true}, {2 * time.Hour, true}} {
		if got := id.PastHalfLife(at.Add(c.after)); got != c.want {
			t.Errorf("after %s: %v, want %v", c.after, got, c.want)
		}
	}
	if (&Identity{exp: at.UnixNano()}).PastHalfLife(at.Add(time.Hour)) {
		t.Error("a token without iat is renewed")
	}
}
