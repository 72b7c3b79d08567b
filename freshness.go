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

// pollFreshness confirms each cached token's session in the background
// after soon, and before answering after stale; so a session ended on
// another instance is refused there within stale plus one lookup.
type pollFreshness struct {
	soon, stale time.Duration
}

func (p pollFreshness) due(checked, now int64) staleness {
	switch age := time.Duration(now - checked); {
	case age < p.soon:
		return fresh
	case age < p.stale:
		return recheckSoon
	}
	return recheckNow
}

// Until instances follow a change feed, a cached token in use has its
// session confirmed in the background every recheckEvery; one idle past
// staleAfter is confirmed before it is answered. A logout on another
// instance so takes effect within staleAfter plus one lookup.
const (
	recheckEvery = 5 * time.Second
	staleAfter   = 7 * time.Second
)
