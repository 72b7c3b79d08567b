package wxauth

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/wxauth/caddy-wxauth/internal/apierr"

	"github.com/wxauth/caddy-wxauth/internal/quota"
	"github.com/wxauth/caddy-wxauth/session"
)

// reserveCode returns "" or the refusal's code and Retry-After.
func reserveCode(t *testing.T, h *Handler, openid string) (string, string) {
	t.Helper()
	_, err := h.reservePhone(context.Background(), openid)
	if err != nil {
		ae, ok := err.(*apierr.Error)
		if !ok {
			t.Fatalf("reserve: %v", err)
		}
		name, value := ae.Header()
		if ae.Code == "rate_limited" && (ae.Status != http.StatusTooManyRequests || name != "Retry-After") {
			t.Fatalf("%s: status %d, header %s", ae.Code, ae.Status, name)
		}
		if ae.Code == "rate_limited" {
			return ae.Code, value
		}
		return ae.Code, ""
	}
	return "", ""
}

// The phone quota's refusals are the contract's answers: 429 rate_limited
// with a Retry-After rounded up, 503 store_unavailable. The counting
// itself is tested in internal/quota.
func TestPhoneQuotaAnswers(t *testing.T) {
	clock := newFakeClock()
	store := &failingStore{Store: session.NewMemory()}
	h := &Handler{phone: quota.NewPhone(quota.Config{Store: store, Prefix: "wxauth/app", Limit: 3, Window: 10 * time.Minute,
		Timeout: storeTimeout, Now: clock.Now})}
	for i := range 3 {
		if code, _ := reserveCode(t, h, "alice"); code != "" {
			t.Fatalf("call %d refused: %s", i, code)
		}
		clock.Advance(time.Minute)
	}
	// The window began at the first call: 7 minutes are left.
	code, retry := reserveCode(t, h, "alice")
	if code != "rate_limited" || retry != "420" {
		t.Fatalf("4th call: %q Retry-After %q, want rate_limited 420", code, retry)
	}
	clock.Advance(6*time.Minute + 59*time.Second + 500*time.Millisecond)
	if code, retry := reserveCode(t, h, "alice"); code != "rate_limited" || retry != "1" {
		t.Fatalf("half a second before the end: %q Retry-After %q", code, retry)
	}
	store.down.Store(true)
	if code, _ := reserveCode(t, h, "bob"); code != "store_unavailable" {
		t.Fatalf("with the store down: %q, want store_unavailable", code)
	}
}
