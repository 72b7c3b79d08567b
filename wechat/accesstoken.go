package wechat

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"sync/atomic"
	"time"
)

// Cache is what AccessTokens needs from the store shared by all instances
// (session.Store satisfies it). Every instance must use the same token:
// each forced refresh at WeChat invalidates the previous one.
type Cache interface {
	// Get returns the value of key. An absent key is reported with an error
	// that matches fs.ErrNotExist (errors.Is), as session.ErrNotFound does;
	// any other error is a store failure (see AccessTokens).
	Get(ctx context.Context, key string) ([]byte, error)
	// Set stores value under key for ttl.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// Lock takes a cluster-wide lock on name until unlock is called.
	Lock(ctx context.Context, name string) (unlock func(), err error)
}

// maxMargin is how long before expiry a token is replaced at most; short
// lifetimes use a tenth of their length instead.
const maxMargin = 5 * time.Minute

// AccessTokens manages the app's access_token: kept in memory, shared
// through a Cache, refreshed by one instance at a time under a cluster
// lock. It is safe for concurrent use, and keeps working from WeChat and
// memory alone when the cache fails.
//
// A cache read that fails is not a miss: the token is still fetched for
// the caller (stable_token without force_refresh hands out the token in
// force, so the other instances' copies stay valid) and kept in memory,
// but it is not written to the cache, where it could replace a newer token
// that another instance stored while the read failed. Only a read that
// found the key absent, expired or unreadable leads to a write.
type AccessTokens struct {
	c         *Client
	cache     Cache
	key       string
	onRefresh func()
	forced    func() // told of each force_refresh, when set (see CountForced)
	now       func() time.Time

	cur atomic.Pointer[cachedToken]
	// sem admits one refresh per process at a time; the others wait on it
	// and then find the fresh token in memory (a mutex could not honor ctx).
	sem chan struct{}
}

// cachedToken is the cached value; JSON {"token","expires_at","expires_in"}
// with unix seconds and the lifetime in seconds.
type cachedToken struct {
	Token     string `json:"token"`
	ExpiresAt int64  `json:"expires_at"`
	ExpiresIn int64  `json:"expires_in,omitempty"`
}

// fresh reports whether t can still be handed out at now.
func (t *cachedToken) fresh(now time.Time) bool {
	if t == nil || t.Token == "" {
		return false
	}
	margin := maxMargin
	if life := time.Duration(t.ExpiresIn) * time.Second; life > 0 && life/10 < margin {
		margin = life / 10
	}
	return now.Add(margin).Before(time.Unix(t.ExpiresAt, 0))
}

// AccessTokensOption adjusts an AccessTokens at construction.
type AccessTokensOption func(*AccessTokens)

// CountForced has f called after each forced refresh (stable_token with
// force_refresh), e.g. to count them: WeChat allows 20 a day.
func CountForced(f func()) AccessTokensOption {
	return func(a *AccessTokens) { a.forced = f }
}

// NewAccessTokens manages the access_token of c's app, shared under key
// (e.g. "wxauth/<appid>/access_token") in cache. onRefresh, when set, is
// called after each token fetched from WeChat (for metrics).
func NewAccessTokens(c *Client, cache Cache, key string, onRefresh func(), opts ...AccessTokensOption) *AccessTokens {
	a := &AccessTokens{
		c:         c,
		cache:     cache,
		key:       key,
		onRefresh: onRefresh,
		now:       time.Now,
		sem:       make(chan struct{}, 1),
	}
	for _, o := range opts {
		o(a)
	}
	return a
}

// Token returns a valid access_token: from memory, else from the cache,
// else from WeChat under the cluster lock.
func (a *AccessTokens) Token(ctx context.Context) (string, error) {
	tok, _, err := a.Current(ctx)
	return tok, err
}

// Current is Token with the token's expiry.
func (a *AccessTokens) Current(ctx context.Context) (token string, expiresAt time.Time, err error) {
	t := a.cur.Load()
	if !t.fresh(a.now()) {
		if t, err = a.refresh(ctx, ""); err != nil {
			return "", time.Time{}, err
		}
	}
	return t.Token, time.Unix(t.ExpiresAt, 0), nil
}

// Refresh replaces stale, a token WeChat refused (40001, 42001), once for
// the whole cluster. Under the cluster lock it re-reads the current token
// and returns it if it is not stale: another caller replaced it already.
// Otherwise it asks stable_token as usual, and only when WeChat hands
// back stale again does it force a refresh, which invalidates every copy
// of the old token (WeChat allows 20 forced refreshes a day, 30 s apart).
// An empty stale is Current.
func (a *AccessTokens) Refresh(ctx context.Context, stale string) (token string, expiresAt time.Time, err error) {
	if stale == "" {
		return a.Current(ctx)
	}
	a.forget(stale)
	t, err := a.refresh(ctx, stale)
	if err != nil {
		return "", time.Time{}, err
	}
	return t.Token, time.Unix(t.ExpiresAt, 0), nil
}

// forget drops tok from memory, so a failed refresh does not leave it in use.
func (a *AccessTokens) forget(tok string) {
	if t := a.cur.Load(); t != nil && t.Token == tok {
		a.cur.CompareAndSwap(t, nil)
	}
}

// Do calls call with a token. When call fails because WeChat refused the
// token (IsTokenInvalid), the token is replaced and call runs once more.
func (a *AccessTokens) Do(ctx context.Context, call func(token string) error) error {
	tok, err := a.Token(ctx)
	if err != nil {
		return err
	}
	err = call(tok)
	if !IsTokenInvalid(err) {
		return err
	}
	a.forget(tok)
	t, err := a.refresh(ctx, tok)
	if err != nil {
		return err
	}
	return call(t.Token)
}

// refresh returns a fresh token other than bad (bad is "" when no token
// is known to be bad).
func (a *AccessTokens) refresh(ctx context.Context, bad string) (*cachedToken, error) {
	select {
	case a.sem <- struct{}{}:
		defer func() { <-a.sem }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	// usable reports whether t may be handed out.
	usable := func(t *cachedToken) bool { return t.fresh(a.now()) && t.Token != bad }

	// Another caller may have refreshed while this one waited.
	if t := a.cur.Load(); usable(t) {
		return t, nil
	}
	t, readErr := a.load(ctx)
	if usable(t) {
		a.cur.Store(t)
		return t, nil
	}

	// Cluster lock, so one instance asks WeChat; without a store, go on
	// alone: stable_token hands everyone the same token anyway.
	unlock, err := a.cache.Lock(ctx, a.key+".lock")
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	} else {
		defer unlock()
		t, readErr = a.load(ctx)
		if usable(t) {
			a.cur.Store(t)
			return t, nil
		}
	}

	tok, life, err := a.c.StableToken(ctx, false)
	if err == nil && bad != "" && tok == bad {
		// WeChat still hands out the refused token: ask for a new one.
		tok, life, err = a.c.StableToken(ctx, true)
		if err == nil && a.forced != nil {
			a.forced()
		}
	}
	if err != nil {
		return nil, err
	}
	if a.onRefresh != nil {
		a.onRefresh()
	}
	t = &cachedToken{Token: tok, ExpiresAt: a.now().Add(life).Unix(), ExpiresIn: int64(life / time.Second)}
	a.cur.Store(t)
	if readErr != nil {
		return t, nil // the cache may hold a newer token: see AccessTokens
	}
	if data, err := json.Marshal(t); err == nil {
		_ = a.cache.Set(ctx, a.key, data, life) // a store failure only costs sharing
	}
	return t, nil
}

// load reads the cached token. It returns nil, nil when the key is absent
// or its value is not a token (it is then replaced), and the error of a
// failed read.
func (a *AccessTokens) load(ctx context.Context) (*cachedToken, error) {
	data, err := a.cache.Get(ctx, a.key)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil
	case err != nil:
		return nil, err
	}
	var t cachedToken
	if json.Unmarshal(data, &t) != nil {
		return nil, nil
	}
	return &t, nil
}
