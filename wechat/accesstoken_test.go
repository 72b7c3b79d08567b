package wechat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// memCache is a tiny Cache shared by the AccessTokens of one test, as a
// store is shared by the instances of a cluster.
type memCache struct {
	mu     sync.Mutex
	data   map[string][]byte
	lock   chan struct{}
	fail   bool  // every call fails
	getErr error // Get fails with it, when set
	sets   int
}

func newMemCache() *memCache {
	return &memCache{data: map[string][]byte{}, lock: make(chan struct{}, 1)}
}

var errStoreDown = errors.New("store down")

func (m *memCache) Get(_ context.Context, key string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail {
		return nil, errStoreDown
	}
	if m.getErr != nil {
		return nil, m.getErr
	}
	v, ok := m.data[key]
	if !ok {
		return nil, fmt.Errorf("get %s: %w", key, fs.ErrNotExist)
	}
	return v, nil
}

func (m *memCache) Set(_ context.Context, key string, value []byte, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail {
		return errStoreDown
	}
	if ttl <= 0 {
		return errors.New("no ttl")
	}
	m.data[key] = value
	m.sets++
	return nil
}

func (m *memCache) Lock(ctx context.Context, _ string) (func(), error) {
	if m.fail {
		return nil, errStoreDown
	}
	select {
	case m.lock <- struct{}{}:
		return func() { <-m.lock }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// tokenWX is a stable_token endpoint. Without force it hands out the
// current token (a new one only after rotate); force always makes a new one.
type tokenWX struct {
	*wxServer
	mu     sync.Mutex
	n      int
	cur    string
	forced int
}

func newTokenWX(t *testing.T) *tokenWX {
	tw := &tokenWX{}
	tw.wxServer = newWX(t, func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Force bool `json:"force_refresh"`
		}
		json.NewDecoder(r.Body).Decode(&body)
		time.Sleep(20 * time.Millisecond) // a slow WeChat, so that concurrent callers pile up
		tw.mu.Lock()
		if tw.cur == "" || body.Force {
			tw.rotateLocked()
		}
		if body.Force {
			tw.forced++
		}
		tok := tw.cur
		tw.mu.Unlock()
		fmt.Fprintf(w, `{"access_token":%q,"expires_in":7200}`, tok)
	})
	return tw
}

func (tw *tokenWX) rotateLocked() {
	tw.n++
	tw.cur = fmt.Sprintf("tok-%d", tw.n)
}

// rotate makes WeChat hand out a new token without force, as after expiry.
func (tw *tokenWX) rotate() {
	tw.mu.Lock()
	tw.rotateLocked()
	tw.mu.Unlock()
}

func TestAccessTokensShareOneFetch(t *testing.T) {
	tw := newTokenWX(t)
	cache := newMemCache()
	var refreshes atomic.Int32
	a := NewAccessTokens(tw.client(nil), cache, "wxauth/app/access_token", func() { refreshes.Add(1) })

	var wg sync.WaitGroup
	got := make([]string, 10)
	for i := range 5 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			tok, err := a.Token(context.Background())
			if err != nil {
				t.Error(err)
			}
			got[i] = tok
		}()
		go func() {
			defer wg.Done()
			err := a.Do(context.Background(), func(tok string) error { got[5+i] = tok; return nil })
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for i, tok := range got {
		if tok != "tok-1" {
			t.Fatalf("caller %d got %q", i, tok)
		}
	}
	if n := tw.calls.Load(); n != 1 || refreshes.Load() != 1 {
		t.Fatalf("%d WeChat calls, %d refreshes; want 1", n, refreshes.Load())
	}
	var v struct {
		Token     string `json:"token"`
		ExpiresAt int64  `json:"expires_at"`
	}
	if err := json.Unmarshal(cache.data["wxauth/app/access_token"], &v); err != nil || v.Token != "tok-1" ||
		time.Until(time.Unix(v.ExpiresAt, 0)) < 119*time.Minute {
		t.Fatalf("cached %s, %v", cache.data["wxauth/app/access_token"], err)
	}

	// A second instance on the same store uses the cached token.
	b := NewAccessTokens(tw.client(nil), cache, "wxauth/app/access_token", nil)
	if tok, err := b.Token(context.Background()); err != nil || tok != "tok-1" {
		t.Fatalf("second instance: %q, %v", tok, err)
	}
	if n := tw.calls.Load(); n != 1 {
		t.Fatalf("second instance called WeChat (%d calls)", n)
	}
}

func TestAccessTokensRefreshBeforeExpiry(t *testing.T) {
	tw := newTokenWX(t)
	now := time.Now()
	a := NewAccessTokens(tw.client(nil), newMemCache(), "k", nil)
	a.now = func() time.Time { return now }
	if tok, _ := a.Token(context.Background()); tok != "tok-1" {
		t.Fatalf("token %q", tok)
	}
	now = now.Add(2*time.Hour - 6*time.Minute) // outside the 5 min margin
	a.Token(context.Background())
	if n := tw.calls.Load(); n != 1 {
		t.Fatalf("%d calls before the margin", n)
	}
	tw.rotate()
	now = now.Add(2 * time.Minute) // 4 min left: inside the margin, cache stale too
	if tok, _ := a.Token(context.Background()); tok != "tok-2" || tw.calls.Load() != 2 {
		t.Fatalf("token %q after %d calls", tok, tw.calls.Load())
	}
}

func TestAccessTokensDoRetriesOnce(t *testing.T) {
	for _, code := range []int{40001, 40014, 42001} {
		for _, sticky := range []bool{false, true} {
			t.Run(fmt.Sprintf("%d sticky=%v", code, sticky), func(t *testing.T) {
				tw := newTokenWX(t)
				a := NewAccessTokens(tw.client(nil), newMemCache(), "k", nil)
				a.Token(context.Background())
				if !sticky {
					tw.rotate() // WeChat already has a new token: no force needed
				}
				var seen []string
				err := a.Do(context.Background(), func(tok string) error {
					seen = append(seen, tok)
					if tok == "tok-1" {
						return &Error{API: "getuserphonenumber", Code: code, Msg: "invalid credential"}
					}
					return nil
				})
				if err != nil || len(seen) != 2 || seen[1] != "tok-2" {
					t.Fatalf("err %v, tokens %v", err, seen)
				}
				wantForced := 0
				if sticky {
					wantForced = 1
				}
				if tw.forced != wantForced {
					t.Fatalf("%d forced refreshes, want %d", tw.forced, wantForced)
				}
				if tok, _ := a.Token(context.Background()); tok != "tok-2" {
					t.Fatalf("token after Do = %q", tok)
				}
			})
		}
	}
}

func TestAccessTokensDoGivesUp(t *testing.T) {
	tw := newTokenWX(t)
	a := NewAccessTokens(tw.client(nil), newMemCache(), "k", nil)
	calls := 0
	err := a.Do(context.Background(), func(string) error {
		calls++
		return &Error{Code: 40001}
	})
	if !IsTokenInvalid(err) || calls != 2 {
		t.Fatalf("err %v after %d calls", err, calls)
	}
	calls = 0
	err = a.Do(context.Background(), func(string) error { calls++; return &Error{Code: 40029} })
	if !IsInvalidCode(err) || calls != 1 {
		t.Fatalf("other error: err %v after %d calls", err, calls)
	}
}

func TestAccessTokensOtherInstanceAlreadyReplaced(t *testing.T) {
	tw := newTokenWX(t)
	cache := newMemCache()
	a := NewAccessTokens(tw.client(nil), cache, "k", nil)
	b := NewAccessTokens(tw.client(nil), cache, "k", nil)
	a.Token(context.Background())
	b.Token(context.Background())
	refuse := func(tok string) error {
		if tok == "tok-1" {
			return &Error{Code: 40001}
		}
		return nil
	}
	if err := a.Do(context.Background(), refuse); err != nil {
		t.Fatal(err)
	}
	calls := tw.calls.Load()
	// b still holds tok-1; the store already has tok-2, so b takes it
	// without asking WeChat and without forcing yet another token.
	var got string
	err := b.Do(context.Background(), func(tok string) error { got = tok; return refuse(tok) })
	if err != nil || got != "tok-2" || tw.calls.Load() != calls || tw.forced != 1 {
		t.Fatalf("err %v, token %q, %d new calls, %d forced", err, got, tw.calls.Load()-calls, tw.forced)
	}
}

func TestAccessTokensStoreDown(t *testing.T) {
	tw := newTokenWX(t)
	cache := newMemCache()
	cache.fail = true
	a := NewAccessTokens(tw.client(nil), cache, "k", nil)
	for range 3 {
		if tok, err := a.Token(context.Background()); err != nil || tok != "tok-1" {
			t.Fatalf("got %q, %v", tok, err)
		}
	}
	if n := tw.calls.Load(); n != 1 {
		t.Fatalf("%d WeChat calls, want 1 (memory)", n)
	}
	err := a.Do(context.Background(), func(tok string) error {
		if tok == "tok-1" {
			return &Error{Code: 42001}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	cache.fail = false
	if cache.sets != 0 {
		t.Fatal("set succeeded on a failing store")
	}
}

func TestAccessTokensErrors(t *testing.T) {
	wx := newWX(t, textJSON(`{"errcode":40125,"errmsg":"invalid appsecret"}`))
	a := NewAccessTokens(wx.client(nil), newMemCache(), "k", nil)
	if _, err := a.Token(context.Background()); err == nil {
		t.Fatal("no error")
	}
	called := false
	err := a.Do(context.Background(), func(string) error { called = true; return nil })
	if err == nil || called {
		t.Fatalf("Do without a token: err %v, called %v", err, called)
	}
	// A caller waiting for another's refresh gives up with its context.
	a.sem <- struct{}{}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := a.Token(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
}

// TestAccessTokensNotFoundRule: only a read that finds the key absent (an
// error matching fs.ErrNotExist), expired or unreadable leads to a write;
// after a failed read the caller still gets a token, but the cache keeps
// what it holds.
func TestAccessTokensNotFoundRule(t *testing.T) {
	other := `{"token":"from-another-instance","expires_at":1,"expires_in":7200}`
	tests := []struct {
		name   string
		stored string // the cache's value before the call; "" = absent
		getErr error
		write  bool
	}{
		{"absent", "", nil, true},
		{"expired", other, nil, true},
		{"not a token", "{not json", nil, true},
		{"store failure", other, errStoreDown, false},
		{"store timeout", other, fmt.Errorf("redis: %w", context.DeadlineExceeded), false},
		{"store failure, key absent", "", errStoreDown, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tw := newTokenWX(t)
			cache := newMemCache()
			if tt.stored != "" {
				cache.data["k"] = []byte(tt.stored)
			}
			cache.getErr = tt.getErr
			a := NewAccessTokens(tw.client(nil), cache, "k", nil)
			tok, err := a.Token(context.Background())
			if err != nil || tok != "tok-1" {
				t.Fatalf("Token = %q, %v; want tok-1 from WeChat", tok, err)
			}
			if wrote := cache.sets > 0; wrote != tt.write {
				t.Fatalf("cache written: %v, want %v (holds %s)", wrote, tt.write, cache.data["k"])
			}
			if !tt.write && string(cache.data["k"]) != tt.stored {
				t.Fatalf("cache changed to %s", cache.data["k"])
			}
			// The token stays in memory: no second WeChat call.
			if tok, _ := a.Token(context.Background()); tok != "tok-1" || tw.calls.Load() != 1 {
				t.Fatalf("second Token = %q after %d WeChat calls", tok, tw.calls.Load())
			}
		})
	}
}

func TestAccessTokensCurrentHasExpiry(t *testing.T) {
	tw := newTokenWX(t)
	now := time.Unix(1_700_000_000, 0)
	a := NewAccessTokens(tw.client(nil), newMemCache(), "k", nil)
	a.now = func() time.Time { return now }
	tok, exp, err := a.Current(context.Background())
	if err != nil || tok != "tok-1" || !exp.Equal(now.Add(7200*time.Second)) {
		t.Fatalf("got %q, %v, %v", tok, exp, err)
	}
	if tok2, exp2, err := a.Refresh(context.Background(), ""); err != nil || tok2 != tok || !exp2.Equal(exp) {
		t.Fatalf("Refresh with no stale token: %q, %v, %v", tok2, exp2, err)
	}
	if n := tw.calls.Load(); n != 1 {
		t.Fatalf("%d WeChat calls, want 1", n)
	}
}

func TestAccessTokensRefreshForcesOnlyWhenWeChatKeepsTheToken(t *testing.T) {
	tw := newTokenWX(t)
	cache := newMemCache()
	now := time.Unix(1_700_000_000, 0)
	var forced atomic.Int32
	a := NewAccessTokens(tw.client(nil), cache, "k", nil, CountForced(func() { forced.Add(1) }))
	b := NewAccessTokens(tw.client(nil), cache, "k", nil)
	a.now = func() time.Time { return now }
	b.now = a.now
	ctx := context.Background()
	if tok, _ := a.Token(ctx); tok != "tok-1" {
		t.Fatalf("first token %q", tok)
	}

	// The app's tok-1 was refused; WeChat still hands it out without force.
	tok, exp, err := a.Refresh(ctx, "tok-1")
	if err != nil || tok != "tok-2" || !exp.Equal(now.Add(7200*time.Second)) {
		t.Fatalf("refresh: %q, %v, %v", tok, exp, err)
	}
	if tw.calls.Load() != 3 || tw.forced != 1 || forced.Load() != 1 {
		t.Fatalf("%d calls, %d forced at WeChat, %d counted; want 3, 1, 1", tw.calls.Load(), tw.forced, forced.Load())
	}

	// Another app instance reports tok-1 too, through another wxauth
	// instance: tok-1 is no longer current, the store's tok-2 is handed
	// out without a WeChat call.
	if tok, _, err := b.Refresh(ctx, "tok-1"); err != nil || tok != "tok-2" || tw.calls.Load() != 3 {
		t.Fatalf("stale token no longer current: %q, %v, %d calls", tok, err, tw.calls.Load())
	}

	// WeChat replaced the token on its own (expiry): the normal call gives
	// a new one, nothing is forced.
	tw.rotate()
	if tok, _, err := b.Refresh(ctx, "tok-2"); err != nil || tok != "tok-3" || tw.forced != 1 {
		t.Fatalf("after WeChat rotated: %q, %v, %d forced", tok, err, tw.forced)
	}
	if tok, _ := a.Token(ctx); tok != "tok-2" {
		t.Fatalf("a's memory: %q", tok) // still fresh in a's memory; a refusal would replace it
	}
	if tok, _, _ := a.Refresh(ctx, "tok-2"); tok != "tok-3" || tw.forced != 1 {
		t.Fatalf("a after b's refresh: %q, %d forced", tok, tw.forced)
	}
}

func TestAccessTokensRefreshOnceForConcurrentCallers(t *testing.T) {
	tw := newTokenWX(t)
	cache := newMemCache()
	insts := []*AccessTokens{
		NewAccessTokens(tw.client(nil), cache, "k", nil),
		NewAccessTokens(tw.client(nil), cache, "k", nil),
	}
	ctx := context.Background()
	insts[0].Token(ctx)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if tok, _, err := insts[i%2].Refresh(ctx, "tok-1"); err != nil || tok != "tok-2" {
				t.Errorf("caller %d: %q, %v", i, tok, err)
			}
		}()
	}
	wg.Wait()
	if tw.forced != 1 {
		t.Fatalf("%d forced refreshes, want 1", tw.forced)
	}
}
