package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Cluster and restart tests run real Caddy processes built from the
// repository's ./cmd/caddy, the binary a user gets from xcaddy.

var (
	buildOnce sync.Once
	caddyBin  string
	buildErr  error
)

func caddyBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if p := os.Getenv("CADDY_BIN"); p != "" {
			caddyBin = p
			return
		}
		caddyBin = filepath.Join(storageDir, "caddy")
		build := exec.Command("go", "build", "-o", caddyBin, "./cmd/caddy")
		build.Dir = repoPath()
		out, err := build.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build ./cmd/caddy: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return caddyBin
}

// instance is one Caddy process.
type instance struct {
	t      *testing.T
	name   string
	config string
	admin  int
	health string
	cmd    *exec.Cmd
	out    *bytes.Buffer
}

// newInstance writes a Caddyfile (with its own admin port and the given
// global options) and starts Caddy; health is a URL that answers once the
// config runs.
func newInstance(t *testing.T, name, global, caddyfile, health string) *instance {
	t.Helper()
	in := &instance{t: t, name: name, admin: freePort(t), health: health}
	in.config = filepath.Join(t.TempDir(), name+".Caddyfile")
	body := fmt.Sprintf("{\n\tadmin localhost:%d\n\tauto_https off\n\tgrace_period 1s\n\t%s\n}\n%s", in.admin, global, caddyfile)
	if err := os.WriteFile(in.config, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	in.start()
	t.Cleanup(in.stop)
	return in
}

func (in *instance) start() {
	in.t.Helper()
	in.out = new(bytes.Buffer)
	in.cmd = exec.Command(caddyBinary(in.t), "run", "--config", in.config, "--adapter", "caddyfile")
	in.cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+storageDir+"/data-"+in.name, "XDG_CONFIG_HOME="+storageDir+"/config-"+in.name)
	in.cmd.Stdout, in.cmd.Stderr = in.out, in.out
	if err := in.cmd.Start(); err != nil {
		in.t.Fatal(err)
	}
	ok := eventually(in.t, 20*time.Second, func() bool {
		resp, err := http.Get(in.health)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	})
	if !ok {
		in.stop()
		in.t.Fatalf("%s did not start:\n%s", in.name, in.out)
	}
}

func (in *instance) stop() {
	if in.cmd == nil || in.cmd.Process == nil {
		return
	}
	_ = in.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = in.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = in.cmd.Process.Kill()
		<-done
	}
	in.cmd = nil
}

func (in *instance) restart() {
	in.t.Helper()
	in.stop()
	in.start()
}

// reload loads the instance's Caddyfile again through the admin API, as
// `caddy reload` does.
func (in *instance) reload() {
	in.t.Helper()
	body, err := os.ReadFile(in.config)
	if err != nil {
		in.t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("http://localhost:%d/load", in.admin), bytes.NewReader(body))
	req.Header.Set("Content-Type", "text/caddyfile")
	req.Header.Set("Cache-Control", "must-revalidate") // reload even if unchanged
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		in.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		in.t.Fatalf("reload %s: %d", in.name, resp.StatusCode)
	}
}
