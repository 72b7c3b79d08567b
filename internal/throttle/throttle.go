// Package throttle lets a repeated log line through once per interval per
// key: a wrong secret fails every login, and the log should say so once a
// minute, not once a login.
package throttle

import (
	"sync"
	"time"

	"github.com/wxauth/caddy-wxauth/internal/clock"
)

// Gate remembers when each key last went through. It is safe for
// concurrent use; the zero value is not: use New.
type Gate struct {
	every time.Duration
	now   clock.Clock

	mu   sync.Mutex
	last map[string]time.Time
}

// New returns a gate that lets each key through once per every, on the
// clock now (nil: clock.Real).
func New(every time.Duration, now clock.Clock) *Gate {
	if now == nil {
		now = clock.Real
	}
	return &Gate{every: every, now: now, last: map[string]time.Time{}}
}

// Due reports whether key has not gone through within the interval, and
// notes it as gone through now if so.
func (g *Gate) Due(key string) bool {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if last, ok := g.last[key]; ok && now.Sub(last) < g.every {
		return false
	}
	g.last[key] = now
	return true
}
