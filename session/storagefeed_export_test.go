package session

import "context"

// FeedPoller makes one follower's listings of a StorageFeed on demand, so
// that tests drive it with a fake clock instead of Follow's timer.
type FeedPoller struct{ st *feedFollow }

// NewPoller starts a follower at the feed's clock's now.
func (f *StorageFeed) NewPoller() *FeedPoller { return &FeedPoller{f.newFollow(f.now())} }

// Poll makes one round of listings, as Follow does every second.
func (p *FeedPoller) Poll(ctx context.Context, fl Follower) error { return p.st.poll(ctx, fl) }

// FeedSlot is the time one slot folder covers.
const FeedSlot = feedSlot
