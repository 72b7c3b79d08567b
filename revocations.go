package wxauth

import (
	"sync"
	"time"
)

// ended records the sessions logged out in this process, per app_id, and the
// guards of each app, so that every wxauth handler of an app (several sites
// or handle blocks) refuses a logged-out session's tokens at once. Other
// processes learn of it from the store within recheckEvery.
var ended = struct {
	sync.Mutex
	sids   map[string]map[string]int64 // app -> sid -> token expiry (unix seconds)
	guards map[string]map[*guard]struct{}
}{sids: map[string]map[string]int64{}, guards: map[string]map[*guard]struct{}{}}

func registerGuard(app string, g *guard) {
	ended.Lock()
	defer ended.Unlock()
	if ended.guards[app] == nil {
		ended.guards[app] = map[*guard]struct{}{}
	}
	ended.guards[app][g] = struct{}{}
}

func unregisterGuard(app string, g *guard) {
	ended.Lock()
	defer ended.Unlock()
	delete(ended.guards[app], g)
	if len(ended.guards[app]) == 0 {
		delete(ended.guards, app)
	}
}

// endSession makes every guard of app refuse sid's tokens; the record is
// kept until the tokens would have expired anyway.
func endSession(app, sid string, exp int64) {
	now := time.Now().Unix()
	ended.Lock()
	sids := ended.sids[app]
	if sids == nil {
		sids = map[string]int64{}
		ended.sids[app] = sids
	}
	for k, e := range sids {
		if e < now {
			delete(sids, k)
		}
	}
	sids[sid] = exp
	guards := make([]*guard, 0, len(ended.guards[app]))
	for g := range ended.guards[app] {
		guards = append(guards, g)
	}
	ended.Unlock()
	for _, g := range guards {
		g.forget(sid)
	}
}

// sessionEnded reports whether sid was logged out in this process.
func sessionEnded(app, sid string) bool {
	ended.Lock()
	_, ok := ended.sids[app][sid]
	ended.Unlock()
	return ok
}
