// Command cluster is the cluster benchmark of caddy-wxauth: one real
// redis-server, three Caddy instances with wxauth `store redis` and a
// fourth Caddy running wxmock, all on loopback ports chosen at run time.
//
// It logs a few thousand users in, then measures:
//
//  1. steady state: protected requests only, every token cached on every
//     instance; store commands per second per instance (see redis.go for
//     how commands are attributed to instances);
//  2. mixed traffic: protected requests spread over the instances,
//     refreshes, a few new logins, requests with logged-out tokens, and
//     logouts during the run. For each logout, the time from its 204 on one
//     instance until each other instance answers 401 (polled every 5 ms);
//     no request with a logged-out token may get 200 past the bound, nor
//     any on the instance that logged it out;
//  3. one instance alone with 10,000 cached tokens in use: store commands
//     per second at steady state, from INFO commandstats (only that
//     instance is connected) and from MONITOR.
//
// Every phase is bounded in time and requests; the program stops what it
// started, by PID, and exits 1 when a check failed.
//
//	cluster -caddy ./caddy -dir /tmp/run
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Fixed identities of the run: wxmock accepts this app.
const (
	appID     = "wxcluster0123456"
	appSecret = "cluster-bench-secret"
)

type config struct {
	caddy, redis, dir string
	users             int
	quiet, mixed      time.Duration
	single            int
	logouts           int
	rate              float64
	conns             int
	loginRate         float64
	bound             time.Duration
	poll              time.Duration
	timeout           time.Duration
}

func main() {
	var cfg config
	flag.StringVar(&cfg.caddy, "caddy", "", "Caddy binary built with wxauth and wxmock (go build ./cmd/caddy)")
	flag.StringVar(&cfg.redis, "redis-server", "redis-server", "redis-server binary")
	flag.StringVar(&cfg.dir, "dir", "", "folder for the configs, logs and storage (default: a new temporary one)")
	flag.IntVar(&cfg.users, "users", 3000, "users logged in before the measurements")
	flag.DurationVar(&cfg.quiet, "quiet", 10*time.Second, "length of each steady-state window")
	flag.DurationVar(&cfg.mixed, "mixed", 30*time.Second, "length of the mixed-traffic phase")
	flag.IntVar(&cfg.logouts, "logouts", 100, "logouts during the mixed phase, evenly spread")
	flag.IntVar(&cfg.single, "single", 10000, "tokens cached on the one instance of the last phase (0: skip it)")
	flag.Float64Var(&cfg.rate, "rate", 1500, "operations per second of the traffic")
	flag.IntVar(&cfg.conns, "conns", 24, "concurrent clients of the traffic")
	flag.Float64Var(&cfg.loginRate, "login-rate", 5, "new logins per second during the mixed phase")
	flag.DurationVar(&cfg.bound, "bound", time.Second, "the change bound: a logout must be applied everywhere within it")
	flag.DurationVar(&cfg.poll, "poll", 5*time.Millisecond, "how often each other instance is polled after a logout")
	flag.DurationVar(&cfg.timeout, "timeout", 10*time.Minute, "the whole run's limit")
	flag.Parse()
	if cfg.caddy == "" {
		fmt.Fprintln(os.Stderr, "cluster: -caddy is required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	failed, err := run(ctx, cfg)
	cancel()
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		os.Exit(1)
	}
	if failed {
		fmt.Println("RESULT: FAILED (see above)")
		os.Exit(1)
	}
	fmt.Println("RESULT: all checks passed")
}

// run is the whole benchmark; it reports whether a check failed.
func run(ctx context.Context, cfg config) (failed bool, err error) {
	caddyBin, err := exec.LookPath(cfg.caddy)
	if err != nil {
		return false, err
	}
	if caddyBin, err = filepath.Abs(caddyBin); err != nil {
		return false, err
	}
	redisBin, err := exec.LookPath(cfg.redis)
	if err != nil {
		return false, fmt.Errorf("redis-server is needed: %w", err)
	}
	if cfg.dir == "" {
		if cfg.dir, err = os.MkdirTemp("", "wxauth-cluster-"); err != nil {
			return false, err
		}
		defer os.RemoveAll(cfg.dir)
	} else if err := os.MkdirAll(cfg.dir, 0o755); err != nil {
		return false, err
	}

	var procs []*proc
	defer func() {
		for _, p := range slices.Backward(procs) {
			p.stop()
		}
	}()

	ports, err := freePorts(5)
	if err != nil {
		return false, err
	}
	redisPort, mockPort, instPorts := ports[0], ports[1], ports[2:5]

	// One redis-server listening on four loopback addresses: this
	// program's and one per instance, which is how its commands are told
	// apart. No persistence: the run starts from an empty store.
	rp, err := start(cfg.dir, "redis", redisBin,
		"--port", strconv.Itoa(redisPort),
		"--bind", harnessHost+" "+instanceHost(0)+" "+instanceHost(1)+" "+instanceHost(2),
		"--save", "", "--appendonly", "no", "--dir", cfg.dir)
	if err != nil {
		return false, err
	}
	procs = append(procs, rp)
	monLog, err := os.Create(filepath.Join(cfg.dir, "monitor.log"))
	if err != nil {
		return false, err
	}
	defer monLog.Close()
	watch := newRedisWatch(redisPort)
	watch.monLog = bufio.NewWriterSize(monLog, 1<<16)
	defer watch.close()
	if err := watch.ping(ctx, 10*time.Second); err != nil {
		return false, err
	}
	if err := watch.monitor(ctx); err != nil {
		return false, err
	}

	mockURL := fmt.Sprintf("http://127.0.0.1:%d", mockPort)
	mp, err := startCaddy(cfg.dir, "wxmock", caddyBin, mockCaddyfile(cfg.dir, mockPort))
	if err != nil {
		return false, err
	}
	procs = append(procs, mp)
	var insts []string
	var instProcs []*proc
	for i, port := range instPorts {
		p, err := startCaddy(cfg.dir, fmt.Sprintf("caddy%d", i+1), caddyBin, instanceCaddyfile(cfg.dir, i, port, mockPort, redisPort))
		if err != nil {
			return false, err
		}
		procs = append(procs, p)
		instProcs = append(instProcs, p)
		insts = append(insts, fmt.Sprintf("http://127.0.0.1:%d", port))
	}
	c := newClient(insts, mockURL, cfg.conns)
	if err := waitStatus(ctx, c.hc, mp, mockURL+"/wxmock/login?user=probe", http.StatusOK, 30*time.Second); err != nil {
		return false, err
	}
	for i, u := range insts {
		// A protected path without a token: 401 once wxauth runs.
		if err := waitStatus(ctx, c.hc, instProcs[i], u+"/api/me", http.StatusUnauthorized, 30*time.Second); err != nil {
			return false, err
		}
	}
	fmt.Printf("machine: %d CPUs; redis-server on 127.0.0.1:%d, instances %v, wxmock %s\n", runtime.NumCPU(), redisPort, insts, mockURL)

	all := []int{0, 1, 2}
	pop := &population{}
	stopped := map[*proc]bool{} // stopped on purpose

	// Logins, spread over the instances, then every token on every instance.
	t0 := time.Now()
	if err := c.loginMany(ctx, pop, cfg.users, 16, all); err != nil {
		return false, fmt.Errorf("logging users in: %w", err)
	}
	fmt.Printf("logins: %d users logged in over 3 instances in %v\n", cfg.users, time.Since(t0).Round(time.Millisecond))
	t0 = time.Now()
	if err := c.warm(ctx, pop, 16, all); err != nil {
		return false, err
	}
	fmt.Printf("warm-up: each token used once on each instance (%d requests) in %v\n", 3*cfg.users, time.Since(t0).Round(time.Millisecond))

	// 1. Steady state on three instances.
	fmt.Printf("\n== steady state: 3 instances, %d cached tokens each, protected requests only\n", cfg.users)
	tq := newTally()
	if err := steady(ctx, cfg, c, pop, tq, watch, all); err != nil {
		return false, err
	}
	failed = report(tq, nil) || failed

	// 2. Mixed traffic with logouts.
	fmt.Printf("\n== mixed traffic for %v: %.0f operations/s (2%% refreshes, 5%% with logged-out tokens), %.0f logins/s, %d logouts\n",
		cfg.mixed, cfg.rate, cfg.loginRate, cfg.logouts)
	tm := newTally()
	prop, err := mixed(ctx, cfg, c, pop, tm, watch)
	if err != nil {
		return false, err
	}
	failed = report(tm, prop) || failed

	// 3. One instance with many cached tokens.
	if cfg.single > 0 {
		fmt.Printf("\n== steady state: instance 1 alone, %d cached tokens in use\n", cfg.single)
		for _, p := range instProcs[1:] {
			p.stop()
			stopped[p] = true
		}
		n := len(pop.live())
		if n < cfg.single {
			t0 := time.Now()
			if err := c.loginMany(ctx, pop, cfg.single-n, 16, []int{0}); err != nil {
				return failed, fmt.Errorf("logging users in: %w", err)
			}
			fmt.Printf("logins: %d more users logged in on instance 1 in %v\n", cfg.single-n, time.Since(t0).Round(time.Millisecond))
		}
		if err := c.warm(ctx, pop, 16, []int{0}); err != nil {
			return failed, err
		}
		ts := newTally()
		if err := steady(ctx, cfg, c, pop, ts, watch, []int{0}); err != nil {
			return failed, err
		}
		failed = report(ts, nil) || failed
	}
	for _, p := range procs {
		if p.exited() && !stopped[p] {
			fmt.Printf("check: %s exited during the run\n", p.name)
			failed = true
		}
	}
	return failed, nil
}

// steady runs protected requests over every live token on the instances
// in on, and counts the store's commands over a window in the middle.
func steady(ctx context.Context, cfg config, c *client, pop *population, t *tally, watch *redisWatch, on []int) error {
	live := len(pop.live())
	dctx, cancel := context.WithCancel(ctx)
	var sent int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sent = c.drive(dctx, pop, t, mix{}, cfg.rate, cfg.conns, on, cfg.bound)
	}()
	// Let the pace settle before the window opens.
	sleep(ctx, 2*time.Second)
	a, err := watch.stats(ctx)
	if err != nil {
		cancel()
		wg.Wait()
		return err
	}
	sleep(ctx, cfg.quiet)
	b, err := watch.stats(ctx)
	cancel()
	wg.Wait()
	if err != nil {
		return err
	}
	secs := b.at.Sub(a.at).Seconds()
	fmt.Printf("traffic: %d requests in %.1f s over %d live tokens (%.0f/s)\n", sent, secs+2, live, float64(sent)/(secs+2))
	printCommands(watch, a, b, on)
	return ctx.Err()
}

// printCommands reports the store's commands between two snapshots.
func printCommands(watch *redisWatch, a, b cmdStats, on []int) {
	secs := b.at.Sub(a.at).Seconds()
	d := statsDelta(a, b)
	fmt.Printf("store commands, INFO commandstats over %.1f s (all clients but this program; script calls included): %.2f/s: %s\n",
		secs, float64(total(d))/secs, byName(d, secs))
	m := watch.counts(a.at, b.at)
	for _, i := range on {
		fmt.Printf("store commands, MONITOR, instance %d: %.2f/s: %s\n", i+1, float64(total(m.perInst[i]))/secs, byName(m.perInst[i], secs))
	}
	fmt.Printf("store commands, MONITOR, not attributed: %d run by scripts, %d from connections no poll saw or shared by two (this program's own: %d)\n",
		m.lua, m.unassigned, m.harness)
}

// mixed runs the mixed traffic, new logins and the logouts, and returns
// the propagation times.
func mixed(ctx context.Context, cfg config, c *client, pop *population, t *tally, watch *redisWatch) (*propagation, error) {
	mctx, cancel := context.WithTimeout(ctx, cfg.mixed)
	defer cancel()
	a, err := watch.stats(ctx)
	if err != nil {
		return nil, err
	}
	var wg sync.WaitGroup
	var sent int64
	wg.Add(3)
	go func() {
		defer wg.Done()
		sent = c.drive(mctx, pop, t, mix{refresh: 0.02, ghost: 0.05}, cfg.rate, cfg.conns, []int{0, 1, 2}, cfg.bound)
	}()
	var logins, loginFails int
	go func() {
		defer wg.Done()
		if cfg.loginRate <= 0 {
			return
		}
		tick := time.NewTicker(time.Duration(float64(time.Second) / cfg.loginRate))
		defer tick.Stop()
		for k := 0; ; k++ {
			select {
			case <-mctx.Done():
				return
			case <-tick.C:
			}
			u, err := c.login(mctx, pop, k%3)
			if err != nil {
				if mctx.Err() == nil {
					loginFails++
					t.odd("login: " + err.Error())
				}
				continue
			}
			pop.add(u)
			logins++
		}
	}()
	prop := &propagation{}
	go func() {
		defer wg.Done()
		logoutLoop(mctx, cfg, c, pop, t, prop)
	}()
	wg.Wait()
	b, err := watch.stats(ctx)
	if err != nil {
		return nil, err
	}
	secs := b.at.Sub(a.at).Seconds()
	fmt.Printf("traffic: %d operations in %.1f s (%.0f/s), %d refreshes, %d new logins (%d failed)\n",
		sent, secs, float64(sent)/secs, t.refreshed, logins, loginFails)
	printCommands(watch, a, b, []int{0, 1, 2})
	return prop, ctx.Err()
}

// propagation is what the logouts measured.
type propagation struct {
	mu        sync.Mutex
	done      int             // logouts answered 204
	lat       []time.Duration // 204 on one instance -> 401 on another, one per pair
	logoutLat []time.Duration // the logout request itself
	failures  []string
}

func (p *propagation) fail(s string) {
	p.mu.Lock()
	p.failures = append(p.failures, s)
	p.mu.Unlock()
}

// logoutLoop logs cfg.logouts users out, evenly spread over the phase, on
// the instances in turn, and times how long the others take to refuse.
func logoutLoop(ctx context.Context, cfg config, c *client, pop *population, t *tally, prop *propagation) {
	if cfg.logouts <= 0 {
		return
	}
	every := cfg.mixed / time.Duration(cfg.logouts+1)
	begin := time.Now()
	var wg sync.WaitGroup
	defer wg.Wait()
	rng := rand.New(rand.NewPCG(42, 42))
	for k := range cfg.logouts {
		if !sleepUntil(ctx, begin.Add(time.Duration(k+1)*every)) {
			return
		}
		var u *user
		for range 100 {
			if v := pop.pick(rng); v != nil && v.mu.TryLock() {
				if !v.retired.Load() {
					u = v
					break
				}
				v.mu.Unlock()
			}
		}
		if u == nil {
			prop.fail("no live user to log out")
			continue
		}
		u.retired.Store(true)
		tok := *u.tok.Load()
		u.mu.Unlock() // retired: no refresh picks it again
		x := k % 3
		// The token must be cached and accepted everywhere before: a first
		// use after the logout would read the store and prove nothing.
		pre := true
		for i := range 3 {
			if st, err := c.get(ctx, i, tok); err != nil || st != http.StatusOK {
				if ctx.Err() == nil {
					prop.fail(fmt.Sprintf("before logout %d: instance %d answered %d (%v)", k, i+1, st, err))
				}
				pre = false
			}
		}
		if !pre {
			continue
		}
		t0 := time.Now()
		st, _, err := c.post(ctx, x, "/wx/logout", tok, "")
		at := time.Now()
		if err != nil || st != http.StatusNoContent {
			if ctx.Err() == nil {
				prop.fail(fmt.Sprintf("logout %d on instance %d: %d %v", k, x+1, st, err))
			}
			continue
		}
		g := ghost{tok: tok, at: at, inst: x}
		prop.mu.Lock()
		prop.done++
		prop.logoutLat = append(prop.logoutLat, at.Sub(t0))
		prop.mu.Unlock()
		for i := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				pollRefusal(c, g, i, cfg, t, prop)
			}()
		}
		pop.mu.Lock()
		pop.ghosts = append(pop.ghosts, g)
		pop.mu.Unlock()
	}
}

// pollRefusal polls instance i with a logged-out token every cfg.poll
// until it answers 401, and records the time since the logout's 204 (on
// the instance that answered the logout, it must refuse at once). It runs
// on past the phase's end, within its own limit.
func pollRefusal(c *client, g ghost, i int, cfg config, t *tally, prop *propagation) {
	const limit = 5 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), limit+time.Second)
	defer cancel()
	for {
		sent := time.Now()
		st, err := c.get(ctx, i, g.tok)
		got := time.Now()
		if err != nil {
			prop.fail(fmt.Sprintf("polling instance %d: %v", i+1, err))
			return
		}
		t.judgeGhost(g, i, sent, st, cfg.bound, "poll")
		if st == http.StatusUnauthorized {
			if i != g.inst {
				prop.mu.Lock()
				prop.lat = append(prop.lat, got.Sub(g.at))
				prop.mu.Unlock()
			}
			return
		}
		if got.Sub(g.at) > limit {
			prop.fail(fmt.Sprintf("instance %d still answers %d %v after a logout on instance %d", i+1, st, limit, g.inst+1))
			return
		}
		sleepUntil(ctx, sent.Add(cfg.poll))
	}
}

// report prints a phase's tallies and propagation; it reports failure.
func report(t *tally, prop *propagation) (failed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	lat := sortedCopy(t.lat)
	fmt.Printf("protected requests with live tokens: %d answered 200 (latency p50 %v, p99 %v, max %v)\n",
		t.ok, pct(lat, 50).Round(time.Microsecond), pct(lat, 99).Round(time.Microsecond), pct(lat, 100).Round(time.Microsecond))
	for what, n := range t.unexpected {
		fmt.Printf("check: %d unexpected: %s\n", n, what)
		failed = true
	}
	if prop != nil {
		prop.mu.Lock()
		defer prop.mu.Unlock()
		l := sortedCopy(prop.lat)
		ll := sortedCopy(prop.logoutLat)
		fmt.Printf("logouts: %d answered 204 (the request itself: p50 %v, max %v)\n", prop.done,
			pct(ll, 50).Round(time.Microsecond), pct(ll, 100).Round(time.Microsecond))
		fmt.Printf("logout propagation, 204 on one instance -> 401 on another (%d pairs, polled every few ms): p50 %v, p99 %v, max %v\n",
			len(l), pct(l, 50).Round(time.Microsecond), pct(l, 99).Round(time.Microsecond), pct(l, 100).Round(time.Microsecond))
		if len(l) < 20 {
			fmt.Println("check: fewer than 20 propagation samples")
			failed = true
		}
		if len(l) > 0 && pct(l, 99) > time.Second {
			fmt.Println("check: propagation p99 over 1 s")
			failed = true
		}
		for _, f := range prop.failures {
			fmt.Println("check:", f)
			failed = true
		}
		fmt.Printf("logged-out tokens: %d requests refused, %d served within the bound, %d served after it or by the instance that logged out\n",
			t.ghostRefused, t.ghostEarly, len(t.violations))
	}
	for _, v := range t.violations {
		fmt.Println("check: VIOLATION:", v)
		failed = true
	}
	return failed
}

func sleep(ctx context.Context, d time.Duration) { sleepUntil(ctx, time.Now().Add(d)) }

// sleepUntil waits until at; false when ctx ended first.
func sleepUntil(ctx context.Context, at time.Time) bool {
	d := time.Until(at)
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// startCaddy writes a Caddyfile and runs Caddy on it.
func startCaddy(dir, name, bin, caddyfile string) (*proc, error) {
	path := filepath.Join(dir, name+".Caddyfile")
	if err := os.WriteFile(path, []byte(caddyfile), 0o644); err != nil {
		return nil, err
	}
	return start(dir, name, bin, "run", "--config", path, "--adapter", "caddyfile")
}

func globalOptions(dir, name string) string {
	return fmt.Sprintf(`{
	admin off
	persist_config off
	auto_https off
	default_bind 127.0.0.1
	grace_period 1s
	storage file_system %[1]s/storage-%[2]s
	log {
		output file %[1]s/%[2]s.caddy.log
		level WARN
	}
}
`, dir, name)
}

func mockCaddyfile(dir string, port int) string {
	return globalOptions(dir, "wxmock") + fmt.Sprintf(`http://:%d {
	wxmock {
		app_id %s
		app_secret %s
	}
}
`, port, appID, appSecret)
}

// instanceCaddyfile is instance i: wxauth with generated keys (shared in
// the store) and sessions in Redis, reached on the instance's own address.
func instanceCaddyfile(dir string, i, port, mockPort, redisPort int) string {
	return globalOptions(dir, fmt.Sprintf("caddy%d", i+1)) + fmt.Sprintf(`http://:%d {
	wxauth {
		app_id %s
		app_secret %s
		api_base http://127.0.0.1:%d
		store redis redis://%s:%d/0
	}
	respond "{http.auth.user.id}"
}
`, port, appID, appSecret, mockPort, instanceHost(i), redisPort)
}
