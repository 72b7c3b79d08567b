package e2e

import (
	"net/http"
	"strings"
	"testing"
)

// readmeInstance runs a README example as newInstance does, with the
// example's global options, if it begins with some, inside the instance's.
func readmeInstance(t *testing.T, name, cfg, health string) *instance {
	t.Helper()
	global, rest := splitGlobal(t, cfg)
	return newInstance(t, name, global, rest, health)
}

// splitGlobal cuts a Caddyfile's global options block (after any comment
// lines) from the rest, and returns the block's inside.
func splitGlobal(t *testing.T, cfg string) (global, rest string) {
	t.Helper()
	lines := strings.SplitAfter(cfg, "\n")
	i := 0
	for i < len(lines) && strings.HasPrefix(lines[i], "#") {
		i++
	}
	if i == len(lines) || lines[i] != "{\n" {
		return "", cfg
	}
	for j := i + 1; j < len(lines); j++ {
		if lines[j] == "}\n" {
			return strings.Join(lines[i+1:j], ""), strings.Join(lines[:i], "") + strings.Join(lines[j+1:], "")
		}
	}
	t.Fatalf("the global options block is not closed:\n%s", cfg)
	return "", ""
}

// insertAfter puts add after the first at in cfg.
func insertAfter(t *testing.T, cfg, at, add string) string {
	t.Helper()
	if !strings.Contains(cfg, at) {
		t.Fatalf("no %q to insert after in:\n%s", at, cfg)
	}
	return strings.Replace(cfg, at, at+add, 1)
}

// The README's production logging keeps every token out of every line Caddy
// writes: tokens in each place a client can put one, with token_from for
// the query and a custom header, on requests that succeed, are refused,
// and fail because the app is down (502, in Caddy's error log).
func TestReadmeLogsHoldNoToken(t *testing.T) {
	for _, path := range readmes {
		t.Run(path, func(t *testing.T) {
			up := newUpstream(t)
			cfg, site, mock := runnable(t, markedExample(t, path, "# example: production"), up)
			cfg = insertAfter(t, cfg, "api_base "+mock+"\n", `token_from header Authorization Bearer
token_from header Authentication
token_from query access_token
token_from cookie wxtoken
`)
			// Errors below 500 are logged at DEBUG: let them through the filter too.
			cfg = insertAfter(t, cfg, "log errors {\n", "level DEBUG\n")
			in := readmeInstance(t, "readme-logs", cfg, mock+"/wxmock/stats")
			tok, _ := readmeLogin(t, site, mock, "lena")
			dot := strings.Index(tok, ".")
			forged := tok[:strings.LastIndex(tok, ".")+1] + "Zm9yZ2VkLXNpZ25hdHVyZQ"

			places := func(tok string) [][]string { // path, then header name and value pairs
				return [][]string{
					{"/api/a?x=1", "Authorization", "Bearer " + tok},
					{"/api/b?x=1&access_token=" + tok},
					{"/api/c?x=1;access_token=" + tok},
					{"/api/d?access_token=" + tok + ";x=1&y=2"},
					{"/api/e", "Authentication", tok},
					{"/api/f", "Cookie", "theme=dark; wxtoken=" + tok},
					{"/public/g?access_token=" + tok + ";x=1", "Authorization", "Bearer " + tok, "Authentication", tok},
				}
			}
			send := func(want int, place []string) {
				t.Helper()
				if st := sendSpoofed(t, site+place[0], place[1:]...); st != want {
					t.Fatalf("%v: %d, want %d", place, st, want)
				}
			}
			for _, p := range places(tok) {
				send(http.StatusOK, p)
			}
			for _, p := range places(forged)[:6] { // the public route checks no token
				send(http.StatusUnauthorized, p)
			}
			up.Close()
			for _, p := range places(tok) {
				send(http.StatusBadGateway, p)
			}
			in.stop() // every line is written once Caddy has exited

			logs := in.out.String()
			if n := strings.Count(logs, `"logger":"http.log.error`); n < len(places(tok)) {
				t.Fatalf("%d error log lines, want one per 502:\n%s", n, logs)
			}
			if !strings.Contains(logs, `"logger":"http.log.access`) || !strings.Contains(logs, "/api/d?") {
				t.Fatalf("no access log of the requests:\n%s", logs)
			}
			for _, secret := range []string{tok[dot:], "Zm9yZ2VkLXNpZ25hdHVyZQ"} {
				for line := range strings.SplitSeq(logs, "\n") {
					if strings.Contains(line, secret) {
						t.Errorf("a log line holds a token:\n%s", line)
					}
				}
			}
		})
	}
}
