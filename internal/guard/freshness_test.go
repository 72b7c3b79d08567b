package guard

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxauth/caddy-wxauth/internal/clock"
)

func TestFeedFreshness(t *testing.T) {
	clock := clock.NewFake()
	h := new(fakeFeedState)
	p := FeedFreshness{Feed: h, Bound: time.Second, Lag: time.Second}
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
