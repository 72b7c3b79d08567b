package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/wxauth/caddy-wxauth/internal/redistest"
)

// loginAttempt posts a fresh code of user to app's login and returns the
// status, the body and the Retry-After header. It is safe in goroutines.
func (c *cluster) loginAttempt(app, user string) (int, map[string]any, string, error) {
	resp, err := http.Get(c.mock + "/wxmock/login?user=" + user)
	if err != nil {
		return 0, nil, "", err
	}
	var code map[string]any
	err = json.NewDecoder(resp.Body).Decode(&code)
	resp.Body.Close()
	if err != nil {
		return 0, nil, "", err
	}
	body, _ := json.Marshal(map[string]any{"code": code["code"]})
	resp, err = http.Post(app+"/wx/login", "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m, resp.Header.Get("Retry-After"), nil
}

// firstLogins returns the first_login of each login event of openid.
func (c *cluster) firstLogins(openid string) []any {
	var out []any
	for _, ev := range c.hook.events("login") {
		if ev["openid"] == openid {
			out = append(out, ev["first_login"])
		}
	}
	return out
}

// One login of a user is its first, however many run at once on however
// many instances; a first login whose hook failed hands the claim on.
func TestClusterFirstLoginOnce(t *testing.T) {
	c := newCluster(t, "", "store redis "+redistest.Start(t))
	// A slow app keeps every login's event pending at once.
	c.hook.mu.Lock()
	c.hook.answers["login"] = hookAnswer{status: http.StatusNoContent, delay: 300 * time.Millisecond}
	c.hook.mu.Unlock()
	var wg sync.WaitGroup
	openids := make([]string, 6)
	for i := range openids {
		app := []string{c.appA, c.appB}[i%2]
		wg.Go(func() {
			st, m, _, err := c.loginAttempt(app, "fiona")
			if err != nil || st != 200 {
				t.Errorf("login %d on %s: %d %v %v", i, app, st, m, err)
				return
			}
			openids[i], _ = m["openid"].(string)
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	got := c.firstLogins(openids[0])
	trues := 0
	for _, f := range got {
		if f == true {
			trues++
		}
	}
	if len(got) != 6 || trues != 1 {
		t.Fatalf("first_login of 6 concurrent first logins over two instances: %v, want exactly one true", got)
	}

	// The app fails the first login of another user on A: the next login,
	// on B, is the first.
	c.hook.answer("login", http.StatusInternalServerError, "")
	if st, m, _, err := c.loginAttempt(c.appA, "gus"); err != nil || st != http.StatusBadGateway {
		t.Fatalf("login with a failing hook: %d %v %v", st, m, err)
	}
	c.hook.answer("login", http.StatusNoContent, "")
	st, m, _, err := c.loginAttempt(c.appB, "gus")
	if err != nil || st != 200 {
		t.Fatalf("login after the failed one: %d %v %v", st, m, err)
	}
	if got := c.firstLogins(m["openid"].(string)); len(got) != 2 || got[0] != true || got[1] != true {
		t.Fatalf("first_login after a failed first login: %v, want [true true]", got)
	}
}

// login_limit holds for the cluster: both instances together let one
// client address log in N times per window.
func TestClusterLoginLimit(t *testing.T) {
	const n = 5
	c := newCluster(t, "", "store redis "+redistest.Start(t)+"\n\t\tlogin_limit "+strconv.Itoa(n)+" 1m")
	var mu sync.Mutex
	statuses := map[int]int{}
	var wg sync.WaitGroup
	for i := range 3 * n {
		app := []string{c.appA, c.appB}[i%2]
		wg.Go(func() {
			st, m, retry, err := c.loginAttempt(app, "lim"+strconv.Itoa(i))
			if err != nil {
				t.Errorf("login %d: %v", i, err)
				return
			}
			if st == http.StatusTooManyRequests && (m["error"] != "rate_limited" || retry == "" || retry == "0") {
				t.Errorf("429 without rate_limited and Retry-After: %v %q", m, retry)
			}
			mu.Lock()
			statuses[st]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if statuses[200] != n || statuses[429] != 2*n {
		t.Fatalf("logins from one address over two instances: %v, want %d ok and the rest 429", statuses, n)
	}
	for _, app := range []string{c.appA, c.appB} {
		if st, m, retry, err := c.loginAttempt(app, "late"); err != nil || st != http.StatusTooManyRequests || retry == "" {
			t.Fatalf("a login on %s after the limit: %d %v Retry-After %q %v", app, st, m, retry, err)
		}
	}
}
