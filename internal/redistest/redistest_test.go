package redistest

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestStart(t *testing.T) {
	u := Start(t)
	parsed, err := url.Parse(u)
	if err != nil || parsed.Scheme != "redis" || parsed.Hostname() != "127.0.0.1" {
		t.Fatalf("Start() = %q", u)
	}
	if err := ping(parsed.Host); err != nil {
		t.Fatalf("server does not answer: %v", err)
	}
	// Two servers at once get two ports.
	if u2 := Start(t); u2 == u {
		t.Fatalf("second Start() = %q, same as the first", u2)
	}
}

func TestStartCleanup(t *testing.T) {
	var addr string
	t.Run("inner", func(t *testing.T) {
		u, err := url.Parse(Start(t))
		if err != nil {
			t.Fatal(err)
		}
		addr = u.Host
	})
	if addr == "" {
		t.Skip("inner test skipped")
	}
	if err := ping(addr); err == nil {
		t.Fatal("redis-server still answers after its test ended")
	}
}

func TestStartCluster(t *testing.T) {
	addrs := StartCluster(t, ClusterConfig{Password: "cluster-pw"})
	if len(addrs) != 3 {
		t.Fatalf("StartCluster() = %v, want 3 nodes", addrs)
	}
	ctx := context.Background()
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs[:1], Password: "cluster-pw"})
	defer c.Close()
	// Every node serves a third of the slots, and keys land on all of them.
	// ForEachMaster calls back on a goroutine per node.
	var mu sync.Mutex
	masters := map[string]bool{}
	err := c.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
		mu.Lock()
		masters[n.Options().Addr] = true
		mu.Unlock()
		return nil
	})
	if err != nil || len(masters) != 3 {
		t.Fatalf("masters %v, %v", masters, err)
	}
	for i := range 30 {
		if err := c.Set(ctx, "k"+strconv.Itoa(i), "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	err = c.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
		if size, err := n.DBSize(ctx).Result(); err != nil || size == 0 {
			return fmt.Errorf("node %s holds %d keys (%v)", n.Options().Addr, size, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestStartSentinel(t *testing.T) {
	s := StartSentinel(t, SentinelConfig{Password: "master-pw", SentinelPassword: "sentinel-pw"})
	if m := s.Master(t); m != s.Nodes[0] {
		t.Fatalf("Master() = %s, want the first node %s", m, s.Nodes[0])
	}
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: s.Nodes[0], Password: "master-pw"})
	defer c.Close()
	if err := c.Set(ctx, "before", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	next := s.Failover(t)
	if next != s.Nodes[1] || s.Master(t) != next {
		t.Fatalf("Failover() = %s, Master() = %s; want %s", next, s.Master(t), s.Nodes[1])
	}
	n := redis.NewClient(&redis.Options{Addr: next, Password: "master-pw"})
	defer n.Close()
	if v, err := n.Get(ctx, "before").Result(); err != nil || v != "v" {
		t.Fatalf("the new master lost a write: %q, %v", v, err)
	}
	if err := n.Set(ctx, "after", "v", 0).Err(); err != nil {
		t.Fatalf("the new master refuses writes: %v", err)
	}
}

func TestCommandCalls(t *testing.T) {
	info := "# Commandstats\r\ncmdstat_xread:calls=7,usec=1,usec_per_call=0.1\r\ncmdstat_xinfo|stream:calls=2,usec=1\r\ncmdstat_info:calls=5,usec=1\r\ncmdstat_get:calls=3,usec=1\r\n"
	for _, c := range []struct {
		names []string
		want  int
	}{{nil, 12}, {[]string{"xread", "xinfo|stream"}, 9}, {[]string{"get"}, 3}, {[]string{"set"}, 0}} {
		if got := CommandCalls(info, c.names...); got != c.want {
			t.Errorf("CommandCalls(%v) = %d, want %d", c.names, got, c.want)
		}
	}
}
