package platform

import (
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/wxauth/caddy-wxauth/internal/clock"
)

func TestFailMapsEachKind(t *testing.T) {
	cases := []struct {
		r       Refusal
		status  int
		code    string
		errcode any
	}{
		{Refusal{Kind: BadCode, Code: 40029}, 401, "invalid_code", 40029},
		{Refusal{Kind: BadCode, Code: "invalid_grant"}, 401, "invalid_code", "invalid_grant"},
		{Refusal{Kind: Misconfigured, Code: 40125, Fix: "set app_secret"}, 502, "platform_config", 40125},
		{Refusal{Kind: Limited, Code: 45011}, 429, "rate_limited", 45011},
		{Refusal{Kind: Risky, Code: 40226}, 403, "risky_user", 40226},
		{Refusal{Kind: Other, Code: -1}, 502, "upstream_error", -1},
		{Refusal{Kind: Other, Code: ""}, 502, "upstream_error", nil},
		{Refusal{Kind: Other}, 502, "upstream_error", nil},
	}
	for _, c := range cases {
		e := newClient(t, "").Fail(nil, "jscode2session", c.r)
		if e.Status != c.status || e.Code != c.code || e.ErrCode != c.errcode || e.Message == "" {
			t.Errorf("%+v: got %d %s %v %q", c.r, e.Status, e.Code, e.ErrCode, e.Message)
		}
		if c.r.Kind == Misconfigured && (e.Platform != "qq" || e.Message != c.r.Fix) {
			t.Errorf("%+v: platform %q, message %q", c.r, e.Platform, e.Message)
		}
		if name, _ := e.Header(); c.status == 429 && name != "Retry-After" {
			t.Errorf("%+v: no Retry-After", c.r)
		}
	}
}

// A misconfigured app is counted every time and logged at ERROR once a
// minute per code, with the fix; the platform's message reaches the log
// only, without the secret or the login code.
func TestConfigFailuresAreCountedAndLogged(t *testing.T) {
	var counted []string
	c := newClient(t, "")
	c.configErr = func(code string) { counted = append(counted, code) }
	fake := clock.NewFake()
	c.now = fake.Now
	core, logs := observer.New(zap.InfoLevel)
	log := zap.New(core)
	r := Refusal{Kind: Misconfigured, Code: 40125, Fix: "set the qq block's app_secret",
		Msg: "invalid appsecret " + testSecret + " for code CODE123", Hide: []string{"CODE123"}}
	for range 3 {
		e := c.Fail(log, "jscode2session", r)
		if strings.Contains(e.Message, testSecret) || strings.Contains(e.Message, "invalid appsecret") {
			t.Fatalf("the client sees the platform's message: %q", e.Message)
		}
	}
	fake.Advance(time.Minute)
	c.Fail(log, "jscode2session", r)
	if strings.Join(counted, ",") != "40125,40125,40125,40125" {
		t.Fatalf("counted %v", counted)
	}
	errorsLogged := 0
	for _, e := range logs.All() {
		m := e.ContextMap()
		if pm := m["platform_message"].(string); strings.Contains(pm, testSecret) || strings.Contains(pm, "CODE123") || !strings.Contains(pm, "[redacted]") {
			t.Fatalf("platform message in the log: %q", pm)
		}
		if e.Level == zapcore.ErrorLevel {
			errorsLogged++
			if m["fix"] != r.Fix || m["errcode"] != "40125" || m["platform"] != "qq" {
				t.Fatalf("error log without the fix: %v", m)
			}
		}
	}
	if errorsLogged != 2 {
		t.Fatalf("%d error logs, want 2 (once a minute)", errorsLogged)
	}
}
