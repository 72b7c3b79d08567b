package redistest

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// clusterTimeout bounds creating a cluster and waiting until every node
// serves every slot.
const clusterTimeout = 30 * time.Second

// ClusterConfig configures StartCluster.
type ClusterConfig struct {
	// Password, when set, is required by every node (requirepass and
	// masterauth).
	Password string
}

// StartCluster starts a Redis Cluster of three masters (no replicas) on
// free loopback ports, waits until every node reports cluster_state:ok,
// and returns the nodes' host:port. The nodes are killed when the test
// ends. Without redis-server and redis-cli the test is skipped, or fails in
// CI.
func StartCluster(t testing.TB, cfg ClusterConfig) []string {
	t.Helper()
	bin := lookPath(t)
	cli := lookCLI(t)

	var addrs []string
	taken := map[int]bool{}
	for range 3 {
		addr, err := startClusterNode(t, bin, taken, cfg)
		if err != nil {
			t.Fatalf("starting a cluster node: %v", err)
		}
		addrs = append(addrs, addr)
	}

	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-yes")
	cmd := exec.CommandContext(ctx, cli, args...)
	if cfg.Password != "" {
		// Through the environment, so that it is not on a command line.
		cmd.Env = append(cmd.Environ(), "REDISCLI_AUTH="+cfg.Password)
	}
	dieWithParent(cmd)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}

	// Every node must see all slots served before the cluster is used.
	for _, addr := range addrs {
		c := redis.NewClient(&redis.Options{Addr: addr, Password: cfg.Password})
		err := waitFor(ctx, func() error {
			info, err := c.ClusterInfo(ctx).Result()
			if err != nil {
				return err
			}
			if !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_slots_ok:16384") ||
				!strings.Contains(info, "cluster_known_nodes:3") {
				return fmt.Errorf("cluster info of %s:\n%s", addr, info)
			}
			return nil
		})
		c.Close()
		if err != nil {
			t.Fatalf("cluster not ready within %v: %v", clusterTimeout, err)
		}
	}
	return addrs
}

// startClusterNode starts one node of a cluster; the ports it probes may be
// taken before the node binds them, so it tries a few.
func startClusterNode(t testing.TB, bin string, taken map[int]bool, cfg ClusterConfig) (string, error) {
	var lastErr error
	for range 5 {
		port, err := clusterPort(taken)
		if err != nil {
			return "", err
		}
		args := []string{"--save", "", "--appendonly", "no",
			"--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(t.TempDir(), "nodes.conf"),
			"--cluster-node-timeout", "3000"}
		if cfg.Password != "" {
			args = append(args, "--requirepass", cfg.Password, "--masterauth", cfg.Password)
		}
		addr, _, err := startServer(t, bin, port, args...)
		if err == nil {
			taken[port], taken[port+10000] = true, true
			return addr, nil
		}
		lastErr = err
	}
	return "", lastErr
}

// clusterPort finds a free port P whose cluster bus port P+10000 is free
// too, avoiding the ports of nodes already started.
func clusterPort(taken map[int]bool) (int, error) {
	for range 200 {
		p, err := freePort()
		if err != nil {
			return 0, err
		}
		if p+10000 > 65535 || taken[p] || taken[p+10000] || taken[p-10000] {
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+10000))
		if err != nil {
			continue
		}
		l.Close()
		return p, nil
	}
	return 0, fmt.Errorf("no free port P with P+10000 free found")
}

// lookCLI finds redis-cli, or skips the test (fails it in CI).
func lookCLI(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-cli")
	if err != nil {
		if isCI() {
			t.Fatal("redis-cli not installed; .ci/run installs it with redis-server")
		}
		t.Skip("redis-cli not installed; skipping the Redis Cluster tests")
	}
	return bin
}

// waitFor calls f until it succeeds or ctx ends, and then returns f's last
// error.
func waitFor(ctx context.Context, f func() error) error {
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(50 * time.Millisecond):
		}
	}
}
