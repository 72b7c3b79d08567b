package users

import (
	"context"
	"testing"
	"time"

	"github.com/wxauth/caddy-wxauth/session"
)

// The first login is claimed under the user's lock; a failed one gives its
// claim back, and only its own.
func TestFirstLoginClaim(t *testing.T) {
	ctx := context.Background()
	st := New(Config{Store: session.NewMemory(), Prefix: "wxauth/app", TTL: time.Hour})
	claim := func(sid string, want bool) {
		t.Helper()
		u, first, err := st.ClaimFirst(ctx, "alice", sid)
		if err != nil || first != want || !u.Seen {
			t.Fatalf("claim by %s: first %v, seen %v, %v; want first %v", sid, first, u.Seen, err, want)
		}
	}
	claim("s1", true)
	claim("s2", false) // while s1 is pending
	if err := st.GiveBackFirst(ctx, "alice", "s2"); err != nil {
		t.Fatal(err)
	}
	claim("s3", false) // s2 had no claim to give back
	if err := st.GiveBackFirst(ctx, "alice", "s1"); err != nil {
		t.Fatal(err)
	}
	claim("s4", true) // s1 failed: the next login is the first
	if _, err := st.Update(ctx, "alice", SeenBy("s4")); err != nil {
		t.Fatal(err)
	}
	if err := st.GiveBackFirst(ctx, "alice", "s4"); err != nil {
		t.Fatal(err)
	}
	u, err := st.Get(ctx, "alice")
	if err != nil || !u.Seen || u.FirstBy != "" {
		t.Fatalf("after s4 succeeded: %+v %v", u, err)
	}
	claim("s5", false)
}

// announcer records the claims changes it is told of.
type announcer struct{ told []map[string]any }

func (a *announcer) ClaimsChanged(_ context.Context, _ string, claims map[string]any) error {
	a.told = append(a.told, claims)
	return nil
}

// A claims change is told to every instance only when it changes the claims.
func TestApplyClaimsAnnouncesChanges(t *testing.T) {
	ctx := context.Background()
	a := &announcer{}
	st := New(Config{Store: session.NewMemory(), Prefix: "wxauth/app", TTL: time.Hour, Announce: a})
	for _, change := range []map[string]any{{"uid": "7"}, {"uid": "7"}, nil, {"uid": nil}} {
		if _, err := st.ApplyClaims(ctx, "alice", change, SeenBy("s1")); err != nil {
			t.Fatal(err)
		}
	}
	if len(a.told) != 2 || a.told[0]["uid"] != "7" || a.told[1] != nil {
		t.Fatalf("told %v, want the set and the removal", a.told)
	}
	if u, err := st.Get(ctx, "alice"); err != nil || !u.Seen || u.Claims != nil {
		t.Fatalf("record %+v %v", u, err)
	}
}

// Live reads a session with its user's claims, and a session the app
// ended as ended.
func TestLive(t *testing.T) {
	ctx := context.Background()
	store := session.NewMemory()
	sessions := session.NewManager(store, "wxauth/app")
	st := New(Config{Store: store, Prefix: "wxauth/app", TTL: time.Hour, Sessions: sessions})
	s, err := sessions.Create(ctx, "alice", "", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.ApplyClaims(ctx, "alice", map[string]any{"uid": "7"}); err != nil {
		t.Fatal(err)
	}
	if got, err := st.Live(ctx, s.ID); err != nil || got.Claims["uid"] != "7" {
		t.Fatalf("live: %+v %v", got, err)
	}
	at := s.Created.Add(time.Nanosecond).UnixNano()
	if _, err := st.Update(ctx, "alice", func(u *Record) { u.EndedAt = at }); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Live(ctx, s.ID); err != session.ErrNotFound {
		t.Fatalf("ended session: %v, want session.ErrNotFound", err)
	}
}
