// Command logins checks that a burst of concurrent logins all succeed: it
// fetches n wx.login codes from wxmock, then POSTs all n to wxauth's login
// endpoint at once and counts the 200 answers that carry a token. It exits
// with status 1 unless every login succeeded. Used by bench/run.sh.
//
//	logins -n 200 -app http://127.0.0.1:29080 -mock http://127.0.0.1:29081
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

func main() {
	n := flag.Int("n", 200, "number of concurrent logins")
	app := flag.String("app", "http://127.0.0.1:29080", "base URL of the site that runs wxauth")
	mock := flag.String("mock", "http://127.0.0.1:29081", "base URL of wxmock")
	path := flag.String("path", "/wx/login", "wxauth's login path")
	timeout := flag.Duration("timeout", 30*time.Second, "timeout of each request")
	flag.Parse()

	client := &http.Client{
		Timeout:   *timeout,
		Transport: &http.Transport{MaxIdleConnsPerHost: *n},
	}
	codes := make([]string, *n)
	for i := range codes {
		c, err := code(client, fmt.Sprintf("%s/wxmock/login?user=burst%d", *mock, i))
		if err != nil {
			fmt.Fprintln(os.Stderr, "logins: fetching a code:", err)
			os.Exit(1)
		}
		codes[i] = c
	}

	var (
		wg       sync.WaitGroup
		start    = make(chan struct{})
		mu       sync.Mutex
		ok       int
		failures = map[string]int{}
		lat      []time.Duration
	)
	for _, c := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			t0 := time.Now()
			status, err := login(client, *app+*path, c)
			d := time.Since(t0)
			mu.Lock()
			defer mu.Unlock()
			lat = append(lat, d)
			switch {
			case err != nil:
				failures[err.Error()]++
			case status != http.StatusOK:
				failures[fmt.Sprintf("status %d", status)]++
			default:
				ok++
			}
		}()
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	total := time.Since(t0)

	slices.Sort(lat)
	fmt.Printf("logins: %d/%d concurrent logins succeeded in %s (latency p50 %s, p99 %s, max %s)\n",
		ok, *n, total.Round(time.Millisecond), pct(lat, 50), pct(lat, 99), pct(lat, 100))
	for msg, k := range failures {
		fmt.Printf("logins: %d failed: %s\n", k, msg)
	}
	if ok != *n {
		os.Exit(1)
	}
}

// code asks wxmock for a wx.login code.
func code(c *http.Client, u string) (string, error) {
	resp, err := c.Get(u)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var r struct{ Code string }
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &r) != nil || r.Code == "" {
		return "", fmt.Errorf("wxmock answered %d", resp.StatusCode)
	}
	return r.Code, nil
}

// login posts one code; a 200 counts only with a token in the answer.
func login(c *http.Client, u, code string) (int, error) {
	resp, err := c.Post(u, "application/json", strings.NewReader(`{"code":"`+code+`"}`))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var r struct{ Token string }
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK && (json.Unmarshal(b, &r) != nil || r.Token == "") {
		return 0, fmt.Errorf("200 without a token")
	}
	return resp.StatusCode, nil
}

// pct is the p-th percentile of sorted durations.
func pct(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	return sorted[max(i-1, 0)].Round(time.Millisecond)
}
