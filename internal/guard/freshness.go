package guard

import "time"

// staleness is a freshness policy's verdict on a cached token.
type staleness uint8

const (
	// fresh: answer from the cache.
	fresh staleness = iota
	// recheckSoon: answer from the cache and confirm the session in the
	// background.
	recheckSoon
	// recheckNow: confirm the session before answering.
	recheckNow
)

// Freshness decides how long a cached token may be answered without asking
// the store whether its session still exists. It is the one place that
// knows how the instance learns of sessions ended elsewhere. FeedFreshness
// is the one of production; tests have their own.
type Freshness interface {
	// due judges a token whose session was last confirmed at checked
	// (unix nanos), at now.
	due(checked, now int64) staleness
}

// FeedState is how far the app's change feed has been read
// (*changes.Changes is one), in unix nanos.
type FeedState interface {
	CaughtUp() int64 // every event up to it was applied
	LastGap() int64  // the last gap or wipe: events before it may be lost
}

// FeedFreshness trusts cached tokens while the feed is caught up: every
// end or claim change then reaches the cache directly. When the feed has
// been behind for longer than Bound (beyond its usual Lag), a token not
// confirmed within Bound is confirmed in the store before it is answered;
// after a gap, every token confirmed before it is.
type FeedFreshness struct {
	Feed  FeedState     // the change feed's health
	Bound time.Duration // the change bound
	Lag   time.Duration // how far behind now the feed's catch-up runs when all is well
}

func (p FeedFreshness) due(checked, now int64) staleness {
	switch {
	case checked < p.Feed.LastGap():
		return recheckNow
	case now-p.Feed.CaughtUp() <= int64(p.Lag+p.Bound), now-checked < int64(p.Bound):
		return fresh
	}
	return recheckNow
}
