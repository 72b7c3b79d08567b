package e2e

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/wxauth/caddy-wxauth/internal/redistest"
)

// While Redis is down, an instance accepts only the tokens it confirmed
// itself before the outage and has not seen ended: a signature proves that
// a token was issued, not that its session is still alive. A token logged
// out elsewhere, shown to an instance that restarted, or to one started
// during the outage, is refused with 503 store_unavailable.
func TestClusterOutageRefusesUnconfirmedTokens(t *testing.T) {
	port, dir := serverPort(t), t.TempDir()
	url, stop := redistest.StartPersistentOn(t, port, dir)
	c := newCluster(t, "", "store redis "+url)

	ended, _ := c.login(c.appA, "olga")
	kept, _ := c.login(c.appA, "oleg")
	unseen, _ := c.login(c.appA, "omar") // never shown to B before the outage
	for _, tok := range []string{ended, kept, unseen} {
		if st, raw := c.whoami(c.appA, tok); st != 200 {
			t.Fatalf("A before the outage: %d %s", st, raw)
		}
	}
	// B confirms ended and kept, A logs ended out, B restarts: it has
	// confirmed nothing, then confirms kept.
	for _, tok := range []string{ended, kept} {
		if st, raw := c.whoami(c.appB, tok); st != 200 {
			t.Fatalf("B before its restart: %d %s", st, raw)
		}
	}
	if st, _, raw := c.call(http.MethodPost, c.appA+"/wx/logout", ended, nil); st != 204 {
		t.Fatalf("logout on A: %d %s", st, raw)
	}
	c.b.restart()
	if st, raw := c.whoami(c.appB, kept); st != 200 {
		t.Fatalf("B after its restart: %d %s", st, raw)
	}
	stop()

	// refused wants 503 store_unavailable; with ended also 401, if the
	// instance read the logout in the feed before the outage.
	refused := func(app, tok, what string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, app+"/me", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if tok == ended && resp.StatusCode == 401 {
			return
		}
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("%s: %d (Retry-After %q), want 503 store_unavailable with Retry-After",
				what, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
	refused(c.appB, ended, "B, a token logged out on A that B never confirmed")
	refused(c.appB, unseen, "B, a live token B never confirmed")
	if st, raw := c.whoami(c.appB, kept); st != 200 {
		t.Fatalf("B, a token it confirmed before the outage: %d %s", st, raw)
	}
	if st, raw := c.whoami(c.appA, ended); st != 401 {
		t.Fatalf("A, the token it logged out: %d %s", st, raw)
	}
	for _, tok := range []string{kept, unseen} {
		if st, raw := c.whoami(c.appA, tok); st != 200 {
			t.Fatalf("A, a token it confirmed before the outage: %d %s", st, raw)
		}
	}

	// A third instance started mid-outage has confirmed nothing.
	pc := freePort(t)
	appC := fmt.Sprintf("http://127.0.0.1:%d", pc)
	newInstance(t, "c", "", c.appConfig(pc, "store redis "+url), appC+"/healthz")
	for _, tok := range []string{ended, kept, unseen} {
		refused(appC, tok, "C, started during the outage")
	}

	// Back with its data: the store decides again, on every instance.
	_, stop = redistest.StartPersistentOn(t, port, dir)
	defer stop()
	for _, app := range []string{c.appB, appC} {
		c.until(app, ended, 401, 20*time.Second)
		c.until(app, unseen, 200, 20*time.Second)
		c.until(app, kept, 200, 20*time.Second)
	}
}
