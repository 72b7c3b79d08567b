package e2e

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// demoConfig is example.Caddyfile with its fixed ports (admin 2019, wxmock
// 9000, app 8080, web site 8081) replaced by free ones, so the test runs
// beside a demo.
func demoConfig(t *testing.T) (path string, ports []int) {
	t.Helper()
	b, err := os.ReadFile(repoPath("example.Caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	ports, err = freePorts(4)
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(b)
	for _, s := range []struct{ from, to string }{
		{`(?m)^(\s*admin\s+)localhost:2019$`, "${1}127.0.0.1:" + strconv.Itoa(ports[0])},
		{`127\.0\.0\.1:9000\b`, "127.0.0.1:" + strconv.Itoa(ports[1])},
		{`127\.0\.0\.1:8080\b`, "127.0.0.1:" + strconv.Itoa(ports[2])},
		{`127\.0\.0\.1:8081\b`, "127.0.0.1:" + strconv.Itoa(ports[3])},
	} {
		re := regexp.MustCompile(s.from)
		if !re.MatchString(cfg) {
			t.Fatalf("example.Caddyfile no longer matches %s", s.from)
		}
		cfg = re.ReplaceAllString(cfg, s.to)
	}
	if left := regexp.MustCompile(`:(2019|8080|8081|9000)\b`).FindString(regexp.MustCompile(`#.*`).ReplaceAllString(cfg, "")); left != "" {
		t.Fatalf("a fixed demo port is left: %s", left)
	}
	path = filepath.Join(t.TempDir(), "demo.Caddyfile")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, ports
}

// scripts/demo.sh runs Caddy in its own process: a signal to the command
// stops Caddy, and no port of the demo stays taken.
func TestDemoScriptStopsCaddy(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			config, ports := demoConfig(t)
			var out bytes.Buffer
			cmd := exec.Command("bash", "scripts/demo.sh", config)
			cmd.Dir = repoPath()
			cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+t.TempDir(), "XDG_CONFIG_HOME="+t.TempDir())
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			stopped := false
			t.Cleanup(func() {
				if !stopped {
					_ = cmd.Process.Kill()
					<-exited
				}
			})

			health := fmt.Sprintf("http://127.0.0.1:%d/healthz", ports[2])
			deadline := time.Now().Add(3 * time.Minute) // the first build may take a while
			for !answers(health) {
				select {
				case err := <-exited:
					stopped = true
					t.Fatalf("demo.sh exited (%v) before the demo answered:\n%s", err, out.String())
				case <-time.After(100 * time.Millisecond):
				}
				if time.Now().After(deadline) {
					t.Fatalf("the demo did not answer %s:\n%s", health, out.String())
				}
			}
			// The script's process is Caddy now: nothing else is left to stop.
			if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", cmd.Process.Pid)); err == nil && strings.TrimSpace(string(comm)) != "caddy" {
				t.Errorf("the script's process runs %q, want caddy itself", strings.TrimSpace(string(comm)))
			}

			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			select {
			case <-exited:
				stopped = true
			case <-time.After(30 * time.Second):
				t.Fatalf("demo.sh still runs 30s after %v:\n%s", sig, out.String())
			}
			// Nothing listens any more: a connection is refused. (The ports
			// stay reserved for this run, so a bind would not tell.)
			for _, p := range ports {
				c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(p), time.Second)
				if err == nil {
					c.Close()
					t.Errorf("port %d still answers after %v", p, sig)
				}
			}
		})
	}
}

// answers reports whether url answers 200.
func answers(url string) bool {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
