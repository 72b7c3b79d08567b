package session

import (
	"bytes"
	"context"
	"sync"
	"time"
)

// MemoryFeed is a Feed within one process, for the memory store: Publish
// hands the payload to every follower running at that moment, in one order
// for all of them, and none is lost. Each follower queues what it has not
// delivered yet, so a slow follower never holds up Publish (its queue grows
// instead).
type MemoryFeed struct {
	mu        sync.Mutex
	followers map[*memFollower]struct{}
}

// memFollower is one running Follow's queue.
type memFollower struct {
	mu    sync.Mutex
	queue [][]byte
	wake  chan struct{} // holds a token while queue may be non-empty
}

// memFeedIdle is how often an idle follower reports CaughtUp.
const memFeedIdle = 250 * time.Millisecond

// NewMemoryFeed returns a MemoryFeed with no followers.
func NewMemoryFeed() *MemoryFeed {
	return &MemoryFeed{followers: make(map[*memFollower]struct{})}
}

// Publish implements Feed.
func (m *MemoryFeed) Publish(ctx context.Context, payload []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p := bytes.Clone(payload)
	// Queueing to every follower under m.mu gives them all one order.
	m.mu.Lock()
	defer m.mu.Unlock()
	for fol := range m.followers {
		fol.mu.Lock()
		fol.queue = append(fol.queue, p)
		fol.mu.Unlock()
		select {
		case fol.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// Follow implements Feed. It delivers the payloads published after it
// starts, then reports CaughtUp; when idle it reports CaughtUp every 250 ms.
// It never calls Lost or Gap.
func (m *MemoryFeed) Follow(ctx context.Context, fl Follower) {
	fol := &memFollower{wake: make(chan struct{}, 1)}
	m.mu.Lock()
	m.followers[fol] = struct{}{}
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.followers, fol)
		m.mu.Unlock()
	}()

	idle := time.NewTicker(memFeedIdle)
	defer idle.Stop()
	for {
		fol.mu.Lock()
		batch := fol.queue
		fol.queue = nil
		// Whatever Publish returned before now is in batch.
		at := time.Now()
		fol.mu.Unlock()
		for _, p := range batch {
			if ctx.Err() != nil {
				return
			}
			// Followers share p; each gets a copy it may keep or change.
			fl.Deliver(bytes.Clone(p))
		}
		fl.CaughtUp(at)
		select {
		case <-ctx.Done():
			return
		case <-fol.wake:
		case <-idle.C:
		}
	}
}

// Interface guard.
var _ Feed = (*MemoryFeed)(nil)
