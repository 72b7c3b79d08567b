package web

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/wxauth/caddy-wxauth/internal/apierr"
	"github.com/wxauth/caddy-wxauth/internal/clock"
	"github.com/wxauth/caddy-wxauth/session"
)

// fakeSessions stands in for the handler: one session per code, a second
// login with the code gets it again only with the same nonce, as the login
// flow does.
type fakeSessions struct {
	now func() time.Time

	mu         sync.Mutex
	byCode     map[string]string // code -> sid
	nonces     map[string]string // code -> nonce
	tokens     map[string]string // token -> sid
	ended      map[string]bool   // sid -> ended
	logins     []string          // codes of every Login call
	loggedOut  []string          // tokens of every Logout call
	loginErr   error             // answered by Login when set
	logoutErr  error             // answered by Logout when set
	gate       chan struct{}     // when set, the first Login waits for it
	inLogin    chan struct{}     // closed when a Login call waits at gate
	gatePassed bool
}

func newFakeSessions(now func() time.Time) *fakeSessions {
	return &fakeSessions{now: now, byCode: map[string]string{}, nonces: map[string]string{},
		tokens: map[string]string{}, ended: map[string]bool{}}
}

const tokenLife = 2 * time.Hour

func (f *fakeSessions) Login(r *http.Request, log *zap.Logger, code, nonce string) (Issued, error) {
	f.mu.Lock()
	f.logins = append(f.logins, code)
	if f.gate != nil && !f.gatePassed {
		f.gatePassed = true
		f.mu.Unlock()
		close(f.inLogin)
		<-f.gate
		f.mu.Lock()
	}
	defer f.mu.Unlock()
	if f.loginErr != nil {
		return Issued{}, f.loginErr
	}
	sid, seen := f.byCode[code]
	switch {
	case seen && f.nonces[code] != nonce:
		return Issued{}, apierr.New(http.StatusUnauthorized, "invalid_code", "this code was already used")
	case !seen:
		sid = fmt.Sprintf("sid%d", len(f.byCode)+1)
		f.byCode[code], f.nonces[code] = sid, nonce
	}
	tok := fmt.Sprintf("TOKEN-%s-%d", sid, len(f.tokens)+1)
	f.tokens[tok] = sid
	return Issued{Token: tok, SID: sid, Expires: f.now().Add(tokenLife)}, nil
}

func (f *fakeSessions) SID(ctx context.Context, tok string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if sid := f.tokens[tok]; !f.ended[sid] {
		return sid
	}
	return ""
}

func (f *fakeSessions) Logout(ctx context.Context, log *zap.Logger, tok string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.loggedOut = append(f.loggedOut, tok)
	if f.logoutErr != nil {
		return f.logoutErr
	}
	if sid, ok := f.tokens[tok]; ok {
		f.ended[sid] = true
	}
	return nil
}

func (f *fakeSessions) loginCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.logins)
}

// testKey signs the tests' state cookies.
var testKey = []byte("0123456789abcdef0123456789abcdef")

// site is a web app's routes under test, with its fakes.
type site struct {
	t        *testing.T
	rt       *Routes
	sessions *fakeSessions
	store    *session.Memory
	clock    *clock.Fake
}

// newSite returns the routes of an oa app "site" (mod changes it) over a
// fake clock, fake sessions and a memory store.
func newSite(t *testing.T, mod func(*App, *RoutesConfig)) *site {
	t.Helper()
	fc := clock.NewFake()
	s := &site{t: t, sessions: newFakeSessions(fc.Now), store: session.NewMemory(), clock: fc}
	app := App{Name: "site", AppID: "wxoa0000000000001", AppSecret: "SECRET-do-not-leak", Mode: ModeOA}
	cfg := RoutesConfig{Sessions: s.sessions, Store: s.store, KeyPrefix: "wxauth/wxmp", StateKey: testKey, Now: fc.Now}
	if mod != nil {
		mod(&app, &cfg)
	}
	if err := app.Prepare(); err != nil {
		t.Fatal(err)
	}
	cfg.App = app
	rt, err := NewRoutes(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.rt = rt
	return s
}

// browser keeps cookies by name, as a browser would for these paths; a
// cookie whose Max-Age is 0 or less is removed.
type browser struct {
	cookies map[string]*http.Cookie
	header  http.Header // sent with every request
	tls     bool
}

func newBrowser() *browser {
	return &browser{cookies: map[string]*http.Cookie{}, header: http.Header{}}
}

// do sends a request to s's routes from b and keeps the cookies it sets.
func (s *site) do(b *browser, method, target string, body string) *http.Response {
	s.t.Helper()
	var r *http.Request
	if body != "" {
		r = httptest.NewRequest(method, target, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		r = httptest.NewRequest(method, target, nil)
	}
	switch {
	case !b.tls:
		r.TLS = nil
	case r.TLS == nil:
		r.TLS = &tls.ConnectionState{}
	}
	for k, v := range b.header {
		r.Header[k] = v
	}
	for _, c := range b.cookies {
		r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	w := httptest.NewRecorder()
	s.rt.ServeHTTP(w, r)
	resp := w.Result()
	for _, c := range resp.Cookies() {
		if c.MaxAge < 0 {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c
		}
	}
	return resp
}

// cookie returns the Set-Cookie of name in resp, or nil.
func cookie(resp *http.Response, name string) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// startLogin runs GET /login?next= in b and returns the state WeChat is sent.
func (s *site) startLogin(b *browser, next string) string {
	s.t.Helper()
	target := "http://example.com/wx/web/site/login"
	if next != "" {
		target += "?next=" + next
	}
	resp := s.do(b, http.MethodGet, target, "")
	if resp.StatusCode != http.StatusFound {
		s.t.Fatalf("login: %d", resp.StatusCode)
	}
	loc := resp.Header.Get("Location")
	_, rest, ok := strings.Cut(loc, "&state=")
	state, _, ok2 := strings.Cut(rest, "#")
	if !ok || !ok2 {
		s.t.Fatalf("login redirect %q has no state", loc)
	}
	return state
}

// callback loads the callback in b with code and state.
func (s *site) callback(b *browser, code, state string) *http.Response {
	s.t.Helper()
	return s.do(b, http.MethodGet, "http://example.com/wx/web/site/callback?code="+code+"&state="+state, "")
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
