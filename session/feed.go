package session

import (
	"context"
	"time"
)

// A Feed carries events to every instance that shares a store, so that an
// instance learns of a logout, a user's sessions ended, or a claim change
// elsewhere within a second or two, without asking the store about each
// token it has cached. Payloads are opaque (wxauth seals them).
type Feed interface {
	// Publish adds payload to the feed and returns once it is stored, so
	// that every follower, including those that start later within the
	// feed's retention, will deliver it.
	Publish(ctx context.Context, payload []byte) error
	// Follow delivers the payloads published after it starts, in the order
	// they were stored, until ctx ends. It reconnects by itself after
	// errors and never skips a payload it can still read; it tells f how
	// far it has read.
	Follow(ctx context.Context, f Follower)
}

// Follower receives what a Feed reads. Its methods are called from one
// goroutine at a time.
type Follower interface {
	// Deliver applies one payload.
	Deliver(payload []byte)
	// CaughtUp says that every payload stored before at has been delivered.
	CaughtUp(at time.Time)
	// Lost says that reading failed; the feed retries.
	Lost(err error)
	// Gap says that payloads may have been lost (the feed was wiped or
	// trimmed past the follower's position): whatever the follower holds
	// must be confirmed again.
	Gap()
}
