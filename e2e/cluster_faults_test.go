package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wxauth/caddy-wxauth/internal/redistest"
)

// kid reads a token's key id.
func kid(t *testing.T, tok string) string { return claim(t, tok, 0, "kid") }

// A Redis that loses everything (a restart without persistence) under two
// running instances: they converge on one new key, and neither refuses a
// token the other signs after the wipe; sessions that were wiped end.
func TestClusterRedisWipe(t *testing.T) {
	url := redistest.Start(t)
	c := newCluster(t, "", "store redis "+url)
	old, _ := c.login(c.appA, "wendy")
	if st, _ := c.whoami(c.appB, old); st != 200 {
		t.Fatalf("before the wipe: %d", st)
	}
	opts, _ := redis.ParseURL(url)
	rc := redis.NewClient(opts)
	defer rc.Close()
	if err := rc.FlushAll(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	// Each instance checks its key in the store every 5 s.
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; ; i++ {
		ta, _ := c.login(c.appA, fmt.Sprintf("w%da", i))
		tb, _ := c.login(c.appB, fmt.Sprintf("w%db", i))
		if st, _ := c.whoami(c.appB, ta); st != 200 {
			t.Fatalf("B refused a token A signed after the wipe: %d (kid %s)", st, kid(t, ta))
		}
		if st, _ := c.whoami(c.appA, tb); st != 200 {
			t.Fatalf("A refused a token B signed after the wipe: %d (kid %s)", st, kid(t, tb))
		}
		if kid(t, ta) == kid(t, tb) && kid(t, ta) != kid(t, old) {
			break // converged on a new key
		}
		if time.Now().After(deadline) {
			t.Fatalf("no common new key: A signs with %s, B with %s", kid(t, ta), kid(t, tb))
		}
		time.Sleep(200 * time.Millisecond) // polling for a fact, with a deadline
	}
	for _, app := range []string{c.appA, c.appB} {
		c.until(app, old, 401, 10*time.Second)
	}
}

// Redis restarts with its data: instances reconnect, and tokens, sessions
// and keys are as before.
func TestClusterRedisRestart(t *testing.T) {
	port, dir := serverPort(t), t.TempDir()
	url, stop := redistest.StartPersistentOn(t, port, dir)
	c := newCluster(t, "", "store redis "+url)
	tok, _ := c.login(c.appA, "rosa")
	gone, _ := c.login(c.appA, "rolf")
	stop()
	_, stop = redistest.StartPersistentOn(t, port, dir)
	defer stop()
	if st, _, raw := c.call(http.MethodPost, c.appA+"/wx/logout", gone, nil); st != 204 {
		t.Fatalf("logout after the restart: %d %s", st, raw)
	}
	for _, app := range []string{c.appA, c.appB} {
		c.until(app, tok, 200, 10*time.Second)
		c.until(app, gone, 401, 10*time.Second)
	}
	if tb, _ := c.login(c.appB, "rosa"); kid(t, tb) != kid(t, tok) {
		t.Fatalf("the key changed across a restart with persistence: %s, then %s", kid(t, tok), kid(t, tb))
	}
}

// An instance cut off from Redis while a logout happens elsewhere applies
// it when it is back: the feed resumes where it stopped.
func TestClusterLogoutWhileDisconnected(t *testing.T) {
	url := redistest.Start(t)
	opts, _ := redis.ParseURL(url)
	p := newTCPProxy(t, opts.Addr)
	c := newClusterStores(t, "", "store redis "+url, "store redis redis://"+p.addr+"/0")
	tok, _ := c.login(c.appA, "dina")
	if st, _ := c.whoami(c.appB, tok); st != 200 {
		t.Fatalf("B before: %d", st)
	}
	p.cut()
	if st, _, raw := c.call(http.MethodPost, c.appA+"/wx/logout", tok, nil); st != 204 {
		t.Fatalf("logout on A: %d %s", st, raw)
	}
	p.restore()
	c.until(c.appB, tok, 401, 10*time.Second)
}

// tcpProxy forwards to a server until cut: then it closes every
// connection and refuses new ones until restored.
type tcpProxy struct {
	addr string
	mu   sync.Mutex
	down bool
	mute bool // connections stay open, nothing reaches the target
	open map[net.Conn]struct{}
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{addr: l.Addr().String(), open: map[net.Conn]struct{}{}}
	t.Cleanup(func() { l.Close(); p.cut() })
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			down, mute := p.down, p.mute
			p.mu.Unlock()
			if down {
				in.Close()
				continue
			}
			if mute {
				p.track(in)
				go func() { _, _ = io.Copy(io.Discard, in) }()
				continue
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			p.track(in, out)
			go func() { p.forward(out, in); out.Close() }()
			go func() { _, _ = io.Copy(in, out); in.Close() }()
		}
	}()
	return p
}

// forward copies what the client sends to the target, dropping it while muted.
func (p *tcpProxy) forward(out, in net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := in.Read(buf)
		p.mu.Lock()
		mute := p.mute
		p.mu.Unlock()
		if n > 0 && !mute {
			if _, werr := out.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// silence makes the target stop answering without closing anything, like a
// store behind a firewall that drops packets.
func (p *tcpProxy) silence() {
	p.mu.Lock()
	p.mute = true
	p.mu.Unlock()
}

func (p *tcpProxy) track(conns ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range conns {
		p.open[c] = struct{}{}
	}
}

func (p *tcpProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.open {
		c.Close()
	}
	clear(p.open)
}

func (p *tcpProxy) restore() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}
