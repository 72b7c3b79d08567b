package wxauth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/wxauth/caddy-wxauth/internal/apierr"
	"github.com/wxauth/caddy-wxauth/internal/clock"
	"github.com/wxauth/caddy-wxauth/internal/quota"
	"github.com/wxauth/caddy-wxauth/session"
	"github.com/wxauth/caddy-wxauth/session/storetest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
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
	clock := clock.NewFake()
	store := &storetest.Failing{Store: session.NewMemory()}
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
	store.Down.Store(true)
	if code, _ := reserveCode(t, h, "bob"); code != "store_unavailable" {
		t.Fatalf("with the store down: %q, want store_unavailable", code)
	}
}

// While the store fails, each instance counts on its own: never no limit.
func TestLoginLimitFallsBackToMemory(t *testing.T) {
	clock := clock.NewFake()
	store := &storetest.Failing{Store: session.NewMemory()}
	core, logs := observer.New(zap.WarnLevel)
	h := &Handler{logger: zap.New(core),
		limiter: quota.NewLogin(quota.Config{Store: store, Prefix: "wxauth/app", Limit: 2, Window: time.Minute, Timeout: storeTimeout, Now: clock.Now})}
	check := func(ip string) error {
		ctx := context.WithValue(context.Background(), caddyhttp.VarsCtxKey, map[string]any{caddyhttp.ClientIPVarKey: ip})
		return h.checkLoginLimit(httptest.NewRequestWithContext(ctx, http.MethodPost, "/wx/login", nil))
	}
	expectLimited := func(step string, err error, retry string) {
		t.Helper()
		ae, ok := err.(*apierr.Error)
		if !ok || ae.Code != "rate_limited" || ae.Status != http.StatusTooManyRequests || func() string { _, v := ae.Header(); return v }() != retry {
			t.Fatalf("%s: %v, want 429 rate_limited with Retry-After %s", step, err, retry)
		}
	}
	for i := range 2 {
		if err := check("2001:db8::1"); err != nil {
			t.Fatalf("login %d with the store up: %v", i, err)
		}
	}
	store.Down.Store(true)
	before := counterValue(metrics.storeLoginLimit)
	clock.Advance(10 * time.Second)
	for i := range 2 {
		if err := check("2001:db8::2"); err != nil {
			t.Fatalf("login %d with the store down: %v", i, err)
		}
	}
	expectLimited("third login with the store down", check("2001:db8::3"), "60")
	if n := counterValue(metrics.storeLoginLimit) - before; n != 3 {
		t.Fatalf("%v store errors counted, want 3", n)
	}
	if logs.FilterMessageSnippet("counting on this instance only").Len() != 3 {
		t.Fatalf("store failures not logged: %v", logs.All())
	}
	// Back up, the store's count holds again: its window is not over.
	store.Down.Store(false)
	expectLimited("with the store back", check("2001:db8::4"), "50")
}
