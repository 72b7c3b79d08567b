package quota

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxauth/caddy-wxauth/internal/clock"
	"github.com/wxauth/caddy-wxauth/session"
	"github.com/wxauth/caddy-wxauth/session/storetest"
)

func newTestQuota(store session.Store, clock *clock.Fake) *Phone {
	// The memory store expires entries on the real clock; the windows here
	// are far longer than the test.
	return NewPhone(Config{Store: store, Prefix: "wxauth/app", Limit: 3, Window: 10 * time.Minute, Timeout: time.Second, Now: clock.Now})
}

// reserveWait returns how long openid must wait (0: counted) and the
// refund of a counted call.
func reserveWait(t *testing.T, q *Phone, openid string) (time.Duration, func()) {
	t.Helper()
	refund, wait, err := q.Reserve(context.Background(), openid)
	switch {
	case err != nil:
		t.Fatalf("Reserve: %v", err)
	case wait > 0 && refund != nil, wait == 0 && refund == nil:
		t.Fatalf("Reserve: wait %v with refund %v", wait, refund != nil)
	}
	return wait, refund
}

func TestPhoneQuota(t *testing.T) {
	clock := clock.NewFake()
	q := newTestQuota(session.NewMemory(), clock)
	for i := range 3 {
		if wait, _ := reserveWait(t, q, "alice"); wait != 0 {
			t.Fatalf("call %d refused: wait %v", i, wait)
		}
		clock.Advance(time.Minute)
	}
	// The window began at the first call: 7 minutes are left.
	if wait, _ := reserveWait(t, q, "alice"); wait != 7*time.Minute {
		t.Fatalf("4th call: wait %v, want 7m", wait)
	}
	// A refused call does not count, and other users are not limited.
	clock.Advance(6*time.Minute + 59*time.Second + 500*time.Millisecond)
	if wait, _ := reserveWait(t, q, "alice"); wait != 500*time.Millisecond {
		t.Fatalf("half a second before the end: wait %v", wait)
	}
	if wait, _ := reserveWait(t, q, "bob"); wait != 0 {
		t.Fatalf("another user: wait %v", wait)
	}
	clock.Advance(500 * time.Millisecond)
	for i := range 3 {
		if wait, _ := reserveWait(t, q, "alice"); wait != 0 {
			t.Fatalf("new window, call %d: wait %v", i, wait)
		}
	}
	if wait, _ := reserveWait(t, q, "alice"); wait != 10*time.Minute {
		t.Fatalf("new window used up: wait %v", wait)
	}
}

func TestPhoneQuotaRefund(t *testing.T) {
	clock := clock.NewFake()
	q := newTestQuota(session.NewMemory(), clock)
	reserveWait(t, q, "alice")
	reserveWait(t, q, "alice")
	_, refund := reserveWait(t, q, "alice")
	refund() // that call never reached WeChat
	if wait, _ := reserveWait(t, q, "alice"); wait != 0 {
		t.Fatalf("after a refund: wait %v", wait)
	}
	if wait, _ := reserveWait(t, q, "alice"); wait == 0 {
		t.Fatal("refunded once, counted twice")
	}
	// A refund that arrives in a later window leaves that window alone.
	_, refund = reserveWait(t, q, "bob")
	clock.Advance(11 * time.Minute)
	for range 3 {
		reserveWait(t, q, "bob")
	}
	refund()
	if wait, _ := reserveWait(t, q, "bob"); wait == 0 {
		t.Fatal("an old window's refund freed a call")
	}
}

// Concurrent calls never pass the limit together.
func TestPhoneQuotaConcurrent(t *testing.T) {
	q := newTestQuota(session.NewMemory(), clock.NewFake())
	var ok atomic.Int32
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, wait, err := q.Reserve(context.Background(), "alice"); err == nil && wait == 0 {
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 3 {
		t.Fatalf("%d calls allowed, want 3", ok.Load())
	}
}

// A store that fails is reported, and nothing is counted.
func TestPhoneQuotaStoreDown(t *testing.T) {
	store := &storetest.Failing{Store: session.NewMemory()}
	q := newTestQuota(store, clock.NewFake())
	store.Down.Store(true)
	if refund, wait, err := q.Reserve(context.Background(), "alice"); !errors.Is(err, storetest.ErrDown) || wait != 0 || refund != nil {
		t.Fatalf("Reserve with the store down: %v, %v, refund %v", err, wait, refund != nil)
	}
}
