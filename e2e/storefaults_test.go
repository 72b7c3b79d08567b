package e2e

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wxauth/caddy-wxauth/internal/redistest"
)

// A store that stops answering costs a token one bounded lookup: a token
// never confirmed here is refused with 503, a confirmed one is answered; after
// that, cached tokens are answered at once, also when their recheck is due.
func TestSlowStoreDoesNotSlowCachedRequests(t *testing.T) {
	opts, _ := redis.ParseURL(redistest.Start(t))
	p := newTCPProxy(t, opts.Addr)
	h := start(t, fmt.Sprintf("signing_key %s\n store redis redis://%s/0", testKey, p.addr))
	tok, unchecked := h.token("zoe"), h.token("zack")
	if r := h.do(http.MethodGet, appURL+"/x", nil, bearer(tok)...); r.status != 200 {
		t.Fatalf("before the store went silent: %d %s", r.status, r.body)
	}
	p.silence()
	timed := func(tok string) (int, time.Duration) {
		began := time.Now()
		r := h.do(http.MethodGet, appURL+"/x", nil, bearer(tok)...)
		return r.status, time.Since(began)
	}
	if st, d := timed(unchecked); st != 503 || d > 3*time.Second {
		t.Fatalf("an unconfirmed token with a silent store: %d in %v", st, d)
	}
	if st, d := timed(tok); st != 200 || d > 3*time.Second {
		t.Fatalf("a confirmed token with a silent store: %d in %v", st, d)
	}
	// Whether a cached token's confirmation is due or not, a store that
	// failed lately is not waited for (the guard's unit tests cover the timing).
	for i := 0; i < 5; i++ {
		if st, d := timed(tok); st != 200 || d > 500*time.Millisecond {
			t.Fatalf("cached request %d with a silent store: %d in %v", i, st, d)
		}
	}
}

// Without a signing_key, a store that is down at start does not keep Caddy
// from starting: logins and token checks answer 503 until the keys load.
func TestStoreDownAtStart(t *testing.T) {
	port := serverPort(t)
	h := start(t, fmt.Sprintf("store redis redis://127.0.0.1:%d/0", port))
	code := h.code("amy")
	expectError(t, h.postJSON(appURL+"/wx/login", map[string]string{"code": code}), 503, "store_unavailable")
	expectError(t, h.do(http.MethodGet, appURL+"/x", nil, bearer("a.b.c")...), 503, "store_unavailable")
	if r := h.do(http.MethodGet, appURL+"/public/x", nil); r.status != 200 {
		t.Fatalf("other routes broke: %d", r.status)
	}
	redistest.StartOn(t, port)
	var tok string
	// The code was not spent on WeChat while no token could be signed.
	if !eventually(t, 20*time.Second, func() bool {
		r := h.postJSON(appURL+"/wx/login", map[string]string{"code": code})
		tok = r.str("token")
		return r.status == 200
	}) {
		t.Fatal("logins did not recover once the store came up")
	}
	if r := h.do(http.MethodGet, appURL+"/x", nil, bearer(tok)...); r.status != 200 {
		t.Fatalf("token after recovery: %d %s", r.status, r.body)
	}
}

// A reload while the store is down keeps the keys the app had loaded, and
// what this process confirmed: a token checked before the outage still
// works, one never checked here waits for the store.
func TestReloadWithStoreDownKeepsKeys(t *testing.T) {
	url, stop := redistest.StartOn(t, serverPort(t))
	h := start(t, "store redis "+url)
	tok, unchecked := h.token("dora"), h.token("dina")
	if r := h.do(http.MethodGet, appURL+"/x", nil, bearer(tok)...); r.status != 200 {
		t.Fatalf("token before the outage: %d %s", r.status, r.body)
	}
	stop()
	h = start(t, "store redis "+url)
	if r := h.do(http.MethodGet, appURL+"/x", nil, bearer(tok)...); r.status != 200 {
		t.Fatalf("token after a reload with the store down: %d %s", r.status, r.body)
	}
	expectError(t, h.do(http.MethodGet, appURL+"/x", nil, bearer(unchecked)...), 503, "store_unavailable")
}

func TestStoreDown(t *testing.T) {
	// A token this instance confirmed while the store worked...
	port, dir := serverPort(t), t.TempDir()
	url, stop := redistest.StartPersistentOn(t, port, dir)
	cfg := fmt.Sprintf("signing_key %s\n store redis %s", testKey, url)
	h := start(t, cfg)
	tok, unchecked := h.token("tina"), h.token("tom")
	if r := h.do(http.MethodGet, appURL+"/x", nil, bearer(tok)...); r.status != 200 {
		t.Fatalf("before the outage: %d %s", r.status, r.body)
	}
	// ...keeps working when the store cannot be reached, also after a
	// reload; one it never confirmed waits for the store, and logins
	// answer a quick, clear 503.
	stop()
	h = start(t, cfg)
	if r := h.do(http.MethodGet, appURL+"/x", nil, bearer(tok)...); r.status != 200 || r.str("openid") == "" {
		t.Fatalf("a confirmed token broke with the store down: %d %s", r.status, r.body)
	}
	expectError(t, h.do(http.MethodGet, appURL+"/x", nil, bearer(unchecked)...), 503, "store_unavailable")
	began := time.Now()
	r := h.postJSON(appURL+"/wx/login", map[string]string{"code": h.code("tina")})
	expectError(t, r, 503, "store_unavailable")
	if d := time.Since(began); d > 5*time.Second {
		t.Fatalf("login with the store down took %v", d)
	}
	expectError(t, h.do(http.MethodPost, appURL+"/wx/refresh", nil, bearer(tok)...), 503, "store_unavailable")
	expectError(t, h.do(http.MethodPost, appURL+"/wx/logout", nil, bearer(tok)...), 503, "store_unavailable")
	// Nothing was half-made: with the store back, the same user logs in
	// normally and both sessions are intact.
	_, stop = redistest.StartPersistentOn(t, port, dir)
	defer stop()
	for _, tk := range []string{tok, unchecked} {
		if !eventually(t, 10*time.Second, func() bool {
			return h.do(http.MethodGet, appURL+"/x", nil, bearer(tk)...).status == 200
		}) {
			t.Fatal("a token after the outage was refused")
		}
	}
	h.login("tina")
}
