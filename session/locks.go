package session

import (
	"context"
	"sync"
)

// localLocks is a set of in-process named locks. A held name maps to a
// channel that is closed on release, so waiters can select on it together
// with their context (a sync.Mutex cannot be abandoned when ctx ends).
type localLocks struct {
	mu   sync.Mutex
	held map[string]chan struct{}
}

// lock blocks until name is held by the caller or ctx ends. The returned
// function releases the lock; calling it more than once is harmless.
func (l *localLocks) lock(ctx context.Context, name string) (func(), error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		l.mu.Lock()
		if l.held == nil {
			l.held = make(map[string]chan struct{})
		}
		released, busy := l.held[name]
		if !busy {
			mine := make(chan struct{})
			l.held[name] = mine
			l.mu.Unlock()
			var once sync.Once
			return func() {
				once.Do(func() {
					l.mu.Lock()
					delete(l.held, name)
					l.mu.Unlock()
					close(mine)
				})
			}, nil
		}
		l.mu.Unlock()

		select {
		case <-released:
			// Released: race the other waiters for it.
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
