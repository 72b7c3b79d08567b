package login

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxauth/caddy-wxauth/internal/apierr"
	"github.com/wxauth/caddy-wxauth/internal/clock"

	"github.com/wxauth/caddy-wxauth/session"
)

// flightFixture is two instances' login flights over one store.
type flightFixture struct {
	store    *session.Memory
	sessions *session.Manager
	a, b     *flight
	calls    atomic.Int32 // WeChat calls made
}

func newFlightFixture() *flightFixture {
	f := &flightFixture{store: session.NewMemory()}
	f.sessions = session.NewManager(f.store, "wxauth/app")
	f.a = newFlight(f.store, "wxauth/app", f.sessions.Get, clock.Real, 3*time.Second)
	f.b = newFlight(f.store, "wxauth/app", f.sessions.Get, clock.Real, 3*time.Second)
	return f
}

// login is the WeChat call and session creation; gate, when set, holds it.
func (f *flightFixture) login(gate <-chan struct{}) func(context.Context) (*session.Session, error) {
	return func(ctx context.Context) (*session.Session, error) {
		f.calls.Add(1)
		if gate != nil {
			<-gate
		}
		return f.sessions.Create(ctx, "alice", "", nil, time.Hour)
	}
}

const nonceA, nonceB = "nonce-aaaaaaaaaaaaaaaa", "nonce-bbbbbbbbbbbbbbbb"

func TestFlightReplay(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name         string
		first, again string // nonces
		on           string // instance of the replay: "a" (same) or "b"
		wantErr      bool
	}{
		{"same nonce, same instance", nonceA, nonceA, "a", false},
		{"same nonce, other instance", nonceA, nonceA, "b", false},
		{"other nonce", nonceA, nonceB, "b", true},
		{"no nonce on the replay", nonceA, "", "a", true},
		{"no nonce at all", "", "", "b", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFlightFixture()
			s1, err := f.a.do(ctx, "code1", tc.first, f.login(nil))
			if err != nil {
				t.Fatal(err)
			}
			fl := f.a
			if tc.on == "b" {
				fl = f.b
			}
			s2, err := fl.do(ctx, "code1", tc.again, f.login(nil))
			if tc.wantErr {
				var ae *apierr.Error
				if !errors.As(err, &ae) || ae.Code != "invalid_code" {
					t.Fatalf("replay: %v, want invalid_code", err)
				}
			} else if err != nil || s2.ID != s1.ID {
				t.Fatalf("replay: %v %v, want session %s", s2, err, s1.ID)
			}
			if n := f.calls.Load(); n != 1 {
				t.Fatalf("%d WeChat calls, want 1", n)
			}
		})
	}
}

// Concurrent logins with one code and one nonce, on two instances, make
// one WeChat call and one session.
func TestFlightMerging(t *testing.T) {
	f := newFlightFixture()
	gate := make(chan struct{})
	var wg sync.WaitGroup
	ids := make([]string, 8)
	errs := make([]error, 8)
	for i := range ids {
		fl := f.a
		if i%2 == 1 {
			fl = f.b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := fl.do(context.Background(), "code1", nonceA, f.login(gate))
			errs[i] = err
			if s != nil {
				ids[i] = s.ID
			}
		}()
	}
	// Let the leader finish once it has been called.
	deadline := time.Now().Add(5 * time.Second)
	for f.calls.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond) // polling a counter another goroutine sets
	}
	close(gate)
	wg.Wait()
	for i := range ids {
		if errs[i] != nil || ids[i] != ids[0] {
			t.Fatalf("caller %d: %q %v, want session %q", i, ids[i], errs[i], ids[0])
		}
	}
	if n := f.calls.Load(); n != 1 {
		t.Fatalf("%d WeChat calls, want 1", n)
	}
}

// A failed login lets the code go, so a retry gets WeChat's own answer.
func TestFlightFailureReleasesCode(t *testing.T) {
	f := newFlightFixture()
	boom := apierr.InvalidRequest("wechat said no")
	if _, err := f.a.do(context.Background(), "code1", nonceA, func(context.Context) (*session.Session, error) {
		return nil, boom
	}); err != boom {
		t.Fatalf("first: %v", err)
	}
	s, err := f.b.do(context.Background(), "code1", nonceA, f.login(nil))
	if err != nil || s == nil || f.calls.Load() != 1 {
		t.Fatalf("retry: %v %v calls=%d", s, err, f.calls.Load())
	}
}

// A replay after the session ended makes no new token.
func TestFlightReplayAfterLogout(t *testing.T) {
	f := newFlightFixture()
	s, err := f.a.do(context.Background(), "code1", nonceA, f.login(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.sessions.Revoke(context.Background(), s.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.b.do(context.Background(), "code1", nonceA, f.login(nil)); err == nil {
		t.Fatal("replay of a logged-out session made a token")
	}
}

func TestValidNonce(t *testing.T) {
	for n, want := range map[string]bool{
		"": false, "short": false, nonceA: true, "0123456789abcdef": true,
		"0123456789abcde!": false, string(make([]byte, 65)): false,
	} {
		if ValidNonce(n) != want {
			t.Errorf("ValidNonce(%q) = %v", n, !want)
		}
	}
}
