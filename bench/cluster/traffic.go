package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// user is one logged-in user of the run.
type user struct {
	// mu is held by a refresh or a logout of the user, so a refresh never
	// races the logout that retires it.
	mu      sync.Mutex
	tok     atomic.Pointer[string]
	retired atomic.Bool // logged out, or being logged out
}

// ghost is a logged-out token and when its logout answered 204.
type ghost struct {
	tok  string
	at   time.Time
	inst int // the instance that answered the logout
}

// population is the run's users and logged-out tokens.
type population struct {
	mu     sync.RWMutex
	users  []*user
	ghosts []ghost
	seq    atomic.Int64 // names new wxmock users
}

func (p *population) add(u *user) {
	p.mu.Lock()
	p.users = append(p.users, u)
	p.mu.Unlock()
}

func (p *population) live() []*user {
	p.mu.RLock()
	defer p.mu.RUnlock()
	out := make([]*user, 0, len(p.users))
	for _, u := range p.users {
		if !u.retired.Load() {
			out = append(out, u)
		}
	}
	return out
}

func (p *population) pick(rng *rand.Rand) *user {
	p.mu.RLock()
	defer p.mu.RUnlock()
	for range 16 {
		if u := p.users[rng.IntN(len(p.users))]; !u.retired.Load() {
			return u
		}
	}
	return nil
}

func (p *population) pickGhost(rng *rand.Rand) (ghost, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if len(p.ghosts) == 0 {
		return ghost{}, false
	}
	return p.ghosts[rng.IntN(len(p.ghosts))], true
}

// client is the run's HTTP side: the instances' base URLs and wxmock's.
type client struct {
	hc    *http.Client
	insts []string
	mock  string
}

func newClient(insts []string, mock string, conns int) *client {
	return &client{
		hc: &http.Client{
			Timeout:   5 * time.Second,
			Transport: &http.Transport{MaxIdleConns: 4 * conns, MaxIdleConnsPerHost: conns, IdleConnTimeout: time.Minute},
		},
		insts: insts,
		mock:  mock,
	}
}

// get is a protected GET with tok on instance i; it returns the status.
func (c *client) get(ctx context.Context, i int, tok string) (int, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.insts[i]+"/api/me", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// post sends body (JSON) to path on instance i, with tok when set, and
// decodes a token from a 200 answer.
func (c *client) post(ctx context.Context, i int, path, tok, body string) (int, string, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.insts[i]+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var r struct{ Token string }
	if resp.StatusCode == http.StatusOK {
		if json.Unmarshal(b, &r) != nil || r.Token == "" {
			return resp.StatusCode, "", fmt.Errorf("200 without a token")
		}
	}
	return resp.StatusCode, r.Token, nil
}

// login logs a new wxmock user in on instance i.
func (c *client) login(ctx context.Context, p *population, i int) (*user, error) {
	name := fmt.Sprintf("cluster%d", p.seq.Add(1))
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.mock+"/wxmock/login?user="+name, nil)
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	var r struct{ Code string }
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &r) != nil || r.Code == "" {
		return nil, fmt.Errorf("wxmock login: %d", resp.StatusCode)
	}
	st, tok, err := c.post(ctx, i, "/wx/login", "", `{"code":"`+r.Code+`"}`)
	if err != nil {
		return nil, err
	}
	if st != http.StatusOK {
		return nil, fmt.Errorf("login: status %d", st)
	}
	u := &user{}
	u.tok.Store(&tok)
	return u, nil
}

// each runs fn(k) for every k in [0, n), conc at a time, and returns the
// first error; no new work starts after an error or once ctx ends.
func each(ctx context.Context, n, conc int, fn func(k int) error) error {
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		errMu sync.Mutex
		first error
	)
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k := int(next.Add(1)) - 1
				if k >= n || ctx.Err() != nil {
					return
				}
				if err := fn(k); err != nil {
					errMu.Lock()
					if first == nil {
						first = err
					}
					errMu.Unlock()
					next.Store(int64(n))
					return
				}
			}
		}()
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// loginMany logs n users in, spread over the instances in on, with conc at
// a time.
func (c *client) loginMany(ctx context.Context, p *population, n, conc int, on []int) error {
	return each(ctx, n, conc, func(k int) error {
		u, err := c.login(ctx, p, on[k%len(on)])
		if err == nil {
			p.add(u)
		}
		return err
	})
}

// warm uses each live token once on each instance in on, so every instance
// has it cached; every answer must be 200.
func (c *client) warm(ctx context.Context, p *population, conc int, on []int) error {
	users := p.live()
	var bad atomic.Int64
	err := each(ctx, len(users), conc, func(k int) error {
		for _, i := range on {
			if st, err := c.get(ctx, i, *users[k].tok.Load()); err != nil || st != http.StatusOK {
				bad.Add(1)
			}
		}
		return nil
	})
	if n := bad.Load(); n > 0 {
		return fmt.Errorf("%d warm-up requests did not answer 200", n)
	}
	return err
}

// mix is the share of each kind of operation in the traffic.
type mix struct {
	refresh float64 // POST /wx/refresh of a live user, who keeps the new token
	ghost   float64 // a protected GET with a logged-out token
}

// tally counts the traffic's answers.
type tally struct {
	mu        sync.Mutex
	ok        int // live token, 200
	refreshed int
	lat       []time.Duration // protected GETs with a live token
	// unexpected answers: a live token refused, a transport error...
	unexpected map[string]int
	// ghostEarly: a logged-out token served 200 within the bound;
	// ghostRefused: answered 401; violations: served 200 past the bound,
	// or by the instance that answered the logout.
	ghostEarly, ghostRefused int
	violations               []string
}

func newTally() *tally { return &tally{unexpected: map[string]int{}} }

func (t *tally) odd(what string) {
	t.mu.Lock()
	t.unexpected[what]++
	t.mu.Unlock()
}

// judgeGhost records the answer st to a logged-out token sent at sent
// to instance i.
func (t *tally) judgeGhost(g ghost, i int, sent time.Time, st int, bound time.Duration, where string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case st == http.StatusUnauthorized:
		t.ghostRefused++
	case st == http.StatusOK && (i == g.inst || sent.Sub(g.at) > bound):
		t.violations = append(t.violations, fmt.Sprintf("%s: instance %d served a token logged out on instance %d %v before the request",
			where, i+1, g.inst+1, sent.Sub(g.at).Round(time.Millisecond)))
	case st == http.StatusOK:
		t.ghostEarly++
	default:
		t.unexpected[fmt.Sprintf("logged-out token answered %d", st)]++
	}
}

// drive sends traffic at about rate operations a second with conc workers
// until ctx ends or stop is closed, spread over the instances in on.
func (c *client) drive(ctx context.Context, p *population, t *tally, m mix, rate float64, conc int, on []int, bound time.Duration) (sent int64) {
	tickets := make(chan struct{}, conc)
	var wg sync.WaitGroup
	var count atomic.Int64
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w)+1, uint64(time.Now().UnixNano())))
			for range tickets {
				count.Add(1)
				c.op(ctx, p, t, m, rng, on[rng.IntN(len(on))], bound)
			}
		}()
	}
	// Tickets at the rate, in 10 ms batches; a ticket no worker is free
	// for is dropped, so a slow server lowers the rate, not the pace.
	tick := time.NewTicker(10 * time.Millisecond)
	owed := 0.0
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
			owed += rate / 100
			for ; owed >= 1; owed-- {
				select {
				case tickets <- struct{}{}:
				default:
				}
			}
		}
	}
	tick.Stop()
	close(tickets)
	wg.Wait()
	return count.Load()
}

// op is one operation of the traffic.
func (c *client) op(ctx context.Context, p *population, t *tally, m mix, rng *rand.Rand, i int, bound time.Duration) {
	r := rng.Float64()
	switch {
	case r < m.refresh:
		u := p.pick(rng)
		if u == nil || !u.mu.TryLock() {
			return
		}
		defer u.mu.Unlock()
		if u.retired.Load() {
			return
		}
		st, tok, err := c.post(ctx, i, "/wx/refresh", *u.tok.Load(), "")
		switch {
		case ctx.Err() != nil:
		case err != nil:
			t.odd("refresh: " + err.Error())
		case st != http.StatusOK:
			t.odd(fmt.Sprintf("refresh of a live token answered %d", st))
		default:
			u.tok.Store(&tok)
			t.mu.Lock()
			t.refreshed++
			t.mu.Unlock()
		}
	case r < m.refresh+m.ghost:
		g, ok := p.pickGhost(rng)
		if !ok {
			return
		}
		sent := time.Now()
		st, err := c.get(ctx, i, g.tok)
		if err != nil {
			if ctx.Err() == nil {
				t.odd("get: " + err.Error())
			}
			return
		}
		t.judgeGhost(g, i, sent, st, bound, "traffic")
	default:
		u := p.pick(rng)
		if u == nil {
			return
		}
		t0 := time.Now()
		st, err := c.get(ctx, i, *u.tok.Load())
		d := time.Since(t0)
		switch {
		case err != nil:
			if ctx.Err() == nil {
				t.odd("get: " + err.Error())
			}
		case st == http.StatusOK:
			t.mu.Lock()
			t.ok++
			t.lat = append(t.lat, d)
			t.mu.Unlock()
		case u.retired.Load():
			// Retired while the request was on its way: judged as a ghost
			// by the logout's own polls.
		default:
			t.odd(fmt.Sprintf("live token answered %d", st))
		}
	}
}

// pct is the p-th percentile of sorted durations.
func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p/100+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func sortedCopy(d []time.Duration) []time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s
}
