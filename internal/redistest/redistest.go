// Package redistest runs a real, throwaway redis-server for tests.
package redistest

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// startTimeout bounds how long Start waits for the server to answer PING.
const startTimeout = 10 * time.Second

// Start starts redis-server on a free loopback port, without persistence, and
// returns its URL (redis://127.0.0.1:port/0). The server is killed when the
// test ends. Without redis-server on PATH the test is skipped, or fails when
// the CI environment variable is set, since CI must run these tests.
func Start(t testing.TB) (url string) {
	t.Helper()
	bin := lookPath(t)

	// The port is probed and then released, so another process may take it
	// before redis-server binds; try a few ports.
	var lastErr error
	for range 3 {
		addr, err := start(t, bin)
		if err == nil {
			return "redis://" + addr + "/0"
		}
		lastErr = err
	}
	t.Fatalf("starting redis-server: %v", lastErr)
	return ""
}

// StartOn starts redis-server on the given loopback port, like Start, and
// returns a function that stops it early; for tests of a server that comes
// up after its clients or goes away under them.
func StartOn(t testing.TB, port int) (url string, stop func()) {
	t.Helper()
	addr, stop, err := startOn(t, lookPath(t), port)
	if err != nil {
		t.Fatalf("starting redis-server: %v", err)
	}
	return "redis://" + addr + "/0", stop
}

// StartPersistentOn is StartOn with an append-only file in dir, written
// through on every command: a server started again on the same dir has
// every write it acknowledged.
func StartPersistentOn(t testing.TB, port int, dir string) (url string, stop func()) {
	t.Helper()
	addr, stop, err := startServer(t, lookPath(t), port, "--dir", dir, "--save", "", "--appendonly", "yes", "--appendfsync", "always")
	if err != nil {
		t.Fatalf("starting redis-server: %v", err)
	}
	return "redis://" + addr + "/0", stop
}

// lookPath finds redis-server, or skips the test (fails it in CI).
func lookPath(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if isCI() {
			t.Fatal("redis-server not installed; .ci/run installs it")
		}
		t.Skip("redis-server not installed; skipping the Redis tests")
	}
	return bin
}

// isCI reports whether the tests run in CI, where every test must run.
func isCI() bool { return os.Getenv("CI") != "" }

// start runs one redis-server on a free port and waits until it answers or exits.
func start(t testing.TB, bin string) (string, error) {
	port, err := freePort()
	if err != nil {
		return "", err
	}
	addr, _, err := startOn(t, bin, port)
	return addr, err
}

func startOn(t testing.TB, bin string, port int) (string, func(), error) {
	return startServer(t, bin, port, "--save", "", "--appendonly", "no")
}

// startServer runs redis-server (or a sentinel, with args naming its config
// file first) on port and waits until it answers PING or exits. Extra args
// follow the port, bind address and data folder.
func startServer(t testing.TB, bin string, port int, args ...string) (string, func(), error) {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	var cmd *exec.Cmd
	if len(args) > 0 && !strings.HasPrefix(args[0], "--") {
		// A config file comes first on redis-server's command line.
		cmd = exec.Command(bin, append([]string{args[0], "--port", strconv.Itoa(port), "--bind", "127.0.0.1"}, args[1:]...)...)
	} else {
		cmd = exec.Command(bin, append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", t.TempDir()}, args...)...)
	}
	var out syncBuffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	stop := func() { // safe to call twice
		_ = cmd.Process.Kill()
		<-exited
	}

	deadline := time.Now().Add(startTimeout)
	for {
		// The PING must reach this server: another one may have taken the
		// port, in which case this one says nothing of being ready and exits.
		// (A sentinel logs its id instead, once it has its port.)
		if o := out.String(); (strings.Contains(o, "Ready to accept connections") || strings.Contains(o, "Sentinel ID is")) && ping(addr) == nil {
			t.Cleanup(stop)
			return addr, stop, nil
		}
		select {
		case <-exited:
			return "", nil, fmt.Errorf("redis-server exited: %s", strings.TrimSpace(out.String()))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, fmt.Errorf("redis-server did not answer PING within %v: %s", startTimeout, strings.TrimSpace(out.String()))
		}
	}
}

// ping sends PING and expects +PONG, or the refusal of a server that wants
// a password first (it is up all the same).
func ping(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" && !strings.HasPrefix(line, "-NOAUTH ") {
		return fmt.Errorf("unexpected PING reply %q", line)
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// syncBuffer collects the server's output, written by exec's copying
// goroutine and read on failure.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// CommandCalls adds up the calls of the named commands (lower case, as in
// "xread") in the text of INFO commandstats; with no names, of every
// command but INFO itself, so that reading the stats does not count.
func CommandCalls(info string, names ...string) int {
	sum := 0
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(line), "cmdstat_"), ":")
		if !ok || !strings.HasPrefix(line, "cmdstat_") {
			continue
		}
		if len(names) == 0 && name == "info" || len(names) > 0 && !slices.Contains(names, name) {
			continue
		}
		_, calls, _ := strings.Cut(rest, "calls=")
		calls, _, _ = strings.Cut(calls, ",")
		n, _ := strconv.Atoi(calls)
		sum += n
	}
	return sum
}
