package wxauth

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
