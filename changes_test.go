package wxauth

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/wxauth/caddy-wxauth/internal/changes"
	"github.com/wxauth/caddy-wxauth/session"
)

func TestFeedFreshness(t *testing.T) {
	clock := newFakeClock()
	h := new(fakeFeedState)
	p := feedFreshness{feed: h, bound: time.Second, lag: time.Second}
	now := clock.Now().UnixNano()
	sec := int64(time.Second)
	cases := []struct {
		name        string
		caught, gap int64
		checked     int64
		want        staleness
	}{
		{"feed caught up", now - sec/2, 0, now - time.Hour.Nanoseconds(), fresh},
		{"feed as far behind as usual, plus the bound", now - 2*sec, 0, now - time.Hour.Nanoseconds(), fresh},
		{"feed behind for longer", now - 2*sec - 1, 0, now - time.Hour.Nanoseconds(), recheckNow},
		{"feed behind, token confirmed recently", now - 5*sec, 0, now - sec/2, fresh},
		{"feed behind, token not confirmed within the bound", now - 5*sec, 0, now - 2*sec, recheckNow},
		{"feed never read (not started)", 0, 0, now - 2*sec, recheckNow},
		{"gap after the token was confirmed", now, now - sec, now - 2*sec, recheckNow},
		{"gap before the token was confirmed", now, now - 3*sec, now - 2*sec, fresh},
	}
	for _, c := range cases {
		h.caught.Store(c.caught)
		h.gap.Store(c.gap)
		if got := p.due(c.checked, now); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// fakeFeedState is a change feed read as far as a test says.
type fakeFeedState struct{ caught, gap atomic.Int64 }

func (s *fakeFeedState) CaughtUp() int64 { return s.caught.Load() }
func (s *fakeFeedState) LastGap() int64  { return s.gap.Load() }

func TestPollFreshness(t *testing.T) {
	p := pollFreshness{soon: 5 * time.Second, stale: 7 * time.Second}
	for age, want := range map[time.Duration]staleness{
		0: fresh, 4 * time.Second: fresh, 5 * time.Second: recheckSoon, 6 * time.Second: recheckSoon, 7 * time.Second: recheckNow,
	} {
		if got := p.due(0, int64(age)); got != want {
			t.Errorf("age %v: %v, want %v", age, got, want)
		}
	}
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
	f := newGuardFixture(t)
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
	if r := serveGuard(t, f.g, tok); r.Header.Get("X-Wx-Role") != "admin" {
		t.Fatalf("claims not applied: %v", r.Header)
	}
	// A large integer id arrives as written, not rounded through float64.
	fl.Deliver([]byte(`{"type":"claims","openid":"alice","claims":{"uid":12345678901234567890}}`))
	if r := serveGuard(t, f.g, tok); r.Header.Get("X-Wx-Uid") != "12345678901234567890" {
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
	f := newGuardFixture(t)
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
