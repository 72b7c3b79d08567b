package wxauth

import (
	"crypto/sha256"
	"sync"
	"time"
)

// replayWindow is how long a successful login answer is kept for a client
// that retries the same code (WeChat would answer 40163 for the reuse).
const replayWindow = 30 * time.Second

// loginFlight merges concurrent logins with the same code into one
// code2Session call and replays recent answers; kept in memory only.
type loginFlight struct {
	mu     sync.Mutex
	calls  map[[32]byte]*flightCall
	recent map[[32]byte]recentLogin
}

type flightCall struct {
	done  chan struct{}
	reply *loginReply
	err   error
}

type recentLogin struct {
	reply *loginReply
	until time.Time
}

func newLoginFlight() *loginFlight {
	return &loginFlight{calls: map[[32]byte]*flightCall{}, recent: map[[32]byte]recentLogin{}}
}

// do runs fn once per code at a time; the code is kept only as a hash.
func (f *loginFlight) do(code string, fn func() (*loginReply, error)) (*loginReply, error) {
	key := sha256.Sum256([]byte(code))
	now := time.Now()
	f.mu.Lock()
	if r, ok := f.recent[key]; ok && now.Before(r.until) {
		f.mu.Unlock()
		return r.reply, nil
	}
	if c, ok := f.calls[key]; ok {
		f.mu.Unlock()
		<-c.done
		return c.reply, c.err
	}
	c := &flightCall{done: make(chan struct{})}
	f.calls[key] = c
	f.mu.Unlock()

	c.reply, c.err = fn()

	f.mu.Lock()
	delete(f.calls, key)
	for k, r := range f.recent {
		if now.After(r.until) {
			delete(f.recent, k)
		}
	}
	if c.err == nil {
		f.recent[key] = recentLogin{reply: c.reply, until: time.Now().Add(replayWindow)}
	}
	f.mu.Unlock()
	close(c.done)
	return c.reply, c.err
}
