package session_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/wxauth/caddy-wxauth/session"
	"github.com/wxauth/caddy-wxauth/session/feedtest"
)

func TestMemoryFeed(t *testing.T) {
	t.Parallel()
	feedtest.Run(t, func(t *testing.T) (session.Feed, session.Feed) {
		f := session.NewMemoryFeed()
		return f, f
	})
}

// TestMemoryFeedSlowFollower shows that a follower stuck in Deliver holds up
// neither Publish nor the other followers, and loses nothing meanwhile.
func TestMemoryFeedSlowFollower(t *testing.T) {
	f := session.NewMemoryFeed()
	// slow is stuck in its first Deliver until release is closed.
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	slow := feedtest.NewRecorder()
	slow.BeforeDeliver = func([]byte) {
		once.Do(func() {
			close(entered)
			<-release
		})
	}
	feedtest.Follow(t, f, slow)
	fast := feedtest.Follow(t, f, feedtest.NewRecorder())

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var want [][]byte
	for i := range 1000 {
		p := []byte{byte(i >> 8), byte(i)}
		want = append(want, p)
		if err := f.Publish(ctx, p); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			<-entered
		}
	}
	fast.WaitDelivered(t, want...)
	close(release)
	slow.WaitDelivered(t, want...)
	for name, r := range map[string]*feedtest.Recorder{"fast": fast, "slow": slow} {
		got := r.Payloads()
		for i := range got {
			if string(got[i]) != string(want[i]) {
				t.Fatalf("%s follower: payload %d = %x, want %x (in publish order)", name, i, got[i], want[i])
			}
		}
	}
}

func TestMemoryFeedPublishCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := session.NewMemoryFeed().Publish(ctx, []byte("x")); err == nil {
		t.Fatal("Publish with an ended context succeeded")
	}
}
