package e2e

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMetrics reads the counters before and after the calls, since the
// series are process-wide and earlier tests have counted into them.
func TestMetrics(t *testing.T) {
	h := start(t, "")
	before := h.metrics()
	tok := h.token("uma")
	h.do(http.MethodGet, appURL+"/x", nil, bearer(tok)...)
	h.do(http.MethodGet, appURL+"/x", nil, bearer(tok)...)
	h.do(http.MethodGet, appURL+"/x", nil)
	h.postJSON(appURL+"/wx/login", map[string]string{"code": "invalid"})
	// Every access_token expires, so the phone call fetches a new one.
	h.mock(http.MethodPost, "/wxmock/expire_tokens")
	code := h.mock(http.MethodGet, "/wxmock/phonecode?user=uma").str("code")
	if r := h.postJSON(appURL+"/wx/phone", map[string]string{"code": code}, bearer(tok)...); r.status != 200 {
		t.Fatalf("phone: %d %s", r.status, r.body)
	}
	after := h.metrics()

	for series, want := range map[string]float64{
		`wxauth_logins_total{errcode="",platform="wechat",result="ok"}`:                              1,
		`wxauth_logins_total{errcode="40029",platform="wechat",result="invalid_code"}`:               1,
		`wxauth_token_checks_total{result="missing"}`:                                                1,
		`wxauth_wechat_request_duration_seconds_count{api="jscode2session",outcome="ok"}`:            1,
		`wxauth_wechat_request_duration_seconds_count{api="jscode2session",outcome="errcode"}`:       1,
		`wxauth_wechat_request_duration_seconds_bucket{api="jscode2session",outcome="ok",le="+Inf"}`: 1,
		`wxauth_wechat_request_duration_seconds_count{api="getuserphonenumber",outcome="ok"}`:        1,
		`wxauth_access_token_refreshes_total`:                                                        1,
	} {
		if got := after[series] - before[series]; got != want {
			t.Errorf("%s went up by %v, want %v", series, got, want)
		}
	}
	// The first use of the token is verified, the second answered from the
	// cache; the phone call checks the token too.
	checked := func(m map[string]float64) float64 {
		return m[`wxauth_token_checks_total{result="ok"}`] + m[`wxauth_token_checks_total{result="cached"}`]
	}
	if got := checked(after) - checked(before); got != 3 {
		t.Errorf("token checks ok+cached went up by %v, want 3", got)
	}
	if after[`wxauth_token_checks_total{result="cached"}`] <= before[`wxauth_token_checks_total{result="cached"}`] {
		t.Error("no token check was answered from the cache")
	}
}

// metrics reads the admin endpoint's /metrics: the value of each series,
// keyed by its name and labels as written there.
func (h *harness) metrics() map[string]float64 {
	h.t.Helper()
	r := h.do(http.MethodGet, adminURL+"/metrics", nil)
	if r.status != 200 {
		h.t.Fatalf("/metrics: %d", r.status)
	}
	m := map[string]float64{}
	for _, line := range strings.Split(string(r.body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		series, value, ok := strings.Cut(line, " ")
		v, err := strconv.ParseFloat(value, 64)
		if !ok || err != nil {
			h.t.Fatalf("/metrics line %q", line)
		}
		m[series] = v
	}
	return m
}

// TestAppHookMetrics: each event sent to the app hook is timed, and each
// failure counted by a reason from a fixed set.
func TestAppHookMetrics(t *testing.T) {
	a := newAppHook(t)
	h := startHooked(t, a, "login")
	before := h.metrics()
	h.login("yara")
	a.answer("login", 500, "")
	expectError(t, h.postJSON(appURL+"/wx/login", map[string]string{"code": h.code("yara")}), 502, "hook_failed")
	a.answer("login", 200, `{"uid": [1]}`)
	expectError(t, h.postJSON(appURL+"/wx/login", map[string]string{"code": h.code("yara")}), 502, "hook_failed")
	a.answer("login", 403, `{"error":"banned","message":"no"}`)
	h.postJSON(appURL+"/wx/login", map[string]string{"code": h.code("yara")})
	a.mu.Lock()
	a.answers["login"] = hookAnswer{status: 200, body: "{}", delay: 3 * time.Second} // over the 1s timeout
	a.mu.Unlock()
	expectError(t, h.postJSON(appURL+"/wx/login", map[string]string{"code": h.code("yara")}), 502, "hook_failed")
	after := h.metrics()

	for series, want := range map[string]float64{
		`wxauth_app_hook_duration_seconds_count{event="login"}`:                     5,
		`wxauth_app_hook_duration_seconds_bucket{event="login",le="0.5"}`:           4, // all but the timeout
		`wxauth_app_hook_failures_total{event="login",reason="status"}`:             1,
		`wxauth_app_hook_failures_total{event="login",reason="bad_answer"}`:         1,
		`wxauth_app_hook_failures_total{event="login",reason="refused"}`:            1,
		`wxauth_app_hook_failures_total{event="login",reason="timeout"}`:            1,
		`wxauth_logins_total{errcode="",platform="wechat",result="hook_failed"}`:    3,
		`wxauth_logins_total{errcode="",platform="wechat",result="refused_by_app"}`: 1,
	} {
		if got := after[series] - before[series]; got != want {
			t.Errorf("%s went up by %v, want %v", series, got, want)
		}
	}
}
