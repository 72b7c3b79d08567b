package wxauth

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
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/golang-jwt/jwt/v5"

	"github.com/wxauth/caddy-wxauth/internal/clock"
	"github.com/wxauth/caddy-wxauth/session"
	"github.com/wxauth/caddy-wxauth/token"
)

// BenchmarkGuardServe is guard.serve on a token already cached, alone: no
// Caddy, a next handler that does nothing, one request whose headers and
// replacer are put back as they came before each iteration ("reset" is
// that alone).
func BenchmarkGuardServe(b *testing.B) {
	start := time.Now()
	health := &fakeFeedState{}
	health.caught.Store(math.MaxInt64) // caught up for good
	sid := session.NewID()
	const openid = "oAbCdEfGhIjKlMnOpQrStUvWxYz0"
	g := newGuard(guardConfig{
		ctx: b.Context(),
		verify: func(tok string) (*token.Claims, time.Duration, error) {
			cl := &token.Claims{SessionID: sid, UnionID: "uAbCdEfGhIjKlMnOpQrStUvWxYz0"}
			cl.Subject = openid
			cl.IssuedAt = jwt.NewNumericDate(start.Add(-time.Minute))
			cl.ExpiresAt = jwt.NewNumericDate(start.Add(time.Hour))
			return cl, 0, nil
		},
		lookup: func(_ context.Context, sid string) (*session.Session, error) {
			return &session.Session{ID: sid, OpenID: openid, Created: start.Add(-time.Minute)}, nil
		},
		now:     clock.Coarse.Now,
		fresh:   feedFreshness{feed: health, bound: time.Second, lag: time.Second},
		ended:   newEndedSet(time.Now),
		sources: []TokenSource{{From: "header", Name: "Authorization", Scheme: "Bearer"}},
	})
	tok := "eyJ" + strings.Repeat("x", 350)
	tmpl := httptest.NewRequest(http.MethodGet, "http://127.0.0.1/api/me", nil)
	tmpl.Header.Set("User-Agent", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) MicroMessenger/8.0.50 MiniProgramEnv/iOS")
	tmpl.Header.Set("Accept", "*/*")
	tmpl.Header.Set("Accept-Encoding", "gzip, deflate, br")
	tmpl.Header.Set("Referer", "https://servicewechat.com/wx/1/page-frame.html")
	tmpl.Header.Set("Authorization", "Bearer "+tok)
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })
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
	if err := g.serve(w, r, next); err != nil || r.Header.Get("X-Wx-Openid") != openid {
		b.Fatal(err, r.Header)
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
			if err := g.serve(w, r, next); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func noVar(string) (any, bool) { return nil, false }
