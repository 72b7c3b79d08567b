package guard

import (
	"sync"
	"time"

	"github.com/wxauth/caddy-wxauth/internal/clock"
)

// Ended records, for one app in this process, the sessions and users
// whose sessions ended, and tells every guard of the app (several sites or
// handle blocks) at once. Records are kept until every token they could
// refuse has expired, so a token verified while its session was ending is
// still caught.
type Ended struct {
	now clock.Clock

	mu     sync.Mutex
	sids   map[string]int64    // sid -> kept until (unix nanos)
	users  map[string]userEnd  // user key -> when its sessions ended
	guards map[*Guard]struct{} // the guards to tell
	swept  int64               // last sweep, unix nanos

	// confirmed holds the sessions this process read alive in the store,
	// sid -> until (unix nanos, the token's expiry): while the store is
	// down, only these are accepted, also by the guards of a config
	// loaded during the outage.
	confirmed map[string]int64
}

// maxConfirmed bounds the confirmed record (about 100 bytes an entry);
// past it, sessions confirmed later are refused during an outage.
const maxConfirmed = 1 << 20

type userEnd struct {
	at, until int64 // unix nanos
}

// NewEnded returns an empty record on the clock now; the guards built with
// it (Config.Ended) share it.
func NewEnded(now clock.Clock) *Ended {
	return &Ended{now: now, sids: map[string]int64{}, users: map[string]userEnd{},
		guards: map[*Guard]struct{}{}, confirmed: map[string]int64{}}
}

// confirm records that the store answered sid as alive, for a token that
// expires at until (unix nanos).
func (e *Ended) confirm(sid string, until int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if prev, ok := e.confirmed[sid]; ok {
		e.confirmed[sid] = max(prev, until)
		return
	}
	if len(e.confirmed) >= maxConfirmed {
		e.sweepLocked(e.now().UnixNano())
		if len(e.confirmed) >= maxConfirmed {
			return
		}
	}
	e.confirmed[sid] = until
}

// confirmedAlive reports whether this process confirmed sid in the store
// and has not recorded it as ended since.
func (e *Ended) confirmedAlive(sid string) bool {
	now := e.now().UnixNano()
	e.mu.Lock()
	until, ok := e.confirmed[sid]
	_, ended := e.sids[sid]
	e.mu.Unlock()
	return ok && !ended && now < until
}

func (e *Ended) register(g *Guard) {
	e.mu.Lock()
	e.guards[g] = struct{}{}
	e.mu.Unlock()
}

func (e *Ended) unregister(g *Guard) {
	e.mu.Lock()
	delete(e.guards, g)
	e.mu.Unlock()
}

// EndSession records that sid of user ended, for keep, and refuses its
// cached tokens in every guard.
func (e *Ended) EndSession(user, sid string, keep time.Duration) {
	now := e.now()
	e.mu.Lock()
	e.sweepLocked(now.UnixNano())
	e.sids[sid] = now.Add(keep).UnixNano()
	guards := e.guardsLocked()
	e.mu.Unlock()
	for _, g := range guards {
		g.Invalidate(user, sid)
	}
}

// EndUser records that every session of user begun before at ended, for
// keep, and refuses their cached tokens in every guard.
func (e *Ended) EndUser(user string, at time.Time, keep time.Duration) {
	now := e.now()
	e.mu.Lock()
	e.sweepLocked(now.UnixNano())
	if prev, ok := e.users[user]; !ok || prev.at < at.UnixNano() {
		e.users[user] = userEnd{at: at.UnixNano(), until: now.Add(keep).UnixNano()}
	}
	guards := e.guardsLocked()
	e.mu.Unlock()
	for _, g := range guards {
		g.EndUser(user, at)
	}
}

// SetClaims hands the user's new claims to every guard.
func (e *Ended) SetClaims(user string, claims map[string]any) {
	e.mu.Lock()
	guards := e.guardsLocked()
	e.mu.Unlock()
	for _, g := range guards {
		g.SetClaims(user, claims)
	}
}

// sessionEnded reports whether sid is recorded as ended.
func (e *Ended) sessionEnded(sid string) bool {
	e.mu.Lock()
	until, ok := e.sids[sid]
	e.mu.Unlock()
	return ok && e.now().UnixNano() < until
}

// userEnded reports whether a session of user begun at created (unix
// nanos) is recorded as ended.
func (e *Ended) userEnded(user string, created int64) bool {
	e.mu.Lock()
	u, ok := e.users[user]
	e.mu.Unlock()
	return ok && created < u.at && e.now().UnixNano() < u.until
}

func (e *Ended) guardsLocked() []*Guard {
	out := make([]*Guard, 0, len(e.guards))
	for g := range e.guards {
		out = append(out, g)
	}
	return out
}

// sweepLocked drops lapsed records, at most once a minute.
func (e *Ended) sweepLocked(now int64) {
	if now-e.swept < int64(time.Minute) {
		return
	}
	e.swept = now
	for k, until := range e.sids {
		if until <= now {
			delete(e.sids, k)
		}
	}
	for k, u := range e.users {
		if u.until <= now {
			delete(e.users, k)
		}
	}
	for k, until := range e.confirmed {
		if until <= now {
			delete(e.confirmed, k)
		}
	}
}
