package guard

import (
	"context"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/golang-jwt/jwt/v5"

	"github.com/wxauth/caddy-wxauth/internal/clock"
	"github.com/wxauth/caddy-wxauth/session"
	"github.com/wxauth/caddy-wxauth/token"
)

// BenchmarkGuardServe is Guard.Serve on a token already cached, alone: no
// Caddy server, a next handler that does nothing, one request whose headers and
// replacer are put back as they came before each iteration ("reset" is
// that alone). The header map is cleared and refilled, so it keeps the room
// the identity headers took the first time; in "-fresh", each iteration's
// request has a header map of its own, cloned as a server builds one, which
// grows for the identity headers as a real request's does.
func BenchmarkGuardServe(b *testing.B) {
	start := time.Now()
	health := &fakeFeedState{}
	health.caught.Store(math.MaxInt64) // caught up for good
	sid := session.NewID()
	// A user with a unionid, as the Caddy benchmarks' user is: five
	// identity headers.
	const openid, unionid = "oAbCdEfGhIjKlMnOpQrStUvWxYz0", "uAbCdEfGhIjKlMnOpQrStUvWxYz0"
	g := New(Config{
		Ctx: b.Context(),
		Verify: func(tok string) (*token.Claims, time.Duration, error) {
			cl := &token.Claims{SessionID: sid, UnionID: unionid}
			cl.Subject = openid
			cl.IssuedAt = jwt.NewNumericDate(start.Add(-time.Minute))
			cl.ExpiresAt = jwt.NewNumericDate(start.Add(time.Hour))
			return cl, 0, nil
		},
		Lookup: func(_ context.Context, sid string) (*session.Session, error) {
			return &session.Session{ID: sid, OpenID: openid, UnionID: unionid, Created: start.Add(-time.Minute)}, nil
		},
		Now:     clock.Coarse.Now,
		Fresh:   FeedFreshness{Feed: health, Bound: time.Second, Lag: time.Second},
		Ended:   NewEnded(time.Now),
		Sources: []TokenSource{{From: "header", Name: "Authorization", Scheme: "Bearer"}},
		// As the Caddy glue hands them over.
		Placeholders: func(r *http.Request, lookup func(string) (any, bool)) {
			if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
				repl.Map(lookup)
			}
		},
	})
	tok := "eyJ" + strings.Repeat("x", 350)
	tmpl := httptest.NewRequest(http.MethodGet, "http://127.0.0.1/api/me", nil)
	tmpl.Header.Set("User-Agent", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) MicroMessenger/8.0.50 MiniProgramEnv/iOS")
	tmpl.Header.Set("Accept", "*/*")
	tmpl.Header.Set("Accept-Encoding", "gzip, deflate, br")
	tmpl.Header.Set("Referer", "https://servicewechat.com/wx/1/page-frame.html")
	tmpl.Header.Set("Authorization", "Bearer "+tok)
	next := nextFunc(func(http.ResponseWriter, *http.Request) error { return nil })
	w := httptest.NewRecorder()

	repl := caddy.NewReplacer()
	repl.Map(noVar) // as Caddy's server does: the providers slice has room then
	saved := *repl
	r := tmpl.Clone(context.WithValue(context.Background(), caddy.ReplacerCtxKey, repl))
	reset := func() {
		*repl = saved
		clear(r.Header)
		maps.Copy(r.Header, tmpl.Header)
	}
	reset()
	if err := serveThen(g, w, r, next); err != nil || r.Header.Get("X-Wx-Openid") != openid || r.Header.Get("X-Wx-Unionid") != unionid {
		b.Fatal(err, r.Header)
	}
	if v, _ := repl.GetString("http.auth.user.openid"); v != openid {
		b.Fatalf("placeholder http.auth.user.openid = %q", v)
	}
	b.Run("reset", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			reset()
			_ = next.ServeHTTP(w, r)
		}
	})
	b.Run("serve", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			reset()
			if err := serveThen(g, w, r, next); err != nil {
				b.Fatal(err)
			}
		}
	})
	fresh := func() {
		*repl = saved
		r.Header = tmpl.Header.Clone()
	}
	b.Run("reset-fresh", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			fresh()
			_ = next.ServeHTTP(w, r)
		}
	})
	b.Run("serve-fresh", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			fresh()
			if err := serveThen(g, w, r, next); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func noVar(string) (any, bool) { return nil, false }
