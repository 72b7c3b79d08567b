package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Store commands are counted two ways, and the two are compared:
//
//   - INFO commandstats: every command the server ran, from every client,
//     including those a Lua script runs, less the ones this program sent
//     (counted here; its INFO and CLIENT LIST calls are serialized with the
//     snapshots, so the count is exact). Sound per instance only when one
//     instance is connected.
//   - MONITOR: every top-level command with the client's address. Each
//     instance connects to its own listening address of the one
//     redis-server (127.0.0.2, .3, .4; this program uses 127.0.0.1), and
//     CLIENT LIST, polled every 200 ms, maps each client address to the
//     address it connected to, so each command is attributed to the instance
//     that sent it. A connection opened and closed between two polls stays
//     unattributed and is reported as such, as is a source address shared
//     by two connections to different addresses. MONITOR does not show
//     commands flagged admin (CLIENT LIST itself) and shows those run by a
//     script as coming from "lua".

// ambiguous marks a client address seen on connections of two owners.
const ambiguous = -2

// harnessHost is the address this program's own Redis clients use.
const harnessHost = "127.0.0.1"

// instanceHost is the Redis address instance i connects to.
func instanceHost(i int) string { return fmt.Sprintf("127.0.0.%d", i+2) }

// redisWatch counts the store's commands.
type redisWatch struct {
	addr string // harnessHost:port
	c    *redis.Client

	mu   sync.Mutex     // serializes this program's commands with the counts
	sent map[string]int // commands this program sent, by name

	emu    sync.Mutex
	events []monEvent
	owner  map[string]int // client address -> instance, -1 for this program

	monConn net.Conn
	monLog  *bufio.Writer // every MONITOR line, when set; guarded by emu
}

type monEvent struct {
	at   time.Time
	addr string // client address, or "lua"
	cmd  string
}

func newRedisWatch(port int) *redisWatch {
	addr := net.JoinHostPort(harnessHost, strconv.Itoa(port))
	return &redisWatch{
		addr:  addr,
		c:     redis.NewClient(&redis.Options{Addr: addr, PoolSize: 1, MaxIdleConns: 1, ConnMaxIdleTime: -1}),
		sent:  map[string]int{},
		owner: map[string]int{},
	}
}

func (w *redisWatch) close() {
	if w.monConn != nil {
		w.monConn.Close()
	}
	w.c.Close()
	w.emu.Lock()
	if w.monLog != nil {
		_ = w.monLog.Flush()
	}
	w.emu.Unlock()
}

// ping waits until the server answers.
func (w *redisWatch) ping(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := w.c.Ping(ctx).Err()
		if err == nil {
			w.mu.Lock()
			w.sent["ping"]++
			w.mu.Unlock()
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("redis-server did not answer: %w", err)
		}
		time.Sleep(20 * time.Millisecond) // polling a server that is starting
	}
}

// cmdStats is a snapshot of INFO commandstats: calls by command, and this
// program's own commands up to the snapshot.
type cmdStats struct {
	at    time.Time
	calls map[string]int64
	own   map[string]int
}

func (w *redisWatch) stats(ctx context.Context) (cmdStats, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := cmdStats{at: time.Now(), calls: map[string]int64{}, own: map[string]int{}}
	for k, v := range w.sent {
		s.own[k] = v
	}
	info, err := w.c.Info(ctx, "commandstats").Result()
	w.sent["info"]++ // counted by the server after it answered: in the next snapshot
	if err != nil {
		return s, err
	}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		for _, f := range strings.Split(rest, ",") {
			if v, ok := strings.CutPrefix(f, "calls="); ok {
				n, _ := strconv.ParseInt(v, 10, 64)
				s.calls[strings.TrimPrefix(name, "cmdstat_")] = n
			}
		}
	}
	return s, nil
}

// statsDelta is what others sent between two snapshots, by command.
func statsDelta(a, b cmdStats) map[string]int64 {
	out := map[string]int64{}
	for k, v := range b.calls {
		if d := v - a.calls[k]; d > 0 {
			out[k] = d
		}
	}
	for k, v := range b.own {
		// commandstats names subcommands "client|list".
		name := k
		if name == "client list" {
			name = "client|list"
		}
		if d := int64(v - a.own[k]); d > 0 {
			out[name] -= d
			if out[name] <= 0 {
				delete(out, name)
			}
		}
	}
	return out
}

// monitor starts MONITOR and the CLIENT LIST poll; both run until ctx ends.
func (w *redisWatch) monitor(ctx context.Context) error {
	conn, err := net.Dial("tcp", w.addr)
	if err != nil {
		return err
	}
	w.monConn = conn
	if _, err := conn.Write([]byte("*1\r\n$7\r\nMONITOR\r\n")); err != nil {
		return err
	}
	r := bufio.NewReaderSize(conn, 1<<16)
	if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "+OK") {
		return fmt.Errorf("MONITOR: %q %v", line, err)
	}
	go func() {
		<-ctx.Done()
		conn.Close()
	}()
	go func() {
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			w.emu.Lock()
			if w.monLog != nil {
				_, _ = w.monLog.WriteString(line)
			}
			if ev, ok := parseMonitor(line); ok {
				w.events = append(w.events, ev)
			}
			w.emu.Unlock()
		}
	}()
	go func() {
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			w.pollClients(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return nil
}

// pollClients maps the connected clients' addresses to instances.
func (w *redisWatch) pollClients(ctx context.Context) {
	w.mu.Lock()
	list, err := w.c.ClientList(ctx).Result()
	w.sent["client list"]++
	w.mu.Unlock()
	if err != nil {
		return
	}
	w.emu.Lock()
	defer w.emu.Unlock()
	for _, line := range strings.Split(list, "\n") {
		var addr, laddr string
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "addr="); ok {
				addr = v
			} else if v, ok := strings.CutPrefix(f, "laddr="); ok {
				laddr = v
			}
		}
		host, _, err := net.SplitHostPort(laddr)
		if addr == "" || err != nil {
			continue
		}
		owner := -1
		for i := range 3 {
			if host == instanceHost(i) {
				owner = i
			}
		}
		if prev, ok := w.owner[addr]; ok && prev != owner {
			// The kernel may give two connections to different addresses
			// the same source port: MONITOR cannot tell them apart.
			owner = ambiguous
		}
		w.owner[addr] = owner
	}
}

// parseMonitor reads `+1700000000.123456 [0 127.0.0.1:5555] "get" "k"`.
func parseMonitor(line string) (monEvent, bool) {
	line = strings.TrimPrefix(strings.TrimSpace(line), "+")
	ts, rest, ok := strings.Cut(line, " [")
	if !ok {
		return monEvent{}, false
	}
	inside, args, ok := strings.Cut(rest, "] ")
	if !ok {
		return monEvent{}, false
	}
	f, err := strconv.ParseFloat(ts, 64)
	if err != nil {
		return monEvent{}, false
	}
	_, addr, _ := strings.Cut(inside, " ")
	words := strings.SplitN(args, " ", 3)
	cmd := strings.ToLower(strings.Trim(words[0], `"`))
	switch cmd {
	case "client", "xinfo", "script", "cluster", "config", "object":
		if len(words) > 1 {
			cmd += " " + strings.ToLower(strings.Trim(words[1], `"`))
		}
	}
	sec := int64(f)
	return monEvent{at: time.Unix(sec, int64((f-float64(sec))*1e9)), addr: addr, cmd: cmd}, true
}

// monCounts is MONITOR's view of a window: commands per instance and name.
type monCounts struct {
	perInst    [3]map[string]int
	lua        int // run by scripts
	harness    int
	unassigned int // from clients no CLIENT LIST poll saw, or ambiguous
}

func (w *redisWatch) counts(from, to time.Time) monCounts {
	w.emu.Lock()
	defer w.emu.Unlock()
	var c monCounts
	for i := range c.perInst {
		c.perInst[i] = map[string]int{}
	}
	for _, ev := range w.events {
		if ev.at.Before(from) || !ev.at.Before(to) {
			continue
		}
		if ev.addr == "lua" {
			c.lua++
			continue
		}
		owner, ok := w.owner[ev.addr]
		switch {
		case !ok || owner == ambiguous:
			c.unassigned++
		case owner < 0:
			c.harness++
		default:
			c.perInst[owner][ev.cmd]++
		}
	}
	return c
}

func total[K comparable, V int | int64](m map[K]V) V {
	var n V
	for _, v := range m {
		n += v
	}
	return n
}

// byName renders counts as "name n, name n" in falling order, per second
// when secs > 0.
func byName[V int | int64](m map[string]V, secs float64) string {
	type kv struct {
		k string
		v V
	}
	var s []kv
	for k, v := range m {
		s = append(s, kv{k, v})
	}
	sort.Slice(s, func(i, j int) bool { return s[i].v > s[j].v || s[i].v == s[j].v && s[i].k < s[j].k })
	var parts []string
	for _, x := range s {
		if secs > 0 {
			parts = append(parts, fmt.Sprintf("%s %.2f/s", x.k, float64(x.v)/secs))
		} else {
			parts = append(parts, fmt.Sprintf("%s %d", x.k, x.v))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
