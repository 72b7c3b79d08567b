package e2e

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wxauth/caddy-wxauth/internal/redistest"
)

// cluster is two Caddy processes sharing one store, behind no load balancer:
// the test plays the balancer by choosing the instance of each request.
type cluster struct {
	t          *testing.T
	a, b       *instance
	mock       string
	appA, appB string
	hook       *appHook
}

func newCluster(t *testing.T, global, store string) *cluster {
	t.Helper()
	return newClusterStores(t, global, store, store)
}

// newClusterStores is newCluster with each instance's own store line, e.g.
// the same Redis through another route.
func newClusterStores(t *testing.T, global, storeA, storeB string) *cluster {
	t.Helper()
	c := &cluster{t: t, hook: newAppHook(t)}
	mockPort, pa, pb := freePort(t), freePort(t), freePort(t)
	c.mock = fmt.Sprintf("http://127.0.0.1:%d", mockPort)
	c.appA = fmt.Sprintf("http://127.0.0.1:%d", pa)
	c.appB = fmt.Sprintf("http://127.0.0.1:%d", pb)
	app := c.appConfig
	mock := fmt.Sprintf("http://127.0.0.1:%d {\n\twxmock {\n\t\tapp_id %s\n\t\tapp_secret test-secret\n\t}\n}\n", mockPort, testApp)
	c.a = newInstance(t, "a", global, mock+app(pa, storeA), c.appA+"/healthz")
	c.b = newInstance(t, "b", global, app(pb, storeB), c.appB+"/healthz")
	return c
}

// appConfig is the site block of one instance on port, with its store line.
func (c *cluster) appConfig(port int, store string) string {
	return fmt.Sprintf(`http://127.0.0.1:%d {
	respond /healthz 200
	wxauth {
		app_id %s
		app_secret test-secret
		api_base %s
		app_hook %s {
			secret %s
		}
		app_api /wx/app
		%s
	}
	respond /role "{http.request.header.X-Wx-Role}"
	respond "{http.auth.user.id}"
}
`, port, testApp, c.mock, c.hook.url, hookSecret, store)
}

func (c *cluster) call(method, url, tok string, body any) (int, map[string]any, string) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return resp.StatusCode, m, string(raw)
}

func (c *cluster) login(app, user string) (tok, openid string) {
	c.t.Helper()
	_, code, _ := c.call(http.MethodGet, c.mock+"/wxmock/login?user="+user, "", nil)
	st, m, raw := c.call(http.MethodPost, app+"/wx/login", "", map[string]any{"code": code["code"]})
	if st != 200 {
		c.t.Fatalf("login on %s: %d %s", app, st, raw)
	}
	return m["token"].(string), m["openid"].(string)
}

// whoami returns the status and body of a protected call.
func (c *cluster) whoami(app, tok string) (int, string) {
	c.t.Helper()
	st, _, raw := c.call(http.MethodGet, app+"/me", tok, nil)
	return st, raw
}

// exercise runs what a cluster must do, whatever its shared store.
func (c *cluster) exercise() {
	t := c.t
	tok, openid := c.login(c.appA, "quinn")
	if st, body := c.whoami(c.appB, tok); st != 200 || body != openid {
		t.Fatalf("token from A on B: %d %s", st, body)
	}
	tokB, _ := c.login(c.appB, "quinn")
	if st, _ := c.whoami(c.appA, tokB); st != 200 {
		t.Fatalf("token from B on A: %d", st)
	}

	// Data encrypted after the login on B decrypts on A (shared session_key).
	_, data, _ := c.call(http.MethodGet, c.mock+"/wxmock/userinfo?user=quinn", "", nil)
	if st, m, raw := c.call(http.MethodPost, c.appA+"/wx/decrypt", tok, data); st != 200 || m["openId"] != openid {
		t.Fatalf("decrypt on A after a login on B: %d %s", st, raw)
	}

	// Both instances share one access_token.
	c.call(http.MethodPost, c.mock+"/wxmock/reset", "", nil)
	for i, app := range []string{c.appA, c.appB, c.appA, c.appB} {
		_, pc, _ := c.call(http.MethodGet, c.mock+"/wxmock/phonecode?user=quinn", "", nil)
		if st, _, raw := c.call(http.MethodPost, app+"/wx/phone", tok, map[string]any{"code": pc["code"]}); st != 200 {
			t.Fatalf("phone %d: %d %s", i, st, raw)
		}
	}
	if _, stats, _ := c.call(http.MethodGet, c.mock+"/wxmock/stats", "", nil); stats["stable_token"] != float64(1) {
		t.Fatalf("two instances fetched %v access_tokens, want 1", stats["stable_token"])
	}

	// Logout on A: refused on A at once, on B within 10s.
	if st, _ := c.whoami(c.appB, tok); st != 200 { // B has it cached now
		t.Fatalf("B before logout: %d", st)
	}
	if st, _, raw := c.call(http.MethodPost, c.appA+"/wx/logout", tok, nil); st != 204 {
		t.Fatalf("logout: %d %s", st, raw)
	}
	if st, _ := c.whoami(c.appA, tok); st != 401 {
		t.Fatalf("A still accepts a logged-out token: %d", st)
	}
	began := time.Now()
	if !eventually(t, 10*time.Second, func() bool { st, _ := c.whoami(c.appB, tok); return st == 401 }) {
		t.Fatal("B accepted the logged-out token for more than 10s")
	}
	t.Logf("logout reached the other instance in %v", time.Since(began).Round(100*time.Millisecond))
	if st, _ := c.whoami(c.appB, tokB); st != 200 {
		t.Fatalf("the other session ended too: %d", st)
	}

	// A config reload and a restart of every instance keep sessions and keys.
	c.a.reload()
	c.b.reload()
	if st, _ := c.whoami(c.appA, tokB); st != 200 {
		t.Fatalf("after reload: %d", st)
	}
	c.a.restart()
	c.b.restart()
	for _, app := range []string{c.appA, c.appB} {
		if st, body := c.whoami(app, tokB); st != 200 || body != openid {
			t.Fatalf("after restart on %s: %d %s", app, st, body)
		}
		if st, _ := c.whoami(app, tok); st != 401 {
			t.Fatalf("a logged-out token works again after restart on %s: %d", app, st)
		}
	}
}

// changeBound is how soon every instance must apply a logout or a claim
// change made on another: the contract's figure per store.
func (c *cluster) changes(bound time.Duration) {
	t := c.t
	// A logout on A is refused by B within the bound, 20 times out of 20.
	var worst time.Duration
	var lat []time.Duration
	for i := range 20 {
		tok, _ := c.login(c.appA, fmt.Sprintf("prop%d", i))
		if st, _ := c.whoami(c.appB, tok); st != 200 { // cached on B
			t.Fatalf("B before the logout: %d", st)
		}
		if st, _, raw := c.call(http.MethodPost, c.appA+"/wx/logout", tok, nil); st != 204 {
			t.Fatalf("logout: %d %s", st, raw)
		}
		d := c.until(c.appB, tok, 401, 5*time.Second)
		lat = append(lat, d)
		worst = max(worst, d)
	}
	t.Logf("logout reached the other instance in at most %v (all: %v)", worst, lat)
	if worst > bound {
		t.Fatalf("a logout took %v to reach the other instance, over the bound %v", worst, bound)
	}

	// A claim change and an end_sessions through app_api on A reach B.
	tok, openid := c.login(c.appA, "claire")
	if st, body := c.role(c.appB, tok); st != 200 || body != "" {
		t.Fatalf("B before the claim change: %d %q", st, body)
	}
	c.appAPI(c.appA, `{"action":"set_claims","openid":"`+openid+`","claims":{"role":"admin"}}`)
	began := time.Now()
	deadline := began.Add(5 * time.Second)
	for {
		if _, body := c.role(c.appB, tok); body == "admin" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("B did not follow a claim change made on A")
		}
		time.Sleep(10 * time.Millisecond) // polling for a fact, with a deadline
	}
	if d := time.Since(began); d > bound {
		t.Fatalf("a claim change took %v to reach B, over the bound %v", d, bound)
	}
	c.appAPI(c.appA, `{"action":"end_sessions","openid":"`+openid+`"}`)
	if d := c.until(c.appB, tok, 401, 5*time.Second); d > bound {
		t.Fatalf("end_sessions took %v to reach B, over the bound %v", d, bound)
	}
}

// until polls app with tok until it answers status, and returns how long it took.
func (c *cluster) until(app, tok string, status int, limit time.Duration) time.Duration {
	c.t.Helper()
	began := time.Now()
	for {
		if st, _ := c.whoami(app, tok); st == status {
			return time.Since(began)
		}
		if time.Since(began) > limit {
			c.t.Fatalf("%s did not answer %d within %v", app, status, limit)
		}
		time.Sleep(10 * time.Millisecond) // polling for a fact, with a deadline
	}
}

func (c *cluster) role(app, tok string) (int, string) {
	c.t.Helper()
	st, _, raw := c.call(http.MethodGet, app+"/role", tok, nil)
	return st, raw
}

// appAPI makes a signed app_api call.
func (c *cluster) appAPI(app, body string) {
	c.t.Helper()
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(hookSecret, "whsec_"))
	id, ts := fmt.Sprintf("call-%d", time.Now().UnixNano()), strconv.FormatInt(time.Now().Unix(), 10)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + ts + "." + body))
	req, _ := http.NewRequest(http.MethodPost, app+"/wx/app", strings.NewReader(body))
	req.Header.Set("Webhook-Id", id)
	req.Header.Set("Webhook-Timestamp", ts)
	req.Header.Set("Webhook-Signature", "v1,"+base64.StdEncoding.EncodeToString(m.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 {
		c.t.Fatalf("app_api %s: %d", body, resp.StatusCode)
	}
}

func TestClusterSharedFileStorage(t *testing.T) {
	dir := t.TempDir()
	c := newCluster(t, "storage file_system "+dir, "")
	c.exercise()
	c.changes(2 * time.Second)
}

func TestClusterRedis(t *testing.T) {
	// The URL comes from the environment, as a password would.
	url := redistest.Start(t)
	t.Setenv("WXAUTH_TEST_REDIS", url)
	c := newCluster(t, "", "store redis {env.WXAUTH_TEST_REDIS} {\n\t\t\tpool_size 8\n\t\t\tkey_prefix test:\n\t\t}")
	c.exercise()
	c.changes(time.Second)
	c.steadyState(url, 1000)
}

// steadyState caches n tokens on both instances, then counts the commands
// Redis gets while nothing changes: at most 2 a second per instance,
// whatever n is.
func (c *cluster) steadyState(url string, n int) {
	t := c.t
	toks := make([]string, n)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				toks[i], _ = c.login(c.appA, fmt.Sprintf("steady%d", i))
				for _, app := range []string{c.appA, c.appB} {
					if st, _ := c.whoami(app, toks[i]); st != 200 {
						t.Errorf("token %d on %s: %d", i, app, st)
					}
				}
			}
		}()
	}
	wg.Wait()
	opts, _ := redis.ParseURL(url)
	rc := redis.NewClient(opts)
	defer rc.Close()
	total := func() int {
		info, err := rc.Info(context.Background(), "commandstats").Result()
		if err != nil {
			t.Fatal(err)
		}
		return redistest.CommandCalls(info)
	}
	before, began := total(), time.Now()
	// The requests go on: every cached token is used again, on both instances.
	for time.Since(began) < 5*time.Second {
		for _, app := range []string{c.appA, c.appB} {
			if st, _ := c.whoami(app, toks[int(time.Now().UnixNano())%n]); st != 200 {
				t.Fatalf("a cached token refused: %d", st)
			}
		}
	}
	per := float64(total()-before) / time.Since(began).Seconds() / 2
	t.Logf("%d cached tokens: %.2f store commands a second per instance at steady state", n, per)
	if per > 2 {
		t.Fatalf("%.2f store commands a second per instance with %d cached tokens, want at most 2", per, n)
	}
}
