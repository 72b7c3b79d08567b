package session

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
)

// StorageFeed is a Feed kept in a certmagic.Storage, normally Caddy's
// configured storage, for instances that share it but no pub/sub.
//
// Each payload is one file, <prefix>/<slot>/<time>-<id>, where time is the
// writer's clock in Unix nanoseconds, id is random (so names never collide
// across instances) and slot is the start, in Unix seconds, of the 10-second
// slot that time falls in. A follower lists the current slot about once a
// second, and the previous one for the skew and a second after each
// rollover, so an idle follower makes at most 2 storage operations a second
// (1.4 on average with the default skew); each payload then costs it one
// Load. A payload is delivered within about a second of being stored, and
// CaughtUp trails the clock by the skew to the skew and a second. Sweep
// removes slots older than the retention.
//
// Instances' clocks may differ by up to the skew (2 s unless WithSkew says
// otherwise). A payload is written again under a fresh name when its write
// took longer than a second, so that a copy of it appears while followers
// still list its slot; followers deliver only the first copy they find.
type StorageFeed struct {
	storage   certmagic.Storage
	prefix    string
	retention time.Duration
	now       func() time.Time
	skew      time.Duration

	mu   sync.Mutex
	last int64 // the newest file time Publish has used, so one publisher's files sort in order
}

// StorageFeedOption changes a StorageFeed made by NewStorageFeed.
type StorageFeedOption func(*StorageFeed)

// WithClock makes the feed read the time from now instead of time.Now, for
// tests.
func WithClock(now func() time.Time) StorageFeedOption {
	return func(f *StorageFeed) { f.now = now }
}

// WithSkew sets how far apart the clocks of the instances sharing the feed
// may be (2 s by default). A larger skew keeps followers listing a slot
// longer after it ends, and makes CaughtUp trail the clock further.
func WithSkew(d time.Duration) StorageFeedOption {
	return func(f *StorageFeed) {
		if d >= 0 {
			f.skew = d
		}
	}
}

const (
	// feedSlot is the time each slot folder covers. Longer slots mean fewer
	// rollovers (each costs a few extra listings) but longer listings.
	feedSlot = 10 * time.Second
	// feedTick is the pause between a follower's listings.
	feedTick = time.Second
	// feedWriteBudget is how long a write may take before Publish writes
	// the payload again under the current time.
	feedWriteBudget = time.Second
	// feedRewriteFor bounds how long Publish keeps rewriting a payload
	// whose writes are slow; followers remember delivered ids for longer
	// (feedRemember), so every copy is recognised.
	feedRewriteFor = 20 * time.Second
	// feedRemember is how long, in slots, a follower remembers the ids it
	// delivered after it stops listing their slot.
	feedRemember = 6
	// feedMaxBackoff caps the pause between retries after storage errors.
	feedMaxBackoff = time.Second
	// feedMinRetention, with twice the skew, keeps Sweep away from the
	// slots healthy followers still list.
	feedMinRetention = time.Minute
	// feedClockStep is how far the clock must go back for Publish to stop
	// naming one publisher's files in order.
	feedClockStep = 100 * time.Millisecond
	// defaultFeedSkew is the clock difference tolerated unless WithSkew
	// says otherwise.
	defaultFeedSkew = 2 * time.Second
)

// errFeedSlow is returned by Publish when the storage kept taking longer
// than feedWriteBudget to write.
var errFeedSlow = errors.New("session: the feed's storage is too slow to write to")

// NewStorageFeed returns a Feed kept under prefix in st, whose events stay
// readable for retention until Sweep removes them. The retention is at
// least a minute and twice the skew, so that Sweep never removes a slot that
// followers still list.
func NewStorageFeed(st certmagic.Storage, prefix string, retention time.Duration, opts ...StorageFeedOption) *StorageFeed {
	f := &StorageFeed{
		storage:   st,
		prefix:    path.Clean(prefix),
		retention: retention,
		now:       time.Now,
		skew:      defaultFeedSkew,
	}
	for _, opt := range opts {
		opt(f)
	}
	f.retention = max(f.retention, feedMinRetention+2*f.skew)
	return f
}

// late is how long after its name's time a file may appear to a follower:
// the writer's clock may be behind by the skew, and a write may take
// feedWriteBudget.
func (f *StorageFeed) late() time.Duration { return f.skew + feedWriteBudget }

// Publish implements Feed. It returns once the payload's file is stored,
// and writes it again if storing took so long that followers may have
// stopped listing its slot; after 20 s of such slow writes it fails.
func (f *StorageFeed) Publish(ctx context.Context, payload []byte) error {
	var idb [8]byte
	_, _ = rand.Read(idb[:]) // never fails
	id := hex.EncodeToString(idb[:])
	start := f.now()
	for {
		at := f.nextTime()
		if err := f.storage.Store(ctx, f.fileKey(at, id), payload); err != nil {
			return fmt.Errorf("session: publishing to the feed: %w", err)
		}
		now := f.now()
		if now.UnixNano()-at <= int64(feedWriteBudget) {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if now.Sub(start) > feedRewriteFor {
			return errFeedSlow
		}
	}
}

// nextTime is the time for a new file's name: now, or just after the last
// name this feed used if the clock has not moved on, so one publisher's
// files sort in order. If the clock was set back it is now all the same,
// since names ahead of the clock would wait until followers reach them.
func (f *StorageFeed) nextTime() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now().UnixNano()
	if now < f.last-int64(feedClockStep) {
		f.last = now
	} else {
		f.last = max(now, f.last+1)
	}
	return f.last
}

// Sweep removes the slot folders that ended more than the retention before
// now, and reports how many it removed. It lists the prefix once and makes
// one Delete per old slot; run it on one instance at a time.
func (f *StorageFeed) Sweep(ctx context.Context, now time.Time) (int, error) {
	keys, err := f.storage.List(ctx, f.prefix, false)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("session: listing the feed: %w", err)
	}
	oldest := slotOf(now.Add(-f.retention).UnixNano()) // the first slot to keep
	removed := 0
	for _, key := range keys {
		slot, ok := parseSlot(path.Base(key))
		if !ok || slot >= oldest {
			continue
		}
		err := f.storage.Delete(ctx, f.slotKey(slot))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return removed, fmt.Errorf("session: sweeping the feed: %w", err)
		}
		removed++
	}
	return removed, nil
}

// Follow implements Feed. It delivers the payloads published after it
// starts, and those whose writer's clock read at most the skew before that:
// it may deliver a few published up to the skew (2 s) before it started.
// After each complete listing it reports CaughtUp(at), with at the
// listing's start minus the skew, since a writer whose clock runs ahead
// names its file for a slot not listed yet: at trails the clock by the skew
// plus up to a second. Storage errors are reported with Lost and retried
// after 100 ms, doubling up to a second. Gap is reported when files it
// delivered were removed, when it fell behind past the retention, or when
// the clock went back past the slots it lists; it then follows on from now.
func (f *StorageFeed) Follow(ctx context.Context, fl Follower) {
	st := f.newFollow(f.now())
	var backoff time.Duration
	for {
		wait := feedTick
		if err := st.poll(ctx, fl); err != nil {
			if ctx.Err() != nil {
				return
			}
			fl.Lost(err)
			backoff = min(max(2*backoff, 100*time.Millisecond), feedMaxBackoff)
			wait = backoff
		} else {
			backoff = 0
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// feedFollow is one follower's position in a StorageFeed.
type feedFollow struct {
	f *StorageFeed
	// from is the earliest file time delivered, in Unix nanoseconds.
	from int64
	// next is the oldest slot still listed; every slot from next to the
	// current one is listed at each poll.
	next int64
	// seen holds the names delivered per slot, for slots still listed and
	// the feedRemember slots before them.
	seen map[int64]map[string]struct{}
	// ids holds the ids of the names in seen, to drop rewritten copies,
	// which have a new time and maybe a later slot.
	ids map[string]struct{}
}

func (f *StorageFeed) newFollow(now time.Time) *feedFollow {
	st := &feedFollow{f: f}
	st.reset(now)
	return st
}

// reset starts following afresh at now.
func (st *feedFollow) reset(now time.Time) {
	st.from = now.Add(-st.f.skew).UnixNano()
	st.next = slotOf(st.from)
	st.seen = make(map[int64]map[string]struct{})
	st.ids = make(map[string]struct{})
}

// feedFile is a listed file not delivered yet.
type feedFile struct {
	slot int64
	time int64
	name string
	id   string
}

// poll lists every open slot, delivers what is new, reports CaughtUp and
// closes the slots that no file can appear in any more.
func (st *feedFollow) poll(ctx context.Context, fl Follower) error {
	f := st.f
	now := f.now()
	cur := slotOf(now.UnixNano())
	// A slot that may be swept, or a clock that went back past the open
	// slots, leaves no way to know what was missed.
	if cur < st.next || slotEnd(st.next) < now.Add(f.skew+feedSlot-f.retention).UnixNano() {
		fl.Gap()
		st.reset(now)
		cur = slotOf(now.UnixNano())
	}

	// Newest slot first: if one publisher's later file is listed, its
	// earlier one, stored before, is seen by the listing of its older slot
	// that follows.
	var fresh []feedFile
	gapped := false
	gap := func() { // once a poll
		if !gapped {
			gapped = true
			fl.Gap()
		}
	}
	for slot := cur; slot >= st.next; slot-- {
		keys, err := f.storage.List(ctx, f.slotKey(slot), false)
		if errors.Is(err, fs.ErrNotExist) {
			keys, err = nil, nil // nothing written to this slot yet
		}
		if err != nil {
			return fmt.Errorf("session: listing the feed: %w", err)
		}
		listed := make(map[string]struct{}, len(keys))
		for _, key := range keys {
			name := path.Base(key)
			t, id, ok := parseFileName(name)
			if !ok || slotOf(t) != slot {
				continue // not ours, or a temporary file of a write under way
			}
			listed[name] = struct{}{}
			if _, dup := st.ids[id]; dup || t < st.from {
				continue
			}
			fresh = append(fresh, feedFile{slot: slot, time: t, name: name, id: id})
		}
		for name := range st.seen[slot] {
			if _, ok := listed[name]; !ok {
				// Deleted under us: what else went with it is unknown.
				gap()
				delete(st.seen[slot], name)
			}
		}
	}

	slices.SortFunc(fresh, func(a, b feedFile) int {
		if c := a.time - b.time; c != 0 {
			return int(min(max(c, -1), 1))
		}
		return strings.Compare(a.id, b.id)
	})
	for _, file := range fresh {
		if _, dup := st.ids[file.id]; dup {
			continue // two copies in one listing
		}
		payload, err := f.storage.Load(ctx, path.Join(f.slotKey(file.slot), file.name))
		if errors.Is(err, fs.ErrNotExist) {
			gap()
			continue
		}
		if err != nil {
			return fmt.Errorf("session: reading the feed: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		fl.Deliver(payload)
		if st.seen[file.slot] == nil {
			st.seen[file.slot] = make(map[string]struct{})
		}
		st.seen[file.slot][file.name] = struct{}{}
		st.ids[file.id] = struct{}{}
	}
	// Only a writer's clock running ahead can put a file stored before
	// now-skew in a slot not listed yet; a late file's slot is listed until
	// it cannot appear any more.
	fl.CaughtUp(now.Add(-f.skew))

	// A slot is closed once a listing that started late enough has seen
	// every file that can appear in it.
	for st.next <= cur && now.UnixNano() >= slotEnd(st.next)+int64(f.late()) {
		st.next++
	}
	for slot, names := range st.seen {
		if slot < st.next-feedRemember {
			for name := range names {
				_, id, _ := parseFileName(name)
				delete(st.ids, id)
			}
			delete(st.seen, slot)
		}
	}
	return nil
}

// Slots are numbered from the Unix epoch, feedSlot apart; a slot's folder
// is named after its start in Unix seconds.

// slotOf is the slot of a time in Unix nanoseconds.
func slotOf(t int64) int64 {
	n := int64(feedSlot)
	s := t / n
	if t%n < 0 {
		s--
	}
	return s
}

// slotEnd is the end of slot in Unix nanoseconds.
func slotEnd(slot int64) int64 { return (slot + 1) * int64(feedSlot) }

func (f *StorageFeed) slotKey(slot int64) string {
	return path.Join(f.prefix, strconv.FormatInt(slot*int64(feedSlot/time.Second), 10))
}

func (f *StorageFeed) fileKey(t int64, id string) string {
	return path.Join(f.slotKey(slotOf(t)), fmt.Sprintf("%020d-%s", t, id))
}

// parseSlot reads a slot folder's name.
func parseSlot(name string) (int64, bool) {
	secs, err := strconv.ParseInt(name, 10, 64)
	per := int64(feedSlot / time.Second)
	if err != nil || strconv.FormatInt(secs, 10) != name || secs%per != 0 {
		return 0, false
	}
	return secs / per, true
}

// parseFileName reads a payload file's name: 20 digits of Unix nanoseconds,
// a dash, 16 lowercase hex digits of id.
func parseFileName(name string) (int64, string, bool) {
	if len(name) != 37 || name[20] != '-' {
		return 0, "", false
	}
	for _, c := range name[:20] {
		if c < '0' || c > '9' {
			return 0, "", false
		}
	}
	t, err := strconv.ParseInt(name[:20], 10, 64)
	if err != nil {
		return 0, "", false
	}
	id := name[21:]
	for _, c := range id {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return 0, "", false
		}
	}
	return t, id, true
}

// Interface guard.
var _ Feed = (*StorageFeed)(nil)
