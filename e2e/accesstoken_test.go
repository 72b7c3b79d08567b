package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// appAccessToken asks app_api for the cluster's access_token, with stale
// when WeChat refused that one, and returns the token.
func appAccessToken(t *testing.T, h *harness, id, stale string) string {
	t.Helper()
	body := `{"action":"access_token"}`
	if stale != "" {
		body = `{"action":"access_token","stale":` + strings.TrimSpace(string(mustJSON(t, stale))) + `}`
	}
	now := time.Now()
	r := signedCall(h, body, id, now, hookSecret)
	if r.status != 200 || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("access_token (stale %q): %d %v %s", stale, r.status, r.header, r.body)
	}
	tok := r.str("access_token")
	exp, _ := r.json["expires_at"].(float64)
	if tok == "" || len(r.json) != 2 || time.Unix(int64(exp), 0).Before(now.Add(time.Minute)) {
		t.Fatalf("access_token answer: %s", r.body)
	}
	return tok
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// subscribeSend sends a subscribe message with tok, as the app does, and
// returns WeChat's errcode.
func subscribeSend(h *harness, tok, openid string) int {
	h.t.Helper()
	r := h.do(http.MethodPost, mockURL+"/cgi-bin/message/subscribe/send?access_token="+url.QueryEscape(tok),
		strings.NewReader(`{"touser":"`+openid+`","template_id":"tmpl-order","data":{"thing1":{"value":"shipped"}}}`))
	n, _ := r.json["errcode"].(float64)
	return int(n)
}

func TestAppAPIAccessToken(t *testing.T) {
	a := newAppHook(t)
	// An app of its own: the tokens this test replaces and expires are not
	// the ones the other tests' wxauth keeps in the shared storage.
	h := startConfig(t, configFor("wxstaleapp000001", hookConfig(a, "login")))
	openid := h.login("xena").str("openid")
	before := h.metrics()

	// The current token: the app uses it with WeChat.
	tok := appAccessToken(t, h, "at-1", "")
	if got := subscribeSend(h, tok, openid); got != 0 {
		t.Fatalf("subscribe message with wxauth's token: errcode %d", got)
	}
	if again := appAccessToken(t, h, "at-2", ""); again != tok {
		t.Fatalf("second call: %q, want the same token", again)
	}

	// The app reports tok as refused; WeChat still hands it out, so it is
	// replaced with force_refresh: one normal stable_token call, one forced.
	calls := h.stats("stable_token")
	fresh := appAccessToken(t, h, "at-3", tok)
	if fresh == tok || h.stats("stable_token")-calls != 2 {
		t.Fatalf("stale: got %q (was %q) after %d stable_token calls, want a new one after 2", fresh, tok, h.stats("stable_token")-calls)
	}
	if got := subscribeSend(h, fresh, openid); got != 0 {
		t.Fatalf("subscribe message with the new token: errcode %d", got)
	}

	// Another copy of the app reports the same old token: it is no longer
	// current, so the current one comes back without a WeChat call.
	calls = h.stats("stable_token")
	if got := appAccessToken(t, h, "at-4", tok); got != fresh || h.stats("stable_token") != calls {
		t.Fatalf("stale token no longer current: %q, %d stable_token calls", got, h.stats("stable_token")-calls)
	}

	// WeChat expired every token on its own: the normal call gives a new
	// one, nothing is forced.
	h.mock(http.MethodPost, "/wxmock/expire_tokens")
	if got := subscribeSend(h, fresh, openid); got != 42001 {
		t.Fatalf("expired token: errcode %d, want 42001", got)
	}
	calls = h.stats("stable_token")
	third := appAccessToken(t, h, "at-5", fresh)
	if third == fresh || h.stats("stable_token")-calls != 1 || subscribeSend(h, third, openid) != 0 {
		t.Fatalf("after expiry: %q, %d stable_token calls", third, h.stats("stable_token")-calls)
	}
	after := h.metrics()
	if got := after["wxauth_access_token_forced_refreshes_total"] - before["wxauth_access_token_forced_refreshes_total"]; got != 1 {
		t.Errorf("forced refreshes went up by %v, want 1", got)
	}

	// stale belongs to access_token alone, and access_token takes no user.
	now := time.Now()
	for i, body := range []string{
		`{"action":"set_claims","openid":"` + openid + `","claims":{"tier":"x"},"stale":"t"}`,
		`{"action":"end_sessions","openid":"` + openid + `","stale":"t"}`,
		`{"action":"access_token","stale":""}`,
		`{"action":"access_token","stale":7}`,
		`{"action":"access_token","openid":"` + openid + `"}`,
		`{"action":"access_token","token":"t"}`,
	} {
		expectError(t, signedCall(h, body, "at-bad-"+string(rune('a'+i)), now, hookSecret), 400, "invalid_request")
	}
	expectError(t, h.do(http.MethodPost, appURL+"/wx/app", strings.NewReader(`{"action":"access_token"}`)), 401, "invalid_signature")
	other := "whsec_b3RoZXItc2VjcmV0LW9mLWFub3RoZXItYXBwLTAxMjM="
	expectError(t, signedCall(h, `{"action":"access_token"}`, "at-6", now, other), 401, "invalid_signature")
}
