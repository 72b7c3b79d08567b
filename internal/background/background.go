// Package background runs the plugin's goroutines so that a panic in one
// is logged with its stack and counted instead of taking Caddy down, and a
// long-running job that panicked starts again after a backoff.
package background

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/wxauth/caddy-wxauth/internal/clock"
)

// Backoff bounds of a job that keeps panicking: the first restart waits
// MinBackoff, each next one twice as long, up to MaxBackoff. A job that
// ran for MaxBackoff without a panic starts over at MinBackoff.
const (
	MinBackoff = time.Second
	MaxBackoff = time.Minute
)

// Runner starts goroutines for one owner.
type Runner struct {
	// Logger gets one error line, with the stack, per panic.
	Logger *zap.Logger
	// Panicked counts a panic of the named job (a metric); may be nil.
	Panicked func(job string)
	// Now and Sleep replace the clock in tests; nil means the real one.
	Now   clock.Clock
	Sleep func(ctx context.Context, d time.Duration) bool
}

// Supervise runs job until ctx ends, starting it again after a backoff
// whenever it panics. It returns when ctx ends or job returns normally.
func (r Runner) Supervise(ctx context.Context, name string, job func(context.Context)) {
	now, sleep := r.Now, r.Sleep
	if now == nil {
		now = clock.Real
	}
	if sleep == nil {
		sleep = clock.Sleep
	}
	wait := MinBackoff
	for {
		began := now()
		if !r.run(name, func() { job(ctx) }) {
			return
		}
		if now().Sub(began) >= MaxBackoff {
			wait = MinBackoff
		}
		if !sleep(ctx, wait) {
			return
		}
		wait = min(2*wait, MaxBackoff)
	}
}

// Go runs fn once in a goroutine, recovering a panic.
func (r Runner) Go(name string, fn func()) {
	go r.run(name, fn)
}

// Run calls fn in this goroutine, recovering a panic; it reports whether
// fn panicked.
func (r Runner) Run(name string, fn func()) (panicked bool) {
	return r.run(name, fn)
}

// run calls fn and reports whether it panicked.
func (r Runner) run(name string, fn func()) (panicked bool) {
	defer func() {
		if v := recover(); v != nil {
			panicked = true
			if r.Logger != nil {
				r.Logger.Error("background work panicked; it is started again if it is a long-running job",
					zap.String("job", name), zap.String("panic", fmt.Sprint(v)), zap.StackSkip("stack", 2))
			}
			if r.Panicked != nil {
				r.Panicked(name)
			}
		}
	}()
	fn()
	return false
}
