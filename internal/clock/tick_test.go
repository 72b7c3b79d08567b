package clock

import (
	"testing"
	"time"
)

// The guard's clock is never ahead of time.Now, and behind it by no more
// than a tick (and the scheduler's delay); it stops ticking when idle and
// starts again on the next read.
func TestGuardClock(t *testing.T) {
	var c Ticking
	// Generous for a loaded machine, where the ticker may run late; a clock
	// that stopped would still fail within the loop's second.
	const slack = 500 * time.Millisecond
	check := func() {
		t.Helper()
		before := time.Now().UnixNano()
		got := c.NanosNow()
		after := time.Now().UnixNano()
		if got > after || got < before-int64(Tick+slack) {
			t.Fatalf("clock read %v, time.Now %v", time.Unix(0, got), time.Unix(0, before))
		}
	}
	deadline := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(deadline) {
		check()
		time.Sleep(time.Millisecond) // the clock under test follows real time: reads spread over it
	}
	// A read leaves the ticker running: it stops only on the second tick
	// after the last read.
	check()
	if !c.running.Load() {
		t.Fatal("the ticker is not running while the clock is read")
	}
	// Idle: the ticker stops.
	for i := 0; c.running.Load(); i++ {
		if i > 1000 {
			t.Fatal("the ticker still runs with nobody reading the clock")
		}
		time.Sleep(Tick) // polling for the ticker to stop, bounded by the count above
	}
	// The first read after idling is exact, and starts the ticker again.
	before := time.Now().UnixNano()
	if got := c.NanosNow(); got < before {
		t.Fatalf("first read after idle %v is behind time.Now %v", got, before)
	}
	if !c.running.Load() {
		t.Fatal("reading the clock did not start the ticker again")
	}
	check()
}
