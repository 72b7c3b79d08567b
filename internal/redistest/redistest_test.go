package redistest

import (
	"net/url"
	"testing"
)

func TestStart(t *testing.T) {
	u := Start(t)
	parsed, err := url.Parse(u)
	if err != nil || parsed.Scheme != "redis" || parsed.Hostname() != "127.0.0.1" {
		t.Fatalf("Start() = %q", u)
	}
	if err := ping(parsed.Host); err != nil {
		t.Fatalf("server does not answer: %v", err)
	}
	// Two servers at once get two ports.
	if u2 := Start(t); u2 == u {
		t.Fatalf("second Start() = %q, same as the first", u2)
	}
}

func TestStartCleanup(t *testing.T) {
	var addr string
	t.Run("inner", func(t *testing.T) {
		u, err := url.Parse(Start(t))
		if err != nil {
			t.Fatal(err)
		}
		addr = u.Host
	})
	if addr == "" {
		t.Skip("inner test skipped")
	}
	if err := ping(addr); err == nil {
		t.Fatal("redis-server still answers after its test ended")
	}
}
