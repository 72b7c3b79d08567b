package wxauth

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"

	"github.com/wxauth/caddy-wxauth/internal/apierr"
	"github.com/wxauth/caddy-wxauth/internal/changes"
	"github.com/wxauth/caddy-wxauth/internal/clock"
	"github.com/wxauth/caddy-wxauth/internal/guard"
	"github.com/wxauth/caddy-wxauth/session"
	"github.com/wxauth/caddy-wxauth/token"
)

// appFixture is an app's ended record with one guard over fake sessions,
// so a test sees the change feed's events reach the guard (the guard
// itself is tested in internal/guard). Tokens are "tok-<sid>".
type appFixture struct {
	t        *testing.T
	clock    *clock.Fake
	ended    *guard.Ended
	g        *guard.Guard
	sessions map[string]*session.Session
	leeway   time.Duration // the verifier's, 0 unless a test sets it
}

func newAppFixture(t *testing.T) *appFixture {
	t.Helper()
	f := &appFixture{t: t, clock: clock.NewFake(), sessions: map[string]*session.Session{}}
	f.ended = guard.NewEnded(f.clock.Now)
	exp := f.clock.Now().Add(time.Hour)
	f.g = guard.New(guard.Config{
		Ctx: t.Context(),
		Verify: func(tok string) (*token.Claims, time.Duration, error) {
			s := f.sessions[strings.TrimPrefix(tok, "tok-")]
			if s == nil {
				return nil, 0, token.ErrMalformed
			}
			c := &token.Claims{SessionID: s.ID}
			c.Subject = s.OpenID
			c.IssuedAt = jwt.NewNumericDate(s.Created)
			c.ExpiresAt = jwt.NewNumericDate(exp)
			return c, f.leeway, nil
		},
		Lookup: func(_ context.Context, sid string) (*session.Session, error) {
			s := f.sessions[sid]
			if s == nil {
				return nil, session.ErrNotFound
			}
			c := *s
			return &c, nil
		},
		Now:     f.clock.Now,
		Fresh:   guard.FeedFreshness{Feed: caughtUp{}, Bound: time.Second},
		Ended:   f.ended,
		Sources: []TokenSource{{From: "header", Name: "Authorization", Scheme: "Bearer"}},
	})
	t.Cleanup(f.g.Close)
	return f
}

// caughtUp is a change feed read to the end, for good.
type caughtUp struct{}

func (caughtUp) CaughtUp() int64 { return math.MaxInt64 }
func (caughtUp) LastGap() int64  { return 0 }

// login adds a session for openid and returns its token.
func (f *appFixture) login(sid, openid string, claims map[string]any) string {
	f.sessions[sid] = &session.Session{ID: sid, OpenID: openid, Created: f.clock.Now().Add(-time.Minute), Claims: claims}
	return "tok-" + sid
}

// check runs the token check and returns the error code, or "" when accepted.
func (f *appFixture) check(tok string) string {
	if _, err := f.g.Check(context.Background(), tok); err != nil {
		return err.Code
	}
	return ""
}

// serve runs one protected request with tok and returns it as the next
// handler gets it.
func (f *appFixture) serve(tok string) *http.Request {
	f.t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/api", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	w := httptest.NewRecorder()
	if _, _, pass, err := f.g.Serve(w, req); !pass {
		f.t.Fatalf("refused: %v %d %s", err, w.Code, w.Body)
	}
	return req
}

// fakeFeed records what is published and lets a test deliver payloads.
type fakeFeed struct {
	published [][]byte
	fail      int // publishes that fail before one succeeds
}

func (f *fakeFeed) Publish(_ context.Context, p []byte) error {
	if f.fail > 0 {
		f.fail--
		return context.DeadlineExceeded
	}
	f.published = append(f.published, p)
	return nil
}

func (f *fakeFeed) Follow(ctx context.Context, _ session.Follower) {
	<-ctx.Done()
}

func TestChangesApplyAndIgnoreBadEvents(t *testing.T) {
	f := newAppFixture(t)
	c := newChanges(nil, f.ended, time.Hour, f.clock.Now, zap.NewNop())
	tok := f.login("s1", "alice", map[string]any{"role": "member"})
	other := f.login("s2", "bob", nil)
	for _, tk := range []string{tok, other} {
		if f.check(tk) != "" {
			t.Fatal("first check refused")
		}
	}
	fl := c.Follower()
	// What cannot be read is ignored and changes nothing.
	for _, p := range [][]byte{nil, []byte("{"), []byte(`{"type":"grant","openid":"bob"}`), []byte(`{"type":"end_user","openid":"bob"}`), []byte(`{"type":"end_session","sid":"s2"}`), []byte(`{"type":"end_user","openid":"bob","at":4102444800000000000} {}`)} {
		fl.Deliver(p)
	}
	if f.check(other) != "" {
		t.Fatal("a bad event ended a session")
	}
	claims, _ := json.Marshal(changes.Event{Type: changes.Claims, OpenID: "alice", Claims: map[string]any{"role": "admin"}})
	fl.Deliver(claims)
	if r := f.serve(tok); r.Header.Get("X-Wx-Role") != "admin" {
		t.Fatalf("claims not applied: %v", r.Header)
	}
	// A large integer id arrives as written, not rounded through float64.
	fl.Deliver([]byte(`{"type":"claims","openid":"alice","claims":{"uid":12345678901234567890}}`))
	if r := f.serve(tok); r.Header.Get("X-Wx-Uid") != "12345678901234567890" {
		t.Fatalf("a large claim number from the feed: %v", r.Header)
	}
	end, _ := json.Marshal(changes.Event{Type: changes.EndSession, OpenID: "alice", SID: "s1"})
	fl.Deliver(end)
	if f.check(tok) != "invalid_token" {
		t.Fatal("end_session not applied")
	}
	endUser, _ := json.Marshal(changes.Event{Type: changes.EndUser, OpenID: "bob", At: f.clock.Now().UnixNano()})
	fl.Deliver(endUser)
	if f.check(other) != "invalid_token" {
		t.Fatal("end_user not applied")
	}
	lost := counterValue(metrics.storeFeed)
	fl.Lost(errors.New("connection reset"))
	if counterValue(metrics.storeFeed) != lost+1 {
		t.Fatal("a lost feed read was not counted")
	}
	fl.CaughtUp(f.clock.Now())
	if c.CaughtUp() != f.clock.Now().UnixNano() {
		t.Fatal("catch-up not recorded")
	}
	gaps := new(gapCounter)
	c.SubscribeGaps(gaps)
	fl.Gap()
	if c.LastGap() != f.clock.Now().UnixNano() || gaps.n != 1 {
		t.Fatal("gap not recorded")
	}
}

// gapCounter counts the gaps it is told.
type gapCounter struct{ n int }

func (g *gapCounter) Gap() { g.n++ }

// A publish that fails is applied here anyway (its queueing for the retry
// is tested in internal/changes).
func TestChangesPublish(t *testing.T) {
	f := newAppFixture(t)
	feed := &fakeFeed{fail: changes.PublishAttempts}
	c := newChanges(feed, f.ended, time.Hour, f.clock.Now, zap.NewNop())
	tok := f.login("s1", "alice", nil)
	if f.check(tok) != "" {
		t.Fatal("first check refused")
	}
	if err := c.Publish(context.Background(), changes.Event{Type: changes.EndSession, OpenID: "alice", SID: "s1"}); err == nil {
		t.Fatal("a failed publish reported success")
	}
	if f.check(tok) != "invalid_token" {
		t.Fatal("the event was not applied here")
	}
	if err := c.Publish(context.Background(), changes.Event{Type: changes.EndSession, OpenID: "bob", SID: "s2"}); err != nil || len(feed.published) != 1 {
		t.Fatalf("publish: %v, %d published", err, len(feed.published))
	}
}

// A refresh refused to a token past its expiry, accepted within the
// verifier's leeway, says that the token expired and the app must log in
// again, not that the session has ended; a live token's refusal is kept.
func TestRefreshInLeewaySaysExpired(t *testing.T) {
	f := newAppFixture(t)
	f.leeway = time.Minute
	h := &Handler{guard: f.g}
	ended := apierr.InvalidToken("the session has ended")
	live, aerr := f.g.Check(context.Background(), f.login("s1", "o1", nil))
	if aerr != nil {
		t.Fatal(aerr)
	}
	for _, err := range []error{ended, apierr.StoreUnavailable} {
		if got := h.refreshRefused(live, err); got != err {
			t.Errorf("a live token's refusal %v became %v", err, got)
		}
	}
	f.clock.Advance(time.Hour + 10*time.Second) // past exp, within the leeway
	late, aerr := f.g.Check(context.Background(), f.login("s2", "o2", nil))
	if aerr != nil {
		t.Fatalf("a token within the leeway: %v", aerr)
	}
	for _, err := range []error{ended, apierr.InvalidToken("the session has reached session_max_age; call wx.login and log in again")} {
		got := h.refreshRefused(late, err)
		var ae *apierr.Error
		if !errors.As(got, &ae) || ae.Code != "invalid_token" || !strings.Contains(ae.Message, "the token has expired") || !strings.Contains(ae.Message, "wx.login") {
			t.Errorf("%v became %v, want the token has expired", err, got)
		}
	}
	if got := h.refreshRefused(late, apierr.StoreUnavailable); got != apierr.StoreUnavailable {
		t.Errorf("a store failure became %v", got)
	}
}
