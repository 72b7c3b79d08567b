// Package clock holds the one clock the plugin reads and the one way it
// waits, so that logic which depends on time takes a clock that tests
// replace.
package clock

import (
	"context"
	"time"
)

// Clock returns the current time; production code gets Real, tests a fake.
type Clock func() time.Time

// Real is the wall clock, the only place the plugin calls time.Now.
var Real Clock = time.Now

// Sleep waits for d or until ctx ends, and reports whether d passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
