// Package feedtest is the behaviour every session.Feed must show, as a test
// suite that each implementation runs against itself, and a Follower that
// records what it is told.
package feedtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxauth/caddy-wxauth/session"
)

// Within bounds every wait of the suite for a delivery or a report; the
// implementations' own tests measure how fast they really are.
const Within = 10 * time.Second

// longBefore is how long before a follower starts a payload is published
// in the test that it is not delivered.
const longBefore = 5 * time.Second

// Run runs the shared suite. newFeedPair is called once per subtest and
// returns two feeds over one fresh, empty medium, as two instances sharing
// a store would see it (one feed twice where there is only one instance).
func Run(t *testing.T, newFeedPair func(t *testing.T) (a, b session.Feed)) {
	tests := []struct {
		name string
		fn   func(t *testing.T, a, b session.Feed)
	}{
		{"DeliveredEverywhere", testDeliveredEverywhere},
		{"OrderPerPublisher", testOrderPerPublisher},
		{"BinaryPayloads", testBinaryPayloads},
		{"NoDuplicates", testNoDuplicates},
		{"CaughtUp", testCaughtUp},
		{"LateFollower", testLateFollower},
		{"Cancel", testCancel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := newFeedPair(t)
			tt.fn(t, a, b)
		})
	}
}

// Kind says which Follower method made an Event.
type Kind int

// The Follower methods.
const (
	Delivered Kind = iota
	CaughtUp
	Lost
	Gap
)

// Event is one call a Recorder received.
type Event struct {
	Kind    Kind
	Payload []byte    // Delivered: a copy of the payload
	At      time.Time // CaughtUp: its argument
	Err     error     // Lost: its argument
	When    time.Time // when the call was made
}

// Recorder is a session.Follower that keeps every call it receives.
type Recorder struct {
	// Scribble makes Deliver overwrite the payload after copying it, to
	// show that the feed hands out payloads nobody else uses.
	Scribble bool
	// BeforeDeliver, when set, is called at the start of each Deliver, to
	// hold the follower up or watch it.
	BeforeDeliver func(payload []byte)

	mu      sync.Mutex
	events  []Event
	changed chan struct{} // closed and replaced on every event
	stopped bool          // Follow has returned: no calls may follow
	late    []string      // calls made after Follow returned
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder {
	return &Recorder{changed: make(chan struct{})}
}

func (r *Recorder) add(e Event) {
	e.When = time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		r.late = append(r.late, fmt.Sprintf("kind %d", e.Kind))
		return
	}
	r.events = append(r.events, e)
	close(r.changed)
	r.changed = make(chan struct{})
}

// Deliver implements session.Follower.
func (r *Recorder) Deliver(payload []byte) {
	if r.BeforeDeliver != nil {
		r.BeforeDeliver(payload)
	}
	r.add(Event{Kind: Delivered, Payload: bytes.Clone(payload)})
	if r.Scribble {
		for i := range payload {
			payload[i] = 'X'
		}
	}
}

// CaughtUp implements session.Follower.
func (r *Recorder) CaughtUp(at time.Time) { r.add(Event{Kind: CaughtUp, At: at}) }

// Lost implements session.Follower.
func (r *Recorder) Lost(err error) { r.add(Event{Kind: Lost, Err: err}) }

// Gap implements session.Follower.
func (r *Recorder) Gap() { r.add(Event{Kind: Gap}) }

// Events returns a copy of the calls received so far, in order.
func (r *Recorder) Events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

// Payloads returns the payloads delivered so far, in order.
func (r *Recorder) Payloads() [][]byte {
	var out [][]byte
	for _, e := range r.Events() {
		if e.Kind == Delivered {
			out = append(out, e.Payload)
		}
	}
	return out
}

// Has reports whether payload has been delivered.
func (r *Recorder) Has(payload []byte) bool {
	for _, p := range r.Payloads() {
		if bytes.Equal(p, payload) {
			return true
		}
	}
	return false
}

// Wait polls until cond holds for the events so far, failing t after
// Within. It returns the events cond held for.
func (r *Recorder) Wait(t testing.TB, what string, cond func([]Event) bool) []Event {
	t.Helper()
	return r.WaitWithin(t, Within, what, cond)
}

// WaitWithin is Wait with its own deadline.
func (r *Recorder) WaitWithin(t testing.TB, within time.Duration, what string, cond func([]Event) bool) []Event {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		events := append([]Event(nil), r.events...)
		changed := r.changed
		r.mu.Unlock()
		if cond(events) {
			return events
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("waited %v for %s; got %s", within, what, Summary(events))
		}
	}
}

// WaitDelivered waits until every payload in want has been delivered.
func (r *Recorder) WaitDelivered(t testing.TB, want ...[]byte) {
	t.Helper()
	r.Wait(t, fmt.Sprintf("%d payloads", len(want)), func(events []Event) bool {
		for _, w := range want {
			if !delivered(events, w) {
				return false
			}
		}
		return true
	})
}

// WaitCaughtUp waits for a CaughtUp at or after at, and returns the events
// up to and including it.
func (r *Recorder) WaitCaughtUp(t testing.TB, at time.Time) []Event {
	t.Helper()
	var upTo []Event
	r.Wait(t, "CaughtUp at or after "+at.Format(time.RFC3339Nano), func(events []Event) bool {
		for i, e := range events {
			if e.Kind == CaughtUp && !e.At.Before(at) {
				upTo = events[:i+1]
				return true
			}
		}
		return false
	})
	return upTo
}

func delivered(events []Event, payload []byte) bool {
	for _, e := range events {
		if e.Kind == Delivered && bytes.Equal(e.Payload, payload) {
			return true
		}
	}
	return false
}

// Summary describes events briefly, for failure messages.
func Summary(events []Event) string {
	var n [4]int
	var lost []string
	for _, e := range events {
		n[e.Kind]++
		if e.Kind == Lost {
			lost = append(lost, e.Err.Error())
		}
	}
	s := fmt.Sprintf("%d delivered, %d CaughtUp, %d Lost, %d Gap", n[Delivered], n[CaughtUp], n[Lost], n[Gap])
	if len(lost) > 0 {
		s += " (lost: " + strings.Join(lost, "; ") + ")"
	}
	return s
}

// Follow runs feed.Follow(r) in a new goroutine until the test ends, and
// returns once r has been told CaughtUp, so that whatever is published
// from then on is after the follower started. At the end of the test it
// checks that Follow returned promptly and that the feed was healthy: no
// Lost, no Gap, no payload twice (the suite's payloads are all distinct),
// and CaughtUp never going back.
func Follow(t testing.TB, feed session.Feed, r *Recorder) *Recorder {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		feed.Follow(ctx, r)
		r.mu.Lock()
		r.stopped = true
		r.mu.Unlock()
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(Within):
			t.Errorf("Follow did not return within %v of its context ending", Within)
			return
		}
		CheckHealthy(t, r.Events())
		r.mu.Lock()
		defer r.mu.Unlock()
		if len(r.late) > 0 {
			t.Errorf("the feed called the follower after Follow returned: %v", r.late)
		}
	})
	r.Wait(t, "the first CaughtUp", func(events []Event) bool {
		for _, e := range events {
			if e.Kind == CaughtUp {
				return true
			}
		}
		return false
	})
	return r
}

// CheckHealthy fails t if events show a Lost, a Gap, a payload delivered
// twice, or a CaughtUp earlier than the one before it or later than the
// moment it was reported.
func CheckHealthy(t testing.TB, events []Event) {
	t.Helper()
	seen := make(map[string]bool)
	var last time.Time
	for _, e := range events {
		switch e.Kind {
		case Lost:
			t.Errorf("Lost(%v) while the feed was healthy", e.Err)
		case Gap:
			t.Errorf("Gap() while the feed was healthy")
		case Delivered:
			if seen[string(e.Payload)] {
				t.Errorf("payload %.40q delivered twice", e.Payload)
			}
			seen[string(e.Payload)] = true
		case CaughtUp:
			if e.At.Before(last) {
				t.Errorf("CaughtUp(%v) after CaughtUp(%v)", e.At, last)
			}
			if e.At.After(e.When) {
				t.Errorf("CaughtUp(%v) reported at %v, before that time", e.At, e.When)
			}
			last = e.At
		}
	}
}

func ctxFor(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), Within)
	t.Cleanup(cancel)
	return ctx
}

func publish(t testing.TB, f session.Feed, payload []byte) {
	t.Helper()
	if err := f.Publish(ctxFor(t), payload); err != nil {
		t.Fatalf("Publish: %v", err)
	}
}

// tag is a random string, so payloads differ between subtests and runs.
func tag() string { return rand.Text()[:8] }

func testDeliveredEverywhere(t *testing.T, a, b session.Feed) {
	ra := Follow(t, a, NewRecorder())
	rb := Follow(t, b, NewRecorder())
	fromA, fromB := []byte("from a "+tag()), []byte("from b "+tag())
	publish(t, a, fromA)
	publish(t, b, fromB)
	ra.WaitDelivered(t, fromA, fromB)
	rb.WaitDelivered(t, fromA, fromB)
}

func testOrderPerPublisher(t *testing.T, a, b session.Feed) {
	const n = 20
	ra := Follow(t, a, NewRecorder())
	rb := Follow(t, b, NewRecorder())
	run := tag()
	var wg sync.WaitGroup
	var want [][]byte
	for _, p := range []struct {
		name string
		feed session.Feed
	}{{"a", a}, {"b", b}} {
		var mine [][]byte
		for i := range n {
			mine = append(mine, fmt.Appendf(nil, "%s %s %02d", run, p.name, i))
		}
		want = append(want, mine...)
		wg.Go(func() {
			for _, payload := range mine {
				if err := p.feed.Publish(ctxFor(t), payload); err != nil {
					t.Errorf("Publish on %s: %v", p.name, err)
					return
				}
			}
		})
	}
	wg.Wait()
	for name, r := range map[string]*Recorder{"a": ra, "b": rb} {
		r.WaitDelivered(t, want...)
		for _, publisher := range []string{"a", "b"} {
			var got []string
			for _, p := range r.Payloads() {
				if s := string(p); strings.HasPrefix(s, run+" "+publisher+" ") {
					got = append(got, s)
				}
			}
			for i := 1; i < len(got); i++ {
				if got[i] <= got[i-1] {
					t.Fatalf("follower on %s got %s's payloads out of order: %q", name, publisher, got)
				}
			}
		}
	}
}

func testBinaryPayloads(t *testing.T, a, b session.Feed) {
	plain := Follow(t, b, NewRecorder())
	scribbler := NewRecorder()
	scribbler.Scribble = true
	Follow(t, b, scribbler)
	var want [][]byte
	for _, size := range []int{1, 2, 255, 256, 1000, 4096, 8191, 8192} {
		p := make([]byte, size)
		_, _ = rand.Read(p)
		p[0] = byte(size) // distinct even if random bytes collide
		want = append(want, p)
	}
	want = append(want, bytes.Repeat([]byte{0}, 8192), bytes.Repeat([]byte{0xff}, 8192), []byte("\x00\r\n\x00"))
	for _, p := range want {
		mine := bytes.Clone(p)
		publish(t, a, mine)
		for i := range mine {
			mine[i] ^= 0x55 // the feed must not keep the caller's slice
		}
	}
	plain.WaitDelivered(t, want...)
	scribbler.WaitDelivered(t, want...)
}

func testNoDuplicates(t *testing.T, a, b session.Feed) {
	rb := Follow(t, b, NewRecorder())
	run := tag()
	var want [][]byte
	for i := range 10 {
		p := fmt.Appendf(nil, "%s %02d", run, i)
		want = append(want, p)
		publish(t, a, p)
	}
	published := time.Now()
	rb.WaitDelivered(t, want...)
	// Two more reports after the feed has read past the last Publish: any
	// second copy would have been delivered by then.
	upTo := rb.WaitCaughtUp(t, published)
	rb.Wait(t, "two more CaughtUp", func(events []Event) bool {
		n := 0
		for _, e := range events[len(upTo):] {
			if e.Kind == CaughtUp {
				n++
			}
		}
		return n >= 2
	})
	if got := len(rb.Payloads()); got != len(want) {
		t.Fatalf("delivered %d payloads, want %d", got, len(want))
	}
}

func testCaughtUp(t *testing.T, a, b session.Feed) {
	rb := Follow(t, b, NewRecorder())
	// Reported again and again while nothing happens.
	first := len(rb.Events())
	rb.Wait(t, "three CaughtUp while idle", func(events []Event) bool {
		n := 0
		for _, e := range events[first:] {
			if e.Kind == CaughtUp {
				n++
			}
		}
		return n >= 3
	})
	// Honest: once it says it has read past a Publish, it has delivered it.
	p := []byte("caught up " + tag())
	publish(t, a, p)
	returned := time.Now()
	upTo := rb.WaitCaughtUp(t, returned)
	if !delivered(upTo, p) {
		t.Fatalf("CaughtUp(%v) before delivering a payload whose Publish returned at %v",
			upTo[len(upTo)-1].At, returned)
	}
}

func testLateFollower(t *testing.T, a, b session.Feed) {
	early := Follow(t, a, NewRecorder())
	old := []byte("old " + tag())
	publish(t, a, old)
	published := time.Now()
	early.WaitDelivered(t, old)
	early.WaitCaughtUp(t, published.Add(longBefore))

	late := Follow(t, b, NewRecorder())
	recent := []byte("recent " + tag())
	publish(t, a, recent)
	late.WaitDelivered(t, recent)
	if late.Has(old) {
		t.Fatalf("a follower started %v after a Publish delivered its payload", longBefore)
	}
}

func testCancel(t *testing.T, a, b session.Feed) {
	// A context that has already ended: Follow returns at once.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		b.Follow(ctx, NewRecorder())
	}()
	waitClosed(t, returned, "Follow with an ended context")

	// Ended while payloads are being delivered.
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	r := NewRecorder()
	returned = make(chan struct{})
	go func() {
		defer close(returned)
		b.Follow(ctx, r)
	}()
	r.Wait(t, "the first CaughtUp", func(events []Event) bool { return len(events) > 0 })
	run := tag()
	for i := range 50 {
		publish(t, a, fmt.Appendf(nil, "%s %02d", run, i))
	}
	r.Wait(t, "a delivery", func(events []Event) bool { return delivered(events, []byte(run+" 00")) })
	cancel()
	waitClosed(t, returned, "Follow after its context ended")
}

// waitClosed fails t unless ch is closed within 2 s: "promptly".
func waitClosed(t *testing.T, ch chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(2 * time.Second):
		t.Fatalf("%s did not return within 2s", what)
	}
}
