package session_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/wxauth/caddy-wxauth/session"
	"github.com/wxauth/caddy-wxauth/session/feedtest"
)

const feedPrefix = "wxauth/feed"

// TestStorageFeed runs the shared suite on two feeds over one folder, as two
// instances sharing a file_system storage would.
func TestStorageFeed(t *testing.T) {
	t.Parallel()
	feedtest.Run(t, func(t *testing.T) (session.Feed, session.Feed) {
		dir := t.TempDir()
		return session.NewStorageFeed(&certmagic.FileStorage{Path: dir}, feedPrefix, time.Hour),
			session.NewStorageFeed(&certmagic.FileStorage{Path: dir}, feedPrefix, time.Hour)
	})
}

// TestStorageFeedLatency measures, in real time, how long a payload
// published on one instance takes to be delivered on another.
func TestStorageFeedLatency(t *testing.T) {
	t.Parallel()
	const trials = 30
	dir := t.TempDir()
	a := session.NewStorageFeed(&certmagic.FileStorage{Path: dir}, feedPrefix, time.Hour)
	b := session.NewStorageFeed(&certmagic.FileStorage{Path: dir}, feedPrefix, time.Hour)
	r := feedtest.Follow(t, b, feedtest.NewRecorder())

	// Publishes at random moments over 12 s: every phase of the follower's
	// one-second listings, and at least one slot rollover.
	offsets := make([]time.Duration, trials)
	for i := range offsets {
		offsets[i] = rand.N(12 * time.Second)
	}
	slices.Sort(offsets)
	start := time.Now()
	published := make(map[string]time.Time)
	var want [][]byte
	for i, off := range offsets {
		time.Sleep(time.Until(start.Add(off))) // the schedule of the load, not a wait for a result
		p := []byte("trial " + strconv.Itoa(i))
		published[string(p)] = time.Now()
		if err := a.Publish(context.Background(), p); err != nil {
			t.Fatal(err)
		}
		want = append(want, p)
	}
	r.WaitDelivered(t, want...)

	var lat []time.Duration
	for _, e := range r.Events() {
		if e.Kind == feedtest.Delivered {
			lat = append(lat, e.When.Sub(published[string(e.Payload)]))
		}
	}
	slices.Sort(lat)
	p50, p99 := percentile(lat, 50), percentile(lat, 99)
	t.Logf("storage feed, %d trials: latency p50 %v, p99 %v, max %v", len(lat), p50, p99, lat[len(lat)-1])
	if p99 > 2*time.Second {
		t.Fatalf("latency p99 %v, want at most 2s", p99)
	}
}

// percentile is the nearest-rank percentile of sorted.
func percentile(sorted []time.Duration, p int) time.Duration {
	i := (p*len(sorted)+99)/100 - 1
	return sorted[max(i, 0)]
}

// TestStorageFeedIdleOps counts, in real time, the storage operations of an
// idle follower: at most 2 in any second.
func TestStorageFeedIdleOps(t *testing.T) {
	t.Parallel()
	const watch = 10 * time.Second // one full slot, so one rollover
	st := &countingStorage{Storage: &certmagic.FileStorage{Path: t.TempDir()}}
	f := session.NewStorageFeed(st, feedPrefix, time.Hour)
	r := feedtest.Follow(t, f, feedtest.NewRecorder())
	from := time.Now()
	r.WaitWithin(t, watch+feedtest.Within, "the listings of "+watch.String(), func(events []feedtest.Event) bool {
		return events[len(events)-1].When.Sub(from) >= watch
	})
	to := time.Now()
	ops := st.opsBetween(from, to)
	rate := float64(len(ops)) / to.Sub(from).Seconds()
	most := 0
	for i := range ops {
		n := 0
		for j := i; j < len(ops) && ops[j].Sub(ops[i]) < time.Second; j++ {
			n++
		}
		most = max(most, n)
	}
	t.Logf("idle storage feed follower: %d operations in %v (%.2f/s), at most %d in any second",
		len(ops), to.Sub(from).Round(time.Millisecond), rate, most)
	if most > 2 {
		t.Fatalf("%d storage operations within one second, want at most 2", most)
	}
}

// TestStorageFeedIdleOpsFakeClock follows for two minutes of a fake clock,
// with a listing every second: at most 2 operations per listing.
func TestStorageFeedIdleOpsFakeClock(t *testing.T) {
	clock := newFakeClock()
	st := &countingStorage{Storage: &certmagic.FileStorage{Path: t.TempDir()}}
	f := session.NewStorageFeed(st, feedPrefix, time.Hour, session.WithClock(clock.Now))
	r := feedtest.NewRecorder()
	p := f.NewPoller()
	const polls = 120
	for range polls {
		before := st.count()
		mustPoll(t, p, r)
		if n := st.count() - before; n > 2 {
			t.Fatalf("a listing at %v made %d storage operations, want at most 2", clock.Now(), n)
		}
		clock.Advance(time.Second)
	}
	avg := float64(st.count()) / polls
	t.Logf("idle follower, fake clock: %.2f storage operations per second", avg)
	if avg > 1.5 {
		t.Fatalf("%.2f storage operations per second on average, want at most 1.5", avg)
	}
	feedtest.CheckHealthy(t, r.Events())
}

// TestStorageFeedClockSkew publishes from writers whose clocks are up to the
// skew off and whose writes take up to a second, at random moments and
// slot boundaries, with a listing about every second: every payload is
// delivered once, and every CaughtUp is honest.
func TestStorageFeedClockSkew(t *testing.T) {
	const (
		skew = 2 * time.Second
		span = 120 * time.Second
	)
	rng := rand.New(rand.NewPCG(1, 2))
	clock := newFakeClock() // the true time, and the follower's clock
	dir := t.TempDir()
	reader := session.NewStorageFeed(&certmagic.FileStorage{Path: dir}, feedPrefix, time.Hour,
		session.WithClock(clock.Now), session.WithSkew(skew))
	writerClock := newFakeClock()
	writer := session.NewStorageFeed(&certmagic.FileStorage{Path: dir}, feedPrefix, time.Hour,
		session.WithClock(writerClock.Now), session.WithSkew(skew))

	t0 := clock.Now().Add(3 * time.Second)
	clock.Set(t0)
	p := reader.NewPoller()
	r := feedtest.NewRecorder()

	// Each publish: called at call (true time) by a writer whose clock reads
	// call+offset, visible from call+write.
	type publish struct {
		call, visible, named time.Time
		payload              []byte
	}
	pick := func(lo, hi time.Duration) time.Duration {
		switch rng.IntN(3) {
		case 0:
			return lo
		case 1:
			return hi
		}
		return lo + time.Duration(rng.Int64N(int64(hi-lo)+1))
	}
	var pubs []publish
	for i := range 400 {
		call := t0.Add(time.Duration(rng.Int64N(int64(span))))
		if i%2 == 0 { // close to a slot boundary
			b := call.Truncate(session.FeedSlot)
			call = b.Add(time.Duration(rng.Int64N(int64(6*time.Second))) - 3*time.Second)
			if call.Before(t0) {
				call = t0
			}
		}
		pubs = append(pubs, publish{
			call:    call,
			named:   call.Add(pick(-skew, skew)),
			visible: call.Add(pick(0, time.Second)),
			payload: []byte("p" + strconv.Itoa(i)),
		})
	}
	slices.SortFunc(pubs, func(a, b publish) int { return a.visible.Compare(b.visible) })

	next := 0
	for now := t0; now.Before(t0.Add(span + 10*time.Second)); now = now.Add(time.Second + time.Duration(rng.Int64N(int64(300*time.Millisecond)))) {
		for ; next < len(pubs) && !pubs[next].visible.After(now); next++ {
			writerClock.Set(pubs[next].named)
			if err := writer.Publish(context.Background(), pubs[next].payload); err != nil {
				t.Fatal(err)
			}
		}
		clock.Set(now)
		mustPoll(t, p, r)
	}

	events := r.Events()
	feedtest.CheckHealthy(t, events)
	visible := make(map[string]time.Time)
	for _, pub := range pubs {
		visible[string(pub.payload)] = pub.visible
	}
	got := make(map[string]bool)
	caughtUps := 0
	for _, e := range events {
		switch e.Kind {
		case feedtest.Delivered:
			got[string(e.Payload)] = true
		case feedtest.CaughtUp:
			caughtUps++
			for _, pub := range pubs {
				if pub.visible.Before(e.At) && !got[string(pub.payload)] {
					t.Fatalf("CaughtUp(%v) before delivering %s, visible since %v (named %v)",
						e.At, pub.payload, pub.visible, pub.named)
				}
			}
		}
	}
	for _, pub := range pubs {
		if !got[string(pub.payload)] {
			t.Errorf("%s (visible %v, named %v) never delivered", pub.payload, pub.visible, pub.named)
		}
	}
	if caughtUps < 100 {
		t.Fatalf("%d CaughtUp over %v of listings", caughtUps, span)
	}
}

// TestStorageFeedOrderAcrossSlots has one publisher write two payloads, the
// first into the slot before a rollover and the second after it, while a
// follower is between the listings of the two slots: it still delivers
// them in order.
func TestStorageFeedOrderAcrossSlots(t *testing.T) {
	clock := newFakeClock()
	rollover := clock.Now().Add(session.FeedSlot)
	clock.Set(rollover.Add(-5 * time.Second))
	dir := t.TempDir()
	st := &countingStorage{Storage: &certmagic.FileStorage{Path: dir}}
	f := session.NewStorageFeed(st, feedPrefix, time.Hour, session.WithClock(clock.Now))
	writerClock := newFakeClock()
	writer := session.NewStorageFeed(&certmagic.FileStorage{Path: dir}, feedPrefix, time.Hour, session.WithClock(writerClock.Now))
	p := f.NewPoller()
	r := feedtest.NewRecorder()
	mustPoll(t, p, r)

	clock.Set(rollover.Add(500 * time.Millisecond)) // both slots are listed
	st.setAfterList(func(string) {
		st.setAfterList(nil)
		writerClock.Set(rollover.Add(-300 * time.Millisecond))
		mustPublish(t, writer, "first")
		writerClock.Set(rollover.Add(100 * time.Millisecond))
		mustPublish(t, writer, "second")
	})
	mustPoll(t, p, r)
	clock.Advance(time.Second)
	mustPoll(t, p, r)
	if got := fmt.Sprintf("%q", r.Payloads()); got != `["first" "second"]` {
		t.Fatalf("delivered %s, want first then second", got)
	}
}

// TestStorageFeedSlowWrite has a write that takes so long that the
// follower stops listing its slot before the file appears in it: Publish
// writes the payload again, in the current slot, and it is delivered once.
func TestStorageFeedSlowWrite(t *testing.T) {
	clock := newFakeClock()
	clock.Set(clock.Now().Add(session.FeedSlot - time.Second)) // a second before a rollover
	st := &countingStorage{Storage: &certmagic.FileStorage{Path: t.TempDir()}}
	f := session.NewStorageFeed(st, feedPrefix, time.Hour, session.WithClock(clock.Now))
	p := f.NewPoller()
	r := feedtest.NewRecorder()
	mustPoll(t, p, r)

	first := true
	st.setBeforeStore(func(string) {
		if !first {
			return
		}
		first = false
		// The follower lists for 6 s, closing the slot the write is for.
		for range 6 {
			clock.Advance(time.Second)
			mustPoll(t, p, r)
		}
	})
	stores := st.countOf("Store")
	if err := f.Publish(context.Background(), []byte("slow")); err != nil {
		t.Fatal(err)
	}
	if n := st.countOf("Store") - stores; n != 2 {
		t.Fatalf("Publish stored %d times, want 2 (once more after the slow write)", n)
	}
	for range 15 {
		clock.Advance(time.Second)
		mustPoll(t, p, r)
	}
	if got := r.Payloads(); len(got) != 1 || string(got[0]) != "slow" {
		t.Fatalf("delivered %q, want the slow payload once", got)
	}
	feedtest.CheckHealthy(t, r.Events())

	// A storage that is always that slow makes Publish fail, rather than
	// write copies for ever.
	st.setBeforeStore(func(string) { clock.Advance(1500 * time.Millisecond) })
	if err := f.Publish(context.Background(), []byte("slower")); err == nil {
		t.Fatal("Publish succeeded on a storage that always took 1.5s to write")
	}
}

// TestStorageFeedStartsNow: a follower delivers what writers published
// after it started, and what they published up to the skew (2 s) before.
func TestStorageFeedStartsNow(t *testing.T) {
	clock := newFakeClock()
	dir := t.TempDir()
	f := session.NewStorageFeed(&certmagic.FileStorage{Path: dir}, feedPrefix, time.Hour, session.WithClock(clock.Now))
	t0 := clock.Now().Add(30 * time.Second)
	for _, ago := range []time.Duration{20 * time.Second, 3 * time.Second, 2100 * time.Millisecond} {
		clock.Set(t0.Add(-ago))
		mustPublish(t, f, "old "+ago.String())
	}
	clock.Set(t0.Add(-1900 * time.Millisecond))
	mustPublish(t, f, "within the skew")
	clock.Set(t0)
	p := f.NewPoller()
	r := feedtest.NewRecorder()
	clock.Set(t0.Add(500 * time.Millisecond))
	mustPublish(t, f, "after")
	for range 5 {
		mustPoll(t, p, r)
		clock.Advance(time.Second)
	}
	got := fmt.Sprintf("%q", r.Payloads())
	if want := `["within the skew" "after"]`; got != want {
		t.Fatalf("delivered %s, want %s", got, want)
	}
	feedtest.CheckHealthy(t, r.Events())
}

// TestStorageFeedGap: a follower reports Gap when the files it read were
// removed under it, when it fell behind past the retention, and when its
// clock went back past the slots it lists; then it follows on from now.
func TestStorageFeedGap(t *testing.T) {
	gaps := func(r *feedtest.Recorder) int {
		n := 0
		for _, e := range r.Events() {
			if e.Kind == feedtest.Gap {
				n++
			}
		}
		return n
	}
	setup := func(t *testing.T) (*fakeClock, *countingStorage, *session.StorageFeed, *session.FeedPoller, *feedtest.Recorder) {
		clock := newFakeClock()
		st := &countingStorage{Storage: &certmagic.FileStorage{Path: t.TempDir()}}
		f := session.NewStorageFeed(st, feedPrefix, time.Hour, session.WithClock(clock.Now))
		p := f.NewPoller()
		r := feedtest.NewRecorder()
		mustPublish(t, f, "before")
		mustPoll(t, p, r)
		if !r.Has([]byte("before")) {
			t.Fatal("not delivered")
		}
		return clock, st, f, p, r
	}
	// After the Gap, it delivers what comes next, and reports no more gaps.
	carryOn := func(t *testing.T, clock *fakeClock, f *session.StorageFeed, p *session.FeedPoller, r *feedtest.Recorder) {
		t.Helper()
		if n := gaps(r); n != 1 {
			t.Fatalf("%d Gap, want 1", n)
		}
		clock.Advance(time.Second)
		mustPublish(t, f, "after")
		for range 3 {
			mustPoll(t, p, r)
			clock.Advance(time.Second)
		}
		if !r.Has([]byte("after")) {
			t.Fatal("a payload published after the Gap was not delivered")
		}
		if n := gaps(r); n != 1 {
			t.Fatalf("%d Gap, want 1", n)
		}
	}

	t.Run("Wiped", func(t *testing.T) {
		clock, st, f, p, r := setup(t)
		if err := st.Delete(context.Background(), feedPrefix); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Second)
		mustPoll(t, p, r)
		carryOn(t, clock, f, p, r)
	})
	t.Run("RemovedBeforeRead", func(t *testing.T) {
		clock, st, f, p, r := setup(t)
		mustPublish(t, f, "removed")
		st.setBeforeLoad(func(key string) { _ = st.Storage.Delete(context.Background(), key) })
		clock.Advance(time.Second)
		mustPoll(t, p, r)
		st.setBeforeLoad(nil)
		carryOn(t, clock, f, p, r)
	})
	t.Run("Behind", func(t *testing.T) {
		clock, _, f, p, r := setup(t)
		clock.Advance(time.Hour)
		mustPoll(t, p, r)
		carryOn(t, clock, f, p, r)
	})
	t.Run("ClockBack", func(t *testing.T) {
		clock, _, f, p, r := setup(t)
		clock.Advance(-time.Minute)
		mustPoll(t, p, r)
		carryOn(t, clock, f, p, r)
	})
}

// TestStorageFeedLost fails the storage's listings under a real follower:
// it reports Lost, retries after 100 ms doubling to 1 s, and once the
// storage is back it delivers what was published meanwhile.
func TestStorageFeedLost(t *testing.T) {
	st := &countingStorage{Storage: &certmagic.FileStorage{Path: t.TempDir()}}
	f := session.NewStorageFeed(st, feedPrefix, time.Hour)
	st.setFailList(errors.New("disk on fire"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	r := feedtest.NewRecorder()
	go func() {
		defer close(done)
		f.Follow(ctx, r)
	}()
	defer func() {
		cancel()
		<-done
	}()
	var lost []time.Time
	r.Wait(t, "6 Lost", func(events []feedtest.Event) bool {
		lost = lost[:0]
		for _, e := range events {
			if e.Kind == feedtest.Lost {
				lost = append(lost, e.When)
			}
		}
		return len(lost) >= 6
	})
	mustPublish(t, f, "while lost")
	for i := 1; i < len(lost); i++ {
		if d := lost[i].Sub(lost[i-1]); d < 80*time.Millisecond || d > 1500*time.Millisecond {
			t.Fatalf("retried %v after the previous failure, want 100ms doubling to 1s", d)
		}
	}
	if d := lost[len(lost)-1].Sub(lost[len(lost)-2]); d < 800*time.Millisecond {
		t.Fatalf("the sixth retry came %v after the fifth, want about 1s", d)
	}
	st.setFailList(nil)
	r.WaitDelivered(t, []byte("while lost"))
	for _, e := range r.Events() {
		if e.Kind == feedtest.Gap {
			t.Fatal("Gap after a short outage")
		}
	}
}

// TestStorageFeedSweep removes the slots that ended more than the retention
// ago, and nothing else.
func TestStorageFeedSweep(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	st := &certmagic.FileStorage{Path: t.TempDir()}
	f := session.NewStorageFeed(st, feedPrefix, time.Minute, session.WithClock(clock.Now))
	if n, err := f.Sweep(ctx, clock.Now()); n != 0 || err != nil {
		t.Fatalf("Sweep of an empty feed = %d, %v", n, err)
	}
	now := clock.Now().Add(5 * time.Second)
	for _, ago := range []time.Duration{200 * time.Second, 70 * time.Second, 58 * time.Second, 5 * time.Second} {
		clock.Set(now.Add(-ago))
		mustPublish(t, f, "published "+ago.String()+" ago")
	}
	for _, key := range []string{feedPrefix + "/notes/x", feedPrefix + "/README", feedPrefix + "/12"} {
		if err := st.Store(ctx, key, []byte("not the feed's")); err != nil {
			t.Fatal(err)
		}
	}
	clock.Set(now)
	p := f.NewPoller()
	r := feedtest.NewRecorder()
	mustPoll(t, p, r)

	slot := func(ago time.Duration) string {
		return strconv.FormatInt(now.Add(-ago).Truncate(session.FeedSlot).Unix(), 10)
	}
	n, err := f.Sweep(ctx, now)
	if err != nil || n != 2 {
		t.Fatalf("Sweep = %d, %v; want 2 slots removed", n, err)
	}
	keys, err := st.List(ctx, feedPrefix, false)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, k := range keys {
		names = append(names, path.Base(k))
	}
	slices.Sort(names)
	want := []string{"12", "README", slot(58 * time.Second), slot(5 * time.Second), "notes"}
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Fatalf("after Sweep the feed holds %q, want %q", names, want)
	}
	// A follower is not disturbed by the sweep.
	clock.Advance(time.Second)
	mustPublish(t, f, "after the sweep")
	clock.Advance(time.Second)
	mustPoll(t, p, r)
	if !r.Has([]byte("after the sweep")) {
		t.Fatal("not delivered after a sweep")
	}
	feedtest.CheckHealthy(t, r.Events())
}

// TestStorageFeedForeignFiles: files the feed did not write in its folders
// are skipped without an error or a Gap.
func TestStorageFeedForeignFiles(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	st := &certmagic.FileStorage{Path: t.TempDir()}
	f := session.NewStorageFeed(st, feedPrefix, time.Hour, session.WithClock(clock.Now))
	p := f.NewPoller()
	r := feedtest.NewRecorder()
	slot := feedPrefix + "/" + strconv.FormatInt(clock.Now().Unix(), 10)
	nanos := fmt.Sprintf("%020d", clock.Now().UnixNano())
	for _, name := range []string{
		"README", nanos + "-0123456789abcdef.tmp", nanos + "-0123456789ABCDEF", nanos + "-0123456789abcdeg",
		"+" + nanos[1:] + "-0123456789abcdef", fmt.Sprintf("%020d-0123456789abcdef", clock.Now().Add(-time.Minute).UnixNano()),
	} {
		if err := st.Store(ctx, slot+"/"+name, []byte("foreign")); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Store(ctx, slot+"/sub/"+nanos+"-0123456789abcdef", []byte("foreign")); err != nil {
		t.Fatal(err)
	}
	mustPublish(t, f, "ours")
	mustPoll(t, p, r)
	if got := fmt.Sprintf("%q", r.Payloads()); got != `["ours"]` {
		t.Fatalf("delivered %s, want only the feed's payload", got)
	}
	feedtest.CheckHealthy(t, r.Events())
}

// TestStorageFeedSameInstant: feeds whose clocks read the same instant
// still name their files apart, and one publisher's files keep its order.
func TestStorageFeedSameInstant(t *testing.T) {
	clock := newFakeClock()
	dir := t.TempDir()
	a := session.NewStorageFeed(&certmagic.FileStorage{Path: dir}, feedPrefix, time.Hour, session.WithClock(clock.Now))
	b := session.NewStorageFeed(&certmagic.FileStorage{Path: dir}, feedPrefix, time.Hour, session.WithClock(clock.Now))
	p := a.NewPoller()
	r := feedtest.NewRecorder()
	var want [][]byte
	for i := range 50 {
		for name, f := range map[string]*session.StorageFeed{"a": a, "b": b} {
			payload := fmt.Appendf(nil, "%s %02d", name, i)
			want = append(want, payload)
			if err := f.Publish(context.Background(), payload); err != nil {
				t.Fatal(err)
			}
		}
	}
	mustPoll(t, p, r)
	got := r.Payloads()
	if len(got) != len(want) {
		t.Fatalf("delivered %d payloads, want %d", len(got), len(want))
	}
	last := map[byte]string{}
	for _, g := range got {
		if s := string(g); s <= last[g[0]] {
			t.Fatalf("%q delivered after %q", s, last[g[0]])
		}
		last[g[0]] = string(g)
	}
}

func mustPoll(t *testing.T, p *session.FeedPoller, r *feedtest.Recorder) {
	t.Helper()
	if err := p.Poll(context.Background(), r); err != nil {
		t.Fatalf("Poll: %v", err)
	}
}

func mustPublish(t *testing.T, f session.Feed, payload string) {
	t.Helper()
	if err := f.Publish(context.Background(), []byte(payload)); err != nil {
		t.Fatalf("Publish: %v", err)
	}
}

// fakeClock is a clock that tests set. It starts at a whole slot in the
// past, so CaughtUp times are never in the future of the real clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// countingStorage records every operation on a certmagic.Storage, and can
// fail listings or run hooks before stores and loads.
type countingStorage struct {
	certmagic.Storage

	mu          sync.Mutex
	ops         []storageOp
	failList    error
	beforeStore func(key string)
	beforeLoad  func(key string)
	afterList   func(prefix string)
}

type storageOp struct {
	name string
	at   time.Time
}

func (c *countingStorage) record(name string) {
	c.mu.Lock()
	c.ops = append(c.ops, storageOp{name, time.Now()})
	c.mu.Unlock()
}

func (c *countingStorage) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.ops)
}

func (c *countingStorage) countOf(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, op := range c.ops {
		if op.name == name {
			n++
		}
	}
	return n
}

// opsBetween returns the times of the operations made from from to to.
func (c *countingStorage) opsBetween(from, to time.Time) []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []time.Time
	for _, op := range c.ops {
		if !op.at.Before(from) && op.at.Before(to) {
			out = append(out, op.at)
		}
	}
	return out
}

func (c *countingStorage) setFailList(err error) {
	c.mu.Lock()
	c.failList = err
	c.mu.Unlock()
}

func (c *countingStorage) setBeforeStore(fn func(key string)) {
	c.mu.Lock()
	c.beforeStore = fn
	c.mu.Unlock()
}

func (c *countingStorage) setAfterList(fn func(prefix string)) {
	c.mu.Lock()
	c.afterList = fn
	c.mu.Unlock()
}

func (c *countingStorage) setBeforeLoad(fn func(key string)) {
	c.mu.Lock()
	c.beforeLoad = fn
	c.mu.Unlock()
}

func (c *countingStorage) Lock(ctx context.Context, name string) error {
	c.record("Lock")
	return c.Storage.Lock(ctx, name)
}

func (c *countingStorage) Unlock(ctx context.Context, name string) error {
	c.record("Unlock")
	return c.Storage.Unlock(ctx, name)
}

func (c *countingStorage) Store(ctx context.Context, key string, value []byte) error {
	c.record("Store")
	c.mu.Lock()
	hook := c.beforeStore
	c.mu.Unlock()
	if hook != nil {
		hook(key)
	}
	return c.Storage.Store(ctx, key, value)
}

func (c *countingStorage) Load(ctx context.Context, key string) ([]byte, error) {
	c.record("Load")
	c.mu.Lock()
	hook := c.beforeLoad
	c.mu.Unlock()
	if hook != nil {
		hook(key)
	}
	return c.Storage.Load(ctx, key)
}

func (c *countingStorage) Delete(ctx context.Context, key string) error {
	c.record("Delete")
	return c.Storage.Delete(ctx, key)
}

func (c *countingStorage) Exists(ctx context.Context, key string) bool {
	c.record("Exists")
	return c.Storage.Exists(ctx, key)
}

func (c *countingStorage) List(ctx context.Context, prefix string, recursive bool) ([]string, error) {
	c.record("List")
	c.mu.Lock()
	err, hook := c.failList, c.afterList
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	keys, err := c.Storage.List(ctx, prefix, recursive)
	if hook != nil {
		hook(prefix)
	}
	return keys, err
}

func (c *countingStorage) Stat(ctx context.Context, key string) (certmagic.KeyInfo, error) {
	c.record("Stat")
	return c.Storage.Stat(ctx, key)
}
