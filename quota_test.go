package wxauth

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxauth/caddy-wxauth/internal/apierr"

	"github.com/wxauth/caddy-wxauth/session"
)

func newTestQuota(clock *fakeClock) *phoneQuota {
	// The memory store expires entries on the real clock; the windows here
	// are far longer than the test.
	return &phoneQuota{prefix: "wxauth/app", windowCounter: windowCounter{
		store: session.NewMemory(), limit: 3, window: 10 * time.Minute, now: clock.Now}}
}

// reserveCode returns "" or the refusal's code and Retry-After.
func reserveCode(t *testing.T, q *phoneQuota, openid string) (string, string, func()) {
	t.Helper()
	refund, err := q.reserve(context.Background(), openid)
	if err != nil {
		ae, ok := err.(*apierr.Error)
		if !ok {
			t.Fatalf("reserve: %v", err)
		}
		if func() string { n, _ := ae.Header(); return n }() != "Retry-After" {
			t.Fatalf("%s without Retry-After", ae.Code)
		}
		return ae.Code, func() string { _, v := ae.Header(); return v }(), nil
	}
	return "", "", refund
}

func TestPhoneQuota(t *testing.T) {
	clock := newFakeClock()
	q := newTestQuota(clock)
	for i := range 3 {
		if code, _, _ := reserveCode(t, q, "alice"); code != "" {
			t.Fatalf("call %d refused: %s", i, code)
		}
		clock.Advance(time.Minute)
	}
	// The window began at the first call: 7 minutes are left.
	code, retry, _ := reserveCode(t, q, "alice")
	if code != "rate_limited" || retry != "420" {
		t.Fatalf("4th call: %q Retry-After %q, want rate_limited 420", code, retry)
	}
	// A refused call does not count, and other users are not limited.
	clock.Advance(6*time.Minute + 59*time.Second + 500*time.Millisecond)
	if code, retry, _ := reserveCode(t, q, "alice"); code != "rate_limited" || retry != "1" {
		t.Fatalf("half a second before the end: %q Retry-After %q", code, retry)
	}
	if code, _, _ := reserveCode(t, q, "bob"); code != "" {
		t.Fatalf("another user: %s", code)
	}
	clock.Advance(500 * time.Millisecond)
	for i := range 3 {
		if code, _, _ := reserveCode(t, q, "alice"); code != "" {
			t.Fatalf("new window, call %d: %s", i, code)
		}
	}
	if code, retry, _ := reserveCode(t, q, "alice"); code != "rate_limited" || retry != "600" {
		t.Fatalf("new window used up: %q %q", code, retry)
	}
}

func TestPhoneQuotaRefund(t *testing.T) {
	clock := newFakeClock()
	q := newTestQuota(clock)
	reserveCode(t, q, "alice")
	reserveCode(t, q, "alice")
	_, _, refund := reserveCode(t, q, "alice")
	refund() // that call never reached WeChat
	if code, _, _ := reserveCode(t, q, "alice"); code != "" {
		t.Fatalf("after a refund: %s", code)
	}
	if code, _, _ := reserveCode(t, q, "alice"); code != "rate_limited" {
		t.Fatalf("refunded once, counted twice: %q", code)
	}
	// A refund that arrives in a later window leaves that window alone.
	_, _, refund = reserveCode(t, q, "bob")
	clock.Advance(11 * time.Minute)
	for range 3 {
		reserveCode(t, q, "bob")
	}
	refund()
	if code, _, _ := reserveCode(t, q, "bob"); code != "rate_limited" {
		t.Fatalf("an old window's refund freed a call: %q", code)
	}
}

// Concurrent calls never pass the limit together.
func TestPhoneQuotaConcurrent(t *testing.T) {
	q := newTestQuota(newFakeClock())
	var ok atomic.Int32
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := q.reserve(context.Background(), "alice"); err == nil {
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 3 {
		t.Fatalf("%d calls allowed, want 3", ok.Load())
	}
}
