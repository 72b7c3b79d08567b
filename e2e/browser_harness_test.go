package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// The real-browser tests drive Debian's chromium, headless, with chromedp.
// scripts/deps.sh installs it; CHROME names another binary.

// browserTimeout bounds one browser test from launch to the last click: a
// page that never shows what the test waits for fails the test, it does
// not hang the run.
const browserTimeout = 90 * time.Second

// failureGrace is the time left after a failed step to save what the page
// showed.
const failureGrace = 10 * time.Second

// weChatUA is the user agent of WeChat's in-app browser on Android, the
// one the official account's login works in: pages tell it by
// "MicroMessenger".
const weChatUA = "Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/AP2A; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/126.0.6478.188 Mobile Safari/537.36 XWEB/1260117 MMWEBSDK/20240501 MMWEBID/1234 MicroMessenger/8.0.50.2701(0x28003252) WeChat/arm64 Weixin NetType/WIFI Language/zh_CN ABI/arm64"

// findChrome returns the chromium binary: $CHROME, else chromium or
// chromium-browser on the PATH. Without one the test is skipped, except in
// CI (CI=true), where a skipped integration test would hide that the
// browser test never ran: there it fails.
func findChrome(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROME"); p != "" {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
		t.Fatalf("CHROME=%s is not an executable", p)
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	const msg = "no chromium for the real-browser test: `bash scripts/deps.sh` installs Debian's chromium, or set CHROME to a Chromium or Chrome binary"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: this test must run in CI)")
	}
	t.Skip(msg)
	return ""
}

// chromium is one headless chromium with one tab, for one test. Its
// actions fail the test at once, with a screenshot and the page's HTML
// saved as artifacts, so a step that went wrong in CI can be seen.
type chromium struct {
	t   *testing.T
	ctx context.Context // the tab's steps; they end at browserTimeout
	tab context.Context // the tab itself, which lives a little longer: a failure is still recorded

	mu      sync.Mutex
	console []string // what the page wrote to its console, and its uncaught exceptions
}

// chromiumOption changes how newBrowser starts chromium.
type chromiumOption func(*[]chromedp.ExecAllocatorOption)

// withUserAgent starts the browser with another User-Agent, for every tab
// and request: navigator.userAgent and the header say the same.
func withUserAgent(ua string) chromiumOption {
	return func(o *[]chromedp.ExecAllocatorOption) { *o = append(*o, chromedp.UserAgent(ua)) }
}

// newChromium starts chromium for t and stops it when t ends. Its profile
// (user data dir) is a new temporary folder that chromedp makes for this
// launch and removes after it, so two runs at once share nothing.
func newChromium(t *testing.T, opts ...chromiumOption) *chromium {
	t.Helper()
	chrome := findChrome(t)
	o := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome),
		chromedp.WindowSize(1000, 760),
		// The page's language, so that screenshots do not depend on the machine.
		chromedp.Flag("lang", "zh-CN"),
	)
	if os.Geteuid() == 0 {
		// Chromium refuses to start its sandbox as root (CI and containers
		// run as root); as any other user it keeps the sandbox.
		o = append(o, chromedp.NoSandbox)
	}
	for _, opt := range opts {
		opt(&o)
	}

	deadline := time.Now().Add(browserTimeout)
	if d, ok := t.Deadline(); ok && d.Add(-2*failureGrace).Before(deadline) {
		deadline = d.Add(-2 * failureGrace)
	}
	// The browser outlives the steps' deadline by failureGrace, for saveFailure.
	base, cancelBase := context.WithDeadline(context.Background(), deadline.Add(failureGrace))
	alloc, cancelAlloc := chromedp.NewExecAllocator(base, o...)
	tab, cancelTab := chromedp.NewContext(alloc)
	steps, cancelSteps := context.WithDeadline(tab, deadline)
	b := &chromium{t: t, ctx: steps, tab: tab}
	t.Cleanup(func() {
		if t.Failed() {
			b.saveFailure()
		}
		// Closes the browser and waits for it and for the removal of its profile.
		cancelSteps()
		cancelTab()
		cancelAlloc()
		cancelBase()
	})
	// The first action starts the browser; its life is the tab's context.
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("starting %s: %v", chrome, err)
	}
	messages := chromedp.Console(tab)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.console = append(b.console, m.String())
			b.mu.Unlock()
		}
	}()
	return b
}

// fatal fails the test for a browser step.
func (b *chromium) fatal(step string, err error) {
	b.t.Helper()
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("%w (the browser test's deadline: %s)", err, browserTimeout)
	}
	b.t.Fatalf("browser: %s: %v\npage: %s", step, err, b.location())
}

// location is the tab's URL, for messages.
func (b *chromium) location() string {
	ctx, cancel := context.WithTimeout(b.tab, 2*time.Second)
	defer cancel()
	u, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		return "(unknown: " + err.Error() + ")"
	}
	return u
}

// navigate opens u, waits until it has loaded, and returns the HTTP status
// of the document that was shown last (after any redirects).
func (b *chromium) navigate(u string) int64 {
	b.t.Helper()
	resp, err := chromedp.Run(b.ctx, chromedp.NavigateResponse(u))
	if err != nil {
		b.fatal("open "+u, err)
	}
	return resp.Status
}

// reload reloads the page and returns its HTTP status.
func (b *chromium) reload() int64 {
	b.t.Helper()
	resp, err := chromedp.RunResponse(b.ctx, chromedp.Reload())
	if err != nil {
		b.fatal("reload", err)
	}
	return resp.Status
}

// clickAndLoad clicks sel, which loads a page (a link, a form's button),
// waits for that page and returns the HTTP status and URL of the document
// shown, after any redirects.
func (b *chromium) clickAndLoad(sel string) (status int64, u string) {
	b.t.Helper()
	resp, err := chromedp.RunResponse(b.ctx, chromedp.Click(chromedp.CSS(sel)))
	if err != nil {
		b.fatal("click "+sel+" and wait for the page", err)
	}
	return resp.Status, resp.URL
}

// waitVisible waits until an element matching sel is visible.
func (b *chromium) waitVisible(sel string) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, chromedp.WaitVisible(chromedp.CSS(sel))); err != nil {
		b.fatal("wait for "+sel+" to show", err)
	}
}

// waitText waits until the text of the first element matching sel contains
// want, and returns that text. The browser checks at each DOM change (a
// script fills the element in after a fetch), with the test's deadline.
func (b *chromium) waitText(sel, want string) string {
	b.t.Helper()
	check := `(sel, want) => { const e = document.querySelector(sel); return e && e.offsetParent !== null && e.textContent.includes(want) ? e.textContent : false }`
	text, err := chromedp.Run(b.ctx, chromedp.PollFunction[string](check,
		chromedp.WithPollingMutation(), chromedp.WithPollingTimeout(0), chromedp.WithPollingArgs(sel, want)))
	if err != nil {
		b.fatal(fmt.Sprintf("wait for %q in %s (it shows %q)", want, sel, b.text(sel)), err)
	}
	return text
}

// text is the text of the first element matching sel now, or "" when none
// is there.
func (b *chromium) text(sel string) string {
	s, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%s) || {}).textContent || ""`, jsString(sel))))
	return s
}

// value is the value of the first form field matching sel.
func (b *chromium) value(sel string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Value(chromedp.CSS(sel)))
	if err != nil {
		b.fatal("read the value of "+sel, err)
	}
	return v
}

// visible reports whether an element matching sel is shown now.
func (b *chromium) visible(sel string) bool {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](fmt.Sprintf(`(() => { const e = document.querySelector(%s); return !!e && e.offsetParent !== null })()`, jsString(sel))))
	if err != nil {
		b.fatal("look for "+sel, err)
	}
	return v
}

// eval evaluates a JavaScript expression in the page (a promise is awaited)
// and decodes its value into v.
func (b *chromium) eval(expr string, v any) {
	b.t.Helper()
	raw, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]byte](expr, chromedp.EvalAsValue, chromedp.EvalAwaitPromise))
	if err != nil {
		b.fatal("evaluate "+expr, err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		b.fatal("decode the value of "+expr, err)
	}
}

// setUserAgent makes this tab send ua from its next request on.
func (b *chromium) setUserAgent(ua string) {
	b.t.Helper()
	if _, err := chromedp.Call(b.ctx, emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{UserAgent: ua}); err != nil {
		b.fatal("set the user agent", err)
	}
}

// cookies returns the cookies the browser would send to u, by name.
func (b *chromium) cookies(u string) map[string]*network.Cookie {
	b.t.Helper()
	res, err := chromedp.Call(b.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{u}})
	if err != nil {
		b.fatal("read the cookies of "+u, err)
	}
	m := make(map[string]*network.Cookie, len(res.Cookies))
	for _, c := range res.Cookies {
		m[c.Name] = c
	}
	return m
}

// consoleLines is what the page wrote to its console so far.
func (b *chromium) consoleLines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.console...)
}

// screenshot saves a PNG of the whole page as an artifact named name and
// returns its path.
func (b *chromium) screenshot(name string) string {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.fatal("screenshot", err)
	}
	return b.saveArtifact(name+".png", png)
}

// saveFailure keeps what the page looked like when the test failed: a
// screenshot, its HTML and its console.
func (b *chromium) saveFailure() {
	ctx, cancel := context.WithTimeout(b.tab, failureGrace)
	defer cancel()
	if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
		b.saveArtifact("failed.png", png)
	}
	if html, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html"))); err == nil {
		b.saveArtifact("failed.html", []byte(html))
	}
	if lines := b.consoleLines(); len(lines) > 0 {
		b.saveArtifact("failed-console.txt", []byte(strings.Join(lines, "\n")+"\n"))
	}
}

// saveArtifact writes data to this test's artifact folder and logs where.
func (b *chromium) saveArtifact(name string, data []byte) string {
	dir := artifactDir(b.t)
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		b.t.Errorf("saving artifact %s: %v", path, err)
		return ""
	}
	b.t.Logf("artifact: %s", path)
	return path
}

var (
	artifactRunOnce sync.Once
	artifactRun     string // this run's folder, made once
	artifactRunErr  error
	unsafeName      = regexp.MustCompile(`[^A-Za-z0-9._-]+`)
)

// artifactDir is the folder of t's artifacts: under $WXAUTH_ARTIFACTS (a
// CI keeps that folder), else e2e/artifacts/ (ignored by git), in a
// folder of its own for this run (time and process id), so that runs at
// once or one after another never overwrite each other's.
func artifactDir(t *testing.T) string {
	artifactRunOnce.Do(func() {
		root := os.Getenv("WXAUTH_ARTIFACTS")
		if root == "" {
			root = "artifacts" // go test runs in e2e/
		}
		if abs, err := filepath.Abs(root); err == nil {
			root = abs // logged, so that a CI log names the file fully
		}
		if err := os.MkdirAll(root, 0o755); err != nil {
			artifactRunErr = err
			return
		}
		artifactRun, artifactRunErr = os.MkdirTemp(root, time.Now().Format("20060102-150405")+fmt.Sprintf("-%d-", os.Getpid()))
	})
	if artifactRunErr != nil {
		t.Fatalf("artifact folder: %v", artifactRunErr)
	}
	dir := filepath.Join(artifactRun, unsafeName.ReplaceAllString(t.Name(), "_"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("artifact folder: %v", err)
	}
	return dir
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
