package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// sentinelTimeout bounds each wait of the sentinel helpers: the sentinel
// finding the replica, the replica catching up, a failover completing.
const sentinelTimeout = 30 * time.Second

// SentinelConfig configures StartSentinel.
type SentinelConfig struct {
	// Password, when set, is required by the master and the replica.
	Password string
	// SentinelPassword, when set, is required by the sentinel.
	SentinelPassword string
}

// Sentinel is a master, one replica and one sentinel watching them, all on
// free loopback ports and killed when the test ends.
type Sentinel struct {
	// MasterName is the name the sentinel monitors the master under.
	MasterName string
	// Addr is the sentinel's host:port.
	Addr string
	// Nodes are the host:port of the two data nodes, the first master at
	// the start.
	Nodes [2]string

	cfg SentinelConfig
}

// StartSentinel starts a master, a replica of it and a sentinel watching
// the master as "m" with short timeouts, and waits until the sentinel knows
// the replica, so that a failover can start at once. Without redis-server
// the test is skipped, or fails in CI.
func StartSentinel(t testing.TB, cfg SentinelConfig) *Sentinel {
	t.Helper()
	bin := lookPath(t)
	s := &Sentinel{MasterName: "m", cfg: cfg}
	auth := func(args ...string) []string {
		if cfg.Password != "" {
			args = append(args, "--requirepass", cfg.Password, "--masterauth", cfg.Password)
		}
		return args
	}

	master, err := startFree(t, bin, auth("--save", "", "--appendonly", "no")...)
	if err != nil {
		t.Fatalf("starting the master: %v", err)
	}
	host, port, _ := net.SplitHostPort(master)
	replica, err := startFree(t, bin, auth("--save", "", "--appendonly", "no", "--replicaof", host, port)...)
	if err != nil {
		t.Fatalf("starting the replica: %v", err)
	}
	s.Nodes = [2]string{master, replica}

	conf := filepath.Join(t.TempDir(), "sentinel.conf")
	text := fmt.Sprintf(`dir %s
sentinel monitor m %s %s 1
sentinel down-after-milliseconds m 1000
sentinel failover-timeout m 5000
sentinel parallel-syncs m 1
`, filepath.Dir(conf), host, port)
	if cfg.Password != "" {
		text += "sentinel auth-pass m " + cfg.Password + "\n"
	}
	if cfg.SentinelPassword != "" {
		text += "requirepass " + cfg.SentinelPassword + "\n"
	}
	// The sentinel rewrites its config file, so it gets its own writable copy.
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	s.Addr, err = startFree(t, bin, conf, "--sentinel")
	if err != nil {
		t.Fatalf("starting the sentinel: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), sentinelTimeout)
	defer cancel()
	sc := s.sentinelClient()
	defer sc.Close()
	err = waitFor(ctx, func() error {
		replicas, err := sc.Replicas(ctx, s.MasterName).Result()
		if err != nil {
			return err
		}
		for _, r := range replicas {
			if net.JoinHostPort(r["ip"], r["port"]) == replica && r["flags"] == "slave" && r["master-link-status"] == "ok" {
				return nil
			}
		}
		return fmt.Errorf("the sentinel lists the replicas %v", replicas)
	})
	if err != nil {
		t.Fatalf("the sentinel did not find the replica within %v: %v", sentinelTimeout, err)
	}
	return s
}

// Master asks the sentinel for the master's host:port.
func (s *Sentinel) Master(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sc := s.sentinelClient()
	defer sc.Close()
	hp, err := sc.GetMasterAddrByName(ctx, s.MasterName).Result()
	if err != nil {
		t.Fatalf("SENTINEL GET-MASTER-ADDR-BY-NAME: %v", err)
	}
	return net.JoinHostPort(hp[0], hp[1])
}

// Failover waits until the replica has every write the master acknowledged,
// has the sentinel promote it (SENTINEL FAILOVER), waits until the sentinel
// names it as the master and it acts as one, and returns its host:port. It
// reports how long the switch took.
func (s *Sentinel) Failover(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), sentinelTimeout)
	defer cancel()
	old := s.Master(t)
	i := slices.Index(s.Nodes[:], old)
	if i < 0 {
		t.Fatalf("the sentinel names %s as the master, none of %v", old, s.Nodes)
	}
	next := s.Nodes[1-i]

	oldc, nextc := s.nodeClient(old), s.nodeClient(next)
	defer oldc.Close()
	defer nextc.Close()
	// Writes are acknowledged before they reach the replica: wait until it
	// has them all, so that a failover loses none and the test is
	// deterministic.
	info, err := oldc.Info(ctx, "replication").Result()
	if err != nil {
		t.Fatalf("INFO replication of the master: %v", err)
	}
	target := infoInt(info, "master_repl_offset")
	err = waitFor(ctx, func() error {
		info, err := nextc.Info(ctx, "replication").Result()
		if err != nil {
			return err
		}
		if got := infoInt(info, "slave_repl_offset"); got < target {
			return fmt.Errorf("replica at offset %d, master at %d", got, target)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("the replica did not catch up within %v: %v", sentinelTimeout, err)
	}

	sc := s.sentinelClient()
	defer sc.Close()
	start := time.Now()
	// The sentinel may refuse while it is still busy with an earlier event.
	err = waitFor(ctx, func() error { return sc.Failover(ctx, s.MasterName).Err() })
	if err != nil {
		t.Fatalf("SENTINEL FAILOVER: %v", err)
	}
	err = waitFor(ctx, func() error {
		hp, err := sc.GetMasterAddrByName(ctx, s.MasterName).Result()
		if err != nil {
			return err
		}
		if got := net.JoinHostPort(hp[0], hp[1]); got != next {
			return fmt.Errorf("the sentinel still names %s", got)
		}
		role, err := nextc.Do(ctx, "ROLE").Slice()
		if err != nil {
			return err
		}
		if len(role) == 0 || role[0] != "master" {
			return fmt.Errorf("%s has the role %v", next, role)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("failover to %s not done within %v: %v", next, sentinelTimeout, err)
	}
	t.Logf("failover from %s to %s took %v", old, next, time.Since(start).Round(time.Millisecond))
	return next
}

func (s *Sentinel) sentinelClient() *redis.SentinelClient {
	return redis.NewSentinelClient(&redis.Options{Addr: s.Addr, Password: s.cfg.SentinelPassword})
}

func (s *Sentinel) nodeClient(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: addr, Password: s.cfg.Password})
}

// startFree starts a server on a free port, trying a few in case one is
// taken before the server binds it.
func startFree(t testing.TB, bin string, args ...string) (string, error) {
	var lastErr error
	for range 3 {
		port, err := freePort()
		if err != nil {
			return "", err
		}
		addr, _, err := startServer(t, bin, port, args...)
		if err == nil {
			return addr, nil
		}
		lastErr = err
	}
	return "", lastErr
}

// infoInt reads a number from INFO output; -1 when absent.
func infoInt(info, field string) int64 {
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				return n
			}
		}
	}
	return -1
}
