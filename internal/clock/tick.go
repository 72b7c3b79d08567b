package clock

import (
	"sync/atomic"
	"time"
)

// Tick is the resolution of a Ticking clock.
const Tick = 10 * time.Millisecond

// Ticking is a clock for the hot path: the time of a ticker's
// last tick, read with an atomic load. time.Now reads both the wall and the
// monotonic clock, about 40-80 ns on a virtual machine, a large part of a
// cached token check. The ticker runs only while the clock is read: a read
// that finds it stopped reads time.Now and starts it, and a tick that finds
// no read since the one before stops it, so an idle process is not woken.
// The clock is at most Tick behind, plus the scheduler's delay in
// running the ticker: far below the token's whole-second expiry and the
// change bound (1 s or more) that the guard judges with it. The zero value
// is ready to use.
type Ticking struct {
	nanos   atomic.Int64 // unix nanos at the last tick
	running atomic.Bool  // the ticker runs
	_       [64]byte     // read is written once a tick: keep it off nanos's cache line
	read    atomic.Bool  // read since the last tick
}

// Coarse is the ticking clock every guard reads in production.
var Coarse = new(Ticking)

// NanosNow returns the time in unix nanoseconds.
func (c *Ticking) NanosNow() int64 {
	if !c.read.Load() { // a load first: most reads then write nothing
		c.read.Store(true)
	}
	if c.running.Load() {
		return c.nanos.Load()
	}
	n := time.Now().UnixNano()
	if c.running.CompareAndSwap(false, true) {
		c.nanos.Store(n)
		go c.tick()
	}
	return n
}

// Now returns the time, at most a tick old.
func (c *Ticking) Now() time.Time { return time.Unix(0, c.NanosNow()) }

// tick keeps the clock current until a tick finds it was not read.
func (c *Ticking) tick() {
	t := time.NewTicker(Tick)
	defer t.Stop()
	for range t.C {
		c.nanos.Store(time.Now().UnixNano())
		if !c.read.Swap(false) {
			c.running.Store(false)
			return
		}
	}
}
