package changes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wxauth/caddy-wxauth/session"
)

// recorder is a Subscriber that writes down what it is told.
type recorder struct {
	mu  sync.Mutex
	got []string
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, s)
}

func (r *recorder) EndSession(openid, sid string) { r.add("end_session " + openid + " " + sid) }
func (r *recorder) EndUser(openid string, at time.Time) {
	r.add(fmt.Sprintf("end_user %s %d", openid, at.UnixNano()))
}
func (r *recorder) SetClaims(openid string, claims map[string]any) {
	b, _ := json.Marshal(claims)
	r.add(fmt.Sprintf("claims %s %s %T", openid, b, claims["uid"]))
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	got := r.got
	r.got = nil
	return got
}

// fakeFeed records what is published, failing the first fail publishes.
type fakeFeed struct {
	mu        sync.Mutex
	published [][]byte
	fail      int
	followed  chan session.Follower
}

func (f *fakeFeed) Publish(_ context.Context, p []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail > 0 {
		f.fail--
		return context.DeadlineExceeded
	}
	f.published = append(f.published, p)
	return nil
}

func (f *fakeFeed) Follow(ctx context.Context, fol session.Follower) {
	if f.followed != nil {
		f.followed <- fol
	}
	<-ctx.Done()
}

func (f *fakeFeed) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.published)
}

// fakeClock is a clock that moves when told.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

func TestDeliverAppliesEventsAndIgnoresBadOnes(t *testing.T) {
	sub := new(recorder)
	c := New(Config{Subscriber: sub})
	fl := c.Follower()
	// What cannot be read is ignored and changes nothing.
	for _, p := range [][]byte{nil, []byte("{"), []byte(`{"type":"grant","openid":"bob"}`), []byte(`{"type":"end_user","openid":"bob"}`),
		[]byte(`{"type":"end_session","sid":"s2"}`), []byte(`{"type":"end_session","openid":"bob"}`), []byte(`{"type":"claims"}`),
		[]byte(`{"type":"end_user","openid":"bob","at":4102444800000000000} {}`)} {
		fl.Deliver(p)
	}
	if got := sub.take(); len(got) != 0 {
		t.Fatalf("bad events applied: %v", got)
	}
	end, _ := json.Marshal(Event{Type: EndSession, OpenID: "alice", SID: "s1"})
	fl.Deliver(end)
	endUser, _ := json.Marshal(Event{Type: EndUser, OpenID: "bob", At: 42})
	fl.Deliver(endUser)
	// A large integer id arrives as written, not rounded through float64.
	fl.Deliver([]byte(`{"type":"claims","openid":"alice","claims":{"uid":12345678901234567890}}`))
	want := []string{"end_session alice s1", "end_user bob 42", `claims alice {"uid":12345678901234567890} json.Number`}
	if got := sub.take(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("applied %v, want %v", got, want)
	}
}

func TestFollowerHealthAndGaps(t *testing.T) {
	clk := &fakeClock{now: time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)}
	lost := 0
	c := New(Config{Subscriber: new(recorder), Now: clk.Now, FeedLost: func() { lost++ }})
	fl := c.Follower()
	if c.CaughtUp() != 0 || c.LastGap() != 0 {
		t.Fatal("a new feed reports progress")
	}
	fl.Lost(errors.New("connection reset"))
	if lost != 1 {
		t.Fatalf("a lost feed read counted %d times", lost)
	}
	at := clk.now.Add(-time.Second)
	fl.CaughtUp(at)
	if c.CaughtUp() != at.UnixNano() {
		t.Fatal("catch-up not recorded")
	}
	a, b := new(gapCounter), new(gapCounter)
	c.SubscribeGaps(a)
	unsubscribe := c.SubscribeGaps(b)
	fl.Gap()
	if c.LastGap() != clk.now.UnixNano() || a.n != 1 || b.n != 1 {
		t.Fatalf("gap: at %d, told %d and %d", c.LastGap(), a.n, b.n)
	}
	unsubscribe()
	clk.now = clk.now.Add(time.Minute)
	fl.Gap()
	if c.LastGap() != clk.now.UnixNano() || a.n != 2 || b.n != 1 {
		t.Fatalf("gap after an unsubscribe: told %d and %d", a.n, b.n)
	}
	// A wiped store counts as a gap, told by the one who found it.
	clk.now = clk.now.Add(time.Minute)
	c.Wiped()
	if c.LastGap() != clk.now.UnixNano() || a.n != 2 {
		t.Fatal("wipe not recorded as a gap, or told back to the listeners")
	}
}

// gapCounter counts the gaps it is told.
type gapCounter struct{ n int }

func (g *gapCounter) Gap() { g.n++ }

// A publish that fails is applied here anyway and queued for the retry,
// which publishes it once the feed is back.
func TestPublishAndRetry(t *testing.T) {
	sub := new(recorder)
	feed := &fakeFeed{fail: PublishAttempts}
	c := New(Config{Feed: feed, Subscriber: sub})
	if err := c.Publish(context.Background(), Event{Type: EndSession, OpenID: "alice", SID: "s1"}); err == nil {
		t.Fatal("a failed publish reported success")
	}
	if got := sub.take(); len(got) != 1 || got[0] != "end_session alice s1" {
		t.Fatalf("the event was not applied here: %v", got)
	}
	if len(c.pending) != 1 {
		t.Fatal("the failed event was not queued for the retry")
	}
	if err := c.Publish(context.Background(), Event{Type: EndSession, OpenID: "bob", SID: "s2"}); err != nil || feed.count() != 1 {
		t.Fatalf("publish: %v, %d published", err, feed.count())
	}
	feed.mu.Lock()
	feed.fail = 1 // the retry's first try fails too
	feed.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Retry(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for feed.count() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // polling for the retry's publish, with a deadline
	}
	cancel()
	<-done
	feed.mu.Lock()
	defer feed.mu.Unlock()
	var ev Event
	if len(feed.published) != 2 || json.Unmarshal(feed.published[1], &ev) != nil || ev.SID != "s1" {
		t.Fatalf("the retry published %d events", len(feed.published))
	}
}

// A full retry queue loses the event (logged), and Publish still answers.
func TestPublishQueueFull(t *testing.T) {
	feed := &fakeFeed{fail: 1 << 30}
	c := New(Config{Feed: feed, Subscriber: new(recorder)})
	for range pendingMax + 1 {
		if err := c.Publish(context.Background(), Event{Type: Claims, OpenID: "o"}); err == nil {
			t.Fatal("a failed publish reported success")
		}
	}
	if len(c.pending) != pendingMax {
		t.Fatalf("%d queued, want %d", len(c.pending), pendingMax)
	}
}

// Follow hands the feed the follower, which applies what it delivers.
func TestFollow(t *testing.T) {
	sub := new(recorder)
	feed := &fakeFeed{followed: make(chan session.Follower, 1)}
	c := New(Config{Feed: feed, Subscriber: sub})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Follow(ctx) }()
	fol := <-feed.followed
	fol.Deliver([]byte(`{"type":"end_session","openid":"o","sid":"s"}`))
	cancel()
	<-done
	if got := sub.take(); len(got) != 1 || got[0] != "end_session o s" {
		t.Fatalf("applied %v", got)
	}
}
