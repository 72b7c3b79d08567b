package wxauth

import (
	"context"
	"sync/atomic"
	"time"
)

// clockTick is the resolution of the hot path's clock. Cached tokens are
// checked against it for expiry and for the session recheck; both work in
// seconds, so a tenth of a second is plenty.
const clockTick = 100 * time.Millisecond

// coarseClock is read on every protected request instead of time.Now, which
// costs a noticeable part of the per-request budget on some virtual machines.
type coarseClock struct {
	nanos atomic.Int64
}

// startClock keeps a clock current until ctx ends.
func startClock(ctx context.Context) *coarseClock {
	c := new(coarseClock)
	c.nanos.Store(time.Now().UnixNano())
	go func() {
		t := time.NewTicker(clockTick)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				c.nanos.Store(now.UnixNano())
			}
		}
	}()
	return c
}

// now returns the time in unix nanoseconds, at most clockTick old.
func (c *coarseClock) now() int64 { return c.nanos.Load() }
