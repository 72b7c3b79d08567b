package e2e

import (
	"net/http"
	"strconv"
	"sync"
	"testing"
)

// /wx/session asks WeChat's checksession once per session per minute,
// however many requests ask, one after another or together.
func TestSessionCheckAskedOncePerMinute(t *testing.T) {
	h := start(t, "")
	tok := h.token("sara")
	check := func() {
		r := h.do(http.MethodGet, appURL+"/wx/session", nil, bearer(tok)...)
		if r.status != 200 || r.json["session_key_valid"] != true {
			t.Errorf("session: %d %s", r.status, r.body)
		}
	}
	// The first request asks WeChat (twice if the access_token it holds
	// was refused and refreshed); the next ones take its answer.
	before := h.stats("checksession")
	check()
	asked := h.stats("checksession")
	if asked == before {
		t.Fatal("the first request did not ask WeChat")
	}
	for range 20 {
		check()
	}
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(check)
	}
	wg.Wait()
	if n := h.stats("checksession") - asked; n != 0 {
		t.Fatalf("%d checksession calls for 30 more requests of one session within the minute, want 0", n)
	}
	// Another session of another user is asked about on its own.
	other := h.token("saul")
	if r := h.do(http.MethodGet, appURL+"/wx/session", nil, bearer(other)...); r.status != 200 {
		t.Fatalf("other session: %d %s", r.status, r.body)
	}
	if n := h.stats("checksession") - asked; n != 1 {
		t.Fatalf("%d checksession calls for another session, want 1", n)
	}
}

// phone_limit counts WeChat calls per openid across sessions; over it the
// endpoint answers 429 without calling WeChat.
func TestPhoneLimit(t *testing.T) {
	// An app of its own: wxmock counts calls per app, and other tests' calls
	// (a hook retry finishing late) must not reach this count.
	h := startConfig(t, configFor("wxphonelimit", "phone_limit 3 10m"))
	tok := h.token("tess")
	phone := func(tok, user string) reply {
		code := h.mock(http.MethodGet, "/wxmock/phonecode?user="+user).str("code")
		return h.postJSON(appURL+"/wx/phone", map[string]string{"code": code}, bearer(tok)...)
	}
	before := h.stats("getuserphonenumber")
	// A malformed code never reaches WeChat, so it does not count.
	expectError(t, h.postJSON(appURL+"/wx/phone", map[string]string{"code": "a b"}, bearer(tok)...), 400, "invalid_request")
	for i := range 3 {
		if r := phone(tok, "tess"); r.status != 200 {
			t.Fatalf("call %d: %d %s", i, r.status, r.body)
		}
	}
	r := phone(tok, "tess")
	expectError(t, r, 429, "rate_limited")
	if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s < 1 || s > 600 {
		t.Fatalf("Retry-After = %q", r.header.Get("Retry-After"))
	}
	// A new session of the same user shares the count; another user does not.
	expectError(t, phone(h.token("tess"), "tess"), 429, "rate_limited")
	if r := phone(h.token("theo"), "theo"); r.status != 200 {
		t.Fatalf("another user: %d %s", r.status, r.body)
	}
	if n := h.stats("getuserphonenumber") - before; n != 4 {
		t.Fatalf("%d getuserphonenumber calls, want 4 (3 + another user's 1)", n)
	}
}
