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
