package guard

import (
	"errors"
	"testing"
	"time"

	"github.com/wxauth/caddy-wxauth/internal/clock"
)

func TestEndedSet(t *testing.T) {
	clock := clock.NewFake()
	e := NewEnded(clock.Now)
	e.EndSession("alice", "s1", time.Hour)
	e.EndUser("alice", clock.Now(), 2*time.Hour)
	before := clock.Now().Add(-time.Minute).UnixNano()
	after := clock.Now().Add(time.Minute).UnixNano()
	checks := []struct {
		name string
		got  bool
		want bool
	}{
		{"ended session", e.sessionEnded("s1"), true},
		{"other session", e.sessionEnded("s2"), false},
		{"user's session begun before the end", e.userEnded("alice", before), true},
		{"user's session begun after the end", e.userEnded("alice", after), false},
		{"other user", e.userEnded("bob", before), false},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: %v, want %v", c.name, c.got, c.want)
		}
	}
	// An older end never replaces a newer one.
	e.EndUser("alice", clock.Now().Add(-time.Hour), time.Hour)
	if !e.userEnded("alice", before) {
		t.Error("an older end replaced a newer one")
	}
	// Records lapse once every token they could refuse has expired.
	clock.Advance(time.Hour)
	if e.sessionEnded("s1") {
		t.Error("session record kept past its time")
	}
	if !e.userEnded("alice", before) {
		t.Error("user record dropped early")
	}
	clock.Advance(time.Hour)
	e.EndSession("bob", "s9", time.Minute) // sweeps
	if e.userEnded("alice", before) || len(e.sids) != 1 || len(e.users) != 0 {
		t.Errorf("lapsed records kept: %d sessions, %d users", len(e.sids), len(e.users))
	}
}

// Ends reach every guard of the app.
func TestEndedSetTellsEveryGuard(t *testing.T) {
	f1 := newGuardFixture(t)
	f2 := newGuardFixture(t, func(c *Config) { c.Ended = f1.ended })
	tok := f1.login("s1", "alice", nil)
	f2.store.set(func(s *fakeSessions) { s.byID["s1"] = f1.store.byID["s1"] })
	if f1.check(tok) != "" || f2.check(tok) != "" {
		t.Fatal("first checks refused")
	}
	f1.ended.EndSession("alice", "s1", time.Hour)
	if f1.check(tok) != "invalid_token" || f2.check(tok) != "invalid_token" {
		t.Fatal("an ended session passed a guard")
	}
	f2.g.Close()
	f1.ended.SetClaims("alice", map[string]any{"x": "1"}) // no panic on closed guards
}

// During an outage a guard of a config loaded later (a reload) accepts what
// another guard of the process confirmed, until it ends or expires.
func TestEndedSetConfirmedAcrossGuards(t *testing.T) {
	f1 := newGuardFixture(t)
	f2 := newGuardFixture(t, func(c *Config) { c.Ended = f1.ended; c.Now = f1.clock.Now })
	kept, ended, other := f1.login("s1", "alice", nil), f1.login("s2", "alice", nil), f1.login("s3", "bob", nil)
	if f1.check(kept) != "" || f1.check(ended) != "" {
		t.Fatal("first checks refused")
	}
	f2.store.set(func(s *fakeSessions) { s.err = errors.New("down") })
	f1.ended.EndSession("alice", "s2", time.Hour)
	checks := []struct {
		name, tok, want string
	}{
		{"confirmed by the other guard", kept, ""},
		{"confirmed, then ended", ended, "invalid_token"},
		{"never confirmed in this process", other, "store_unavailable"},
	}
	for _, c := range checks {
		if got := f2.check(c.tok); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
	f1.clock.Advance(2 * time.Hour) // past the token's expiry
	if f1.ended.confirmedAlive("s1") {
		t.Error("a confirmation outlived its token")
	}
}
