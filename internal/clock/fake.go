package clock

import (
	"sync/atomic"
	"time"
)

// Fake is a clock that moves only when told, for tests of logic that
// depends on time. It is safe for concurrent use.
type Fake struct{ nanos atomic.Int64 }

// NewFake returns a fake clock set to a fixed moment.
func NewFake() *Fake {
	c := &Fake{}
	c.nanos.Store(time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC).UnixNano())
	return c
}

// Now returns the fake clock's time.
func (c *Fake) Now() time.Time { return time.Unix(0, c.nanos.Load()) }

// Advance moves the clock forward by d.
func (c *Fake) Advance(d time.Duration) { c.nanos.Add(int64(d)) }
