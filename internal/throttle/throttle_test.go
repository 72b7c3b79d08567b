package throttle

import (
	"testing"
	"time"

	"github.com/wxauth/caddy-wxauth/internal/clock"
)

func TestGate(t *testing.T) {
	c := clock.NewFake()
	g := New(time.Minute, c.Now)
	steps := []struct {
		advance time.Duration
		key     string
		want    bool
	}{
		{0, "40125", true},
		{0, "40125", false},
		{0, "40013", true},
		{59 * time.Second, "40125", false},
		{time.Second, "40125", true},
		{0, "40013", true},
		{30 * time.Second, "40013", false},
	}
	for i, s := range steps {
		c.Advance(s.advance)
		if got := g.Due(s.key); got != s.want {
			t.Errorf("step %d (%s): %v, want %v", i, s.key, got, s.want)
		}
	}
}
