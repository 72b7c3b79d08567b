package wxauth

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

// freshness decides how long a cached token may be answered without asking
// the store whether its session still exists. It is the one place that
// knows how the instance learns of sessions ended elsewhere.
type freshness interface {
	// due judges a token whose session was last confirmed at checked
	// (unix nanos), at now.
	due(checked, now int64) staleness
}

// feedState is how far the app's change feed has been read
// (*changes.Changes), in unix nanos.
type feedState interface {
	CaughtUp() int64 // every event up to it was applied
	LastGap() int64  // the last gap or wipe: events before it may be lost
}

// feedFreshness trusts cached tokens while the feed is caught up: every
// end or claim change then reaches the cache directly. When the feed has
// been behind for longer than bound (beyond its usual lag), a token not
// confirmed within bound is confirmed in the store before it is answered;
// after a gap, every token confirmed before it is.
type feedFreshness struct {
	feed  feedState
	bound time.Duration // the change bound
	lag   time.Duration // how far behind now the feed's catch-up runs when all is well
}

func (p feedFreshness) due(checked, now int64) staleness {
	switch {
	case checked < p.feed.LastGap():
		return recheckNow
	case now-p.feed.CaughtUp() <= int64(p.lag+p.bound), now-checked < int64(p.bound):
		return fresh
	}
	return recheckNow
}
