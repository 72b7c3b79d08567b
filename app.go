package wxauth

import (
	"context"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/wxauth/caddy-wxauth/internal/background"
	"github.com/wxauth/caddy-wxauth/internal/clock"
)

func init() {
	caddy.RegisterModule(new(App))
}

// App is the `wxauth` Caddy app: it runs the background work of every
// wxauth handler of a config (following the change feed, key maintenance,
// sweeping expired state). Handlers load it; Caddy starts it with the
// config and stops it when the config is unloaded, so `caddy validate`,
// which never starts apps, runs none of it and writes nothing to the store.
// It has no settings.
type App struct {
	mu      sync.Mutex
	jobs    map[string]func(context.Context) // by name: two handlers of one app add one job
	ctx     context.Context                  // the config's; jobs end with it at the latest
	run     background.Runner
	cancel  context.CancelFunc
	running sync.WaitGroup
}

// CaddyModule returns the Caddy module information.
func (*App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "wxauth",
		New: func() caddy.Module { return new(App) },
	}
}

// redisLoggerOnce sets go-redis's process-wide logger the first time a
// wxauth app is provisioned, not when the package is imported.
var redisLoggerOnce sync.Once

// Provision prepares the app's logger and panic accounting.
func (a *App) Provision(ctx caddy.Context) error {
	a.ctx = ctx
	a.run = background.Runner{Logger: ctx.Logger(), Panicked: countPanic}
	redisLoggerOnce.Do(setRedisLogger)
	return nil
}

// add registers a job, unless one of that name was added already. A job
// runs from Start until its context ends.
func (a *App) add(name string, job func(context.Context)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.jobs == nil {
		a.jobs = map[string]func(context.Context){}
	}
	if _, ok := a.jobs[name]; !ok {
		a.jobs[name] = job
	}
}

// Start runs every job; a job that panics is started again after a backoff.
func (a *App) Start() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	parent := a.ctx
	if parent == nil {
		parent = context.Background()
	}
	ctx, cancel := context.WithCancel(parent)
	a.cancel = cancel
	for name, job := range a.jobs {
		a.running.Add(1)
		go func() {
			defer a.running.Done()
			a.run.Supervise(ctx, name, job)
		}()
	}
	return nil
}

// Stop ends every job and waits for them: each ends with its context, and
// every store call a job makes is bounded by a timeout.
func (a *App) Stop() error {
	a.mu.Lock()
	cancel := a.cancel
	a.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	a.running.Wait()
	return nil
}

// every runs fn at once and then every period until ctx ends.
func every(ctx context.Context, period time.Duration, fn func(now time.Time)) {
	fn(clock.Real())
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			fn(now)
		}
	}
}

// Interface guards
var (
	_ caddy.App         = (*App)(nil)
	_ caddy.Module      = (*App)(nil)
	_ caddy.Provisioner = (*App)(nil)
)
