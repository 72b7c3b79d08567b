package login

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/wxauth/caddy-wxauth/internal/apierr"
	"github.com/wxauth/caddy-wxauth/internal/clock"
	"github.com/wxauth/caddy-wxauth/internal/users"
	"github.com/wxauth/caddy-wxauth/session"
)

// replayWindow is how long a used code is remembered: a client that retries
// the same code (a lost answer) within it gets a token for the session the
// code made, if it proves it is the same client by its nonce.
const replayWindow = 30 * time.Second

// codeWaitPoll is how often a login waits on another instance's call with
// the same code; codeWaitMax bounds the wait.
const (
	codeWaitPoll = 50 * time.Millisecond
	codeWaitMax  = 15 * time.Second
)

// errCodeReplayed answers a code already used by a login without the same nonce.
var errCodeReplayed = apierr.New(http.StatusUnauthorized, "invalid_code",
	"this code was already used; call wx.login for a new one")

// codeRecord is what the store keeps of a used code, under the code's hash.
type codeRecord struct {
	// Nonce is the hash of the login's nonce; empty when it had none, and
	// then no replay is answered.
	Nonce string `json:"nonce,omitempty"`
	// SID is the session the code made; empty while the platform is asked.
	SID string `json:"sid,omitempty"`
}

// flight makes sure one login code makes at most one session across every
// instance that shares the store: concurrent logins with one code and one
// nonce share one platform call, and a replay is answered only to the
// client that holds the nonce.
type flight struct {
	store    session.Store
	prefix   string
	sessions func(ctx context.Context, sid string) (*session.Session, error)
	now      clock.Clock
	timeout  time.Duration // each store operation

	mu    sync.Mutex
	calls map[string]*flightCall // in-process callers with one code and nonce
}

type flightCall struct {
	done chan struct{}
	s    *session.Session
	err  error
}

func newFlight(store session.Store, prefix string, sessions func(context.Context, string) (*session.Session, error), now clock.Clock, timeout time.Duration) *flight {
	return &flight{store: store, prefix: prefix, sessions: sessions, now: now, timeout: timeout, calls: map[string]*flightCall{}}
}

// do returns the session made by code, running login (the platform call and
// the session's creation) only if no instance ran it with this code yet.
// The code and nonce are kept only as hashes.
func (f *flight) do(ctx context.Context, code, nonce string, login func(context.Context) (*session.Session, error)) (*session.Session, error) {
	if nonce == "" {
		// No proof of the caller: a concurrent or repeated call gets nothing.
		return f.lead(ctx, code, "", login)
	}
	key := session.HashKey(code + "\x00" + nonce)
	f.mu.Lock()
	if c, ok := f.calls[key]; ok {
		f.mu.Unlock()
		select {
		case <-c.done:
			return c.s, c.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	c := &flightCall{done: make(chan struct{})}
	f.calls[key] = c
	f.mu.Unlock()

	// Merged callers share this call, so it must not end with the first
	// caller's request.
	c.s, c.err = f.lead(context.WithoutCancel(ctx), code, nonce, login)

	f.mu.Lock()
	delete(f.calls, key)
	f.mu.Unlock()
	close(c.done)
	return c.s, c.err
}

// lead claims code in the store and runs login, or follows the instance
// that claimed it first.
func (f *flight) lead(ctx context.Context, code, nonce string, login func(context.Context) (*session.Session, error)) (*session.Session, error) {
	key := f.prefix + "/codes/" + session.HashKey(code)
	rec := codeRecord{}
	if nonce != "" {
		rec.Nonce = session.HashKey(nonce)
	}
	deadline := f.now().Add(codeWaitMax)
	for {
		ok, err := f.setNX(ctx, key, rec)
		if err != nil {
			return nil, apierr.StoreUnavailable
		}
		if ok {
			return f.run(ctx, key, rec, login)
		}
		s, err := f.follow(ctx, key, rec.Nonce)
		if !errors.Is(err, errCodeReleased) {
			return s, err
		}
		// The first caller failed and let the code go: try it ourselves.
		if f.now().After(deadline) {
			return nil, upstreamTimeout()
		}
	}
}

// run is the leader's part: the platform call, then the record of the session.
func (f *flight) run(ctx context.Context, key string, rec codeRecord, login func(context.Context) (*session.Session, error)) (*session.Session, error) {
	s, err := login(ctx)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.timeout)
	defer cancel()
	if err != nil {
		// A later call with this code gets the platform's own answer.
		_ = f.store.Delete(sctx, key)
		return nil, err
	}
	rec.SID = s.ID
	if b, err := json.Marshal(rec); err == nil {
		// Best effort: without it a replay waits, then asks the platform itself.
		_ = f.store.Set(sctx, key, b, replayWindow)
	}
	return s, nil
}

var errCodeReleased = errors.New("code released")

// follow waits for the session made by the instance that claimed the code.
func (f *flight) follow(ctx context.Context, key, nonce string) (*session.Session, error) {
	deadline := f.now().Add(codeWaitMax)
	for {
		var rec codeRecord
		b, err := f.store.Get(ctx, key)
		switch {
		case errors.Is(err, session.ErrNotFound):
			return nil, errCodeReleased
		case err != nil:
			return nil, apierr.StoreUnavailable
		}
		if err := json.Unmarshal(b, &rec); err != nil {
			return nil, apierr.StoreUnavailable
		}
		if nonce == "" || subtle.ConstantTimeCompare([]byte(rec.Nonce), []byte(nonce)) != 1 {
			return nil, errCodeReplayed
		}
		if rec.SID != "" {
			s, err := f.sessions(ctx, rec.SID)
			if errors.Is(err, session.ErrNotFound) {
				return nil, errCodeReplayed // logged out meanwhile
			}
			if err != nil {
				return nil, apierr.StoreUnavailable
			}
			return s, nil
		}
		if f.now().After(deadline) {
			return nil, upstreamTimeout()
		}
		if !clock.Sleep(ctx, codeWaitPoll) {
			return nil, ctx.Err()
		}
	}
}

func (f *flight) setNX(ctx context.Context, key string, v any) (bool, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return false, err
	}
	sctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	return f.store.SetNX(sctx, key, b, replayWindow)
}

// ValidNonce reports whether a login nonce has the contract's form: 16-64
// characters of [A-Za-z0-9_-].
func ValidNonce(n string) bool {
	return len(n) >= 16 && len(n) <= 64 && users.PlainName(n)
}

func upstreamTimeout() *apierr.Error {
	return apierr.New(http.StatusBadGateway, "upstream_error", "the login with this code is still running elsewhere; try again")
}
