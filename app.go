package wxauth

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/wxauth/caddy-wxauth/internal/background"
	"github.com/wxauth/caddy-wxauth/internal/changes"
	"github.com/wxauth/caddy-wxauth/internal/clock"
	"github.com/wxauth/caddy-wxauth/internal/guard"
	"github.com/wxauth/caddy-wxauth/internal/keys"
	"github.com/wxauth/caddy-wxauth/internal/throttle"
	"github.com/wxauth/caddy-wxauth/internal/users"
	"github.com/wxauth/caddy-wxauth/session"
	"github.com/wxauth/caddy-wxauth/token"
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

// appStates holds what the handlers of one app share in this process, kept
// across config reloads: a reload sees the sessions ended before it, and a
// config loaded while the store is down keeps the keys the last one loaded.
// Each entry is keyed by store, app and store key, so a test or a config of
// another app never sees it.
var appStates = caddy.NewUsagePool()

// appState is one app's shared state in this process.
type appState struct {
	ended   *guard.Ended
	changes *changes.Changes // events of the app, published and followed
	ring    keys.Last        // the last keyring loaded from the store
	// logGate lets an operator's error that any caller can repeat (a phone
	// number the app's keys cannot open) reach the log once a minute.
	logGate *throttle.Gate
}

// Destruct implements caddy.Destructor; the state holds nothing to close.
func (*appState) Destruct() error { return nil }

// loadAppState returns the state under key, made with feed (nil for a
// store of this process alone) when new, and a function that releases it.
func loadAppState(key string, feed session.Feed, keep time.Duration, logger *zap.Logger) (*appState, func()) {
	v, _, _ := appStates.LoadOrNew(key, func() (caddy.Destructor, error) {
		ended := guard.NewEnded(clock.Real)
		return &appState{ended: ended, changes: newChanges(feed, ended, keep, clock.Real, logger),
			logGate: throttle.New(time.Minute, clock.Real)}, nil
	})
	return v.(*appState), func() { _, _ = appStates.Delete(key) }
}

// newChanges returns the change feed of an app: the events it follows (and
// publishes) are applied to ended, whose records are kept for keep.
func newChanges(feed session.Feed, ended *guard.Ended, keep time.Duration, now clock.Clock, logger *zap.Logger) *changes.Changes {
	return changes.New(changes.Config{
		Feed:       feed,
		Subscriber: endedSubscriber{ended: ended, keep: keep},
		Logger:     logger,
		Now:        now,
		FeedLost:   func() { metrics.storeFeed.Inc() },
	})
}

// endedSubscriber applies the feed's events to an app's ended set.
type endedSubscriber struct {
	ended *guard.Ended
	keep  time.Duration // how long ended records are kept: a token's life
}

func (s endedSubscriber) EndSession(openid, sid string) { s.ended.EndSession(openid, sid, s.keep) }

func (s endedSubscriber) EndUser(openid string, at time.Time) {
	s.ended.EndUser(openid, at, s.keep)
}

func (s endedSubscriber) SetClaims(openid string, claims map[string]any) {
	s.ended.SetClaims(openid, claims)
}

// setRedisLogger sends go-redis's own notes (a failed dial, a sentinel
// switching masters), which it writes to stderr in plain text by default,
// through Caddy's logs. go-redis has one logger per process.
func setRedisLogger() { redis.SetLogger(redisLogger{}) }

// redisLogger hands go-redis's notes to Caddy's logger, at debug level:
// wxauth reports the store errors that matter itself.
type redisLogger struct{}

func (redisLogger) Printf(_ context.Context, format string, v ...any) {
	if c := caddy.Log().Named("wxauth.redis").Check(zapcore.DebugLevel, "go-redis"); c != nil {
		c.Write(zap.String("note", fmt.Sprintf(format, v...)))
	}
}

// shareAppState joins the state this app keeps in the process across
// reloads (the change feed, the ended sessions), tied to the store key so
// that a reset app secret never reuses the old one's, and returns its key.
func (h *Handler) shareAppState(opened pooledStore, sealKey []byte) (string, error) {
	// Events of the app: a logout, a user's sessions ended, a claim change.
	// Ended records are kept as long as a token can live.
	keep := time.Duration(h.TokenTTL) + token.DefaultLeeway
	feed, err := session.SealedFeed(opened.feed(h.prefix+"/feed", keep), sealKey)
	if err != nil {
		return "", fmt.Errorf("wxauth: sealing the feed: %w", err)
	}
	sealID := sha256.Sum256(sealKey)
	appKey := fmt.Sprintf("%s|%s|%s|%x", h.Store.identity(), h.prefix, h.SigningAlg, sealID[:8])
	h.app, h.unshare = loadAppState(appKey, feed, keep, h.logger)
	// A user record outlives every session its ended_at ends, and the tokens
	// its claims are in.
	h.users = users.New(users.Config{Store: h.store, Prefix: h.prefix, Sessions: h.sessions,
		TTL: time.Duration(h.SessionMaxAge) + time.Duration(h.TokenTTL), Announce: claimsFeed{h.app}})
	return appKey, nil
}

// addBackgroundJobs hands the app's background work to the wxauth app,
// which Caddy starts with the config (never on `caddy validate`).
func (h *Handler) addBackgroundJobs(ctx caddy.Context, appKey string, opened pooledStore) error {
	appMod, err := ctx.App("wxauth")
	if err != nil {
		return fmt.Errorf("wxauth: loading the wxauth app: %w", err)
	}
	bg := appMod.(*App)
	bg.add("feed "+appKey, h.app.changes.Follow)
	bg.add("retry "+appKey, h.app.changes.Retry)
	h.bg = bg.run
	if opened.sweep != nil {
		bg.add("sweep "+appKey, sweeper(opened.Store, h.prefix, opened.sweep))
	}
	if h.keys.Generated() {
		bg.add("keys "+appKey, h.keys.Maintain)
	}
	return nil
}
