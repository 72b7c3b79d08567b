package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/wxauth/caddy-wxauth/token"
)

// The benchmarks load their own Caddy in this process with caddy.Load, with
// no admin endpoint and on ports that startBench picks free, so they run
// beside the tests and the demo, even while another process runs those.
var (
	benchAppPort   string // wxauth, sessions in Caddy's storage
	benchMockPort  string // wxmock
	benchMemPort   string // wxauth, sessions in memory
	benchPlainPort string // respond only
	benchNoopPort  string // a no-op handler, then respond
	benchHdrsPort  string // benchHeaders, then respond
)

const (
	benchHost  = "127.0.0.1"
	benchAppID = "wxbench012345678"
	benchKey   = "Y2FkZHktd3hhdXRoIGJlbmNobWFyayBzaWduaW5nIGtleSAwMQ=="
	otherKey   = "c29tZSBvdGhlciBrZXksIG5vdCB0aGUgb25lIGluIHVzZSAwMg=="

	// What wxauth may add to a protected request over plain Caddy (see
	// BENCHMARKS.md).
	budgetNs     = 500
	budgetAllocs = 3
)

func init() {
	caddy.RegisterModule(benchNoop{})
	httpcaddyfile.RegisterHandlerDirective("wxauth_bench_noop", func(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
		h.Next()
		return benchNoop{}, nil
	})
	httpcaddyfile.RegisterDirectiveOrder("wxauth_bench_noop", httpcaddyfile.After, "basic_auth")
	caddy.RegisterModule(benchHeaders{})
	httpcaddyfile.RegisterHandlerDirective("wxauth_bench_headers", func(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
		h.Next()
		return benchHeaders{}, nil
	})
	httpcaddyfile.RegisterDirectiveOrder("wxauth_bench_headers", httpcaddyfile.After, "basic_auth")
}

// benchNoop is a handler that only calls the next one. A route with it
// costs what Caddy charges for any extra handler (it builds each matched
// route's handler chain per request), which separates that floor from
// wxauth's own work. It exists only in this test binary.
type benchNoop struct{}

// CaddyModule returns the Caddy module information.
func (benchNoop) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.wxauth_bench_noop", New: func() caddy.Module { return new(benchNoop) }}
}

// ServeHTTP calls next.
func (benchNoop) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	return next.ServeHTTP(w, r)
}

var _ caddyhttp.MiddlewareHandler = benchNoop{}

// benchHeaders does what the contract asks of any guard once a token is
// known good, and nothing else: it takes the Authorization header out and
// sets the five identity headers of a mini-program user with a unionid,
// their values in one fresh allocation (a shared one would let a later
// handler's in-place edit reach other requests). A request that arrives
// with few headers has its header map grow for them, which is part of
// what a protected request costs whoever checks the token. It exists only
// in this test binary.
type benchHeaders struct{}

// benchIdentity is what benchHeaders sets: wxauth's identity headers for
// the benchmark's user, with values as long as wxmock's.
var benchIdentity = [...]struct{ name, value string }{
	{"X-Wx-Openid", "oBenchAbCdEfGhIjKlMnOpQrStUv"},
	{"X-Wx-Platform", "wechat"},
	{"X-Wx-Surface", "mp"},
	{"X-Wx-Appid", benchAppID},
	{"X-Wx-Unionid", "uBenchAbCdEfGhIjKlMnOpQrStUv"},
}

// CaddyModule returns the Caddy module information.
func (benchHeaders) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.wxauth_bench_headers", New: func() caddy.Module { return new(benchHeaders) }}
}

// ServeHTTP takes the token out, sets the identity headers and calls next.
func (benchHeaders) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	delete(r.Header, "Authorization")
	vals := make([]string, len(benchIdentity))
	for i, h := range benchIdentity {
		vals[i] = h.value
		r.Header[h.name] = vals[i : i+1 : i+1]
	}
	return next.ServeHTTP(w, r)
}

var _ caddyhttp.MiddlewareHandler = benchHeaders{}

// benchCaddyfile has a plain site, a site with a no-op handler, one with
// benchHeaders and a guarded site, each alone on its own port (one Caddy, one server each) and all
// answering with the same respond, so their handler chains differ by one
// handler only. In one site the routes would be tried in order, and Caddy
// 2.11 makes two allocations for every route it tries and passes over,
// which would charge the guarded route for its position, not for wxauth.
func benchCaddyfile(storage string) string {
	return fmt.Sprintf(`{
	admin off
	persist_config off
	auto_https off
	default_bind 127.0.0.1
	grace_period 1ns
	storage file_system %[1]s
	log {
		output discard
	}
}
http://:%[3]s {
	wxmock {
		app_id %[4]s
		app_secret bench-secret
	}
}
http://:%[7]s {
	respond "ok"
}
http://:%[8]s {
	wxauth_bench_noop
	respond "ok"
}
http://:%[9]s {
	wxauth_bench_headers
	respond "ok"
}
http://:%[2]s {
	wxauth {
		app_id %[4]s
		app_secret bench-secret
		api_base http://127.0.0.1:%[3]s
		signing_key %[5]s
	}
	respond "ok"
}
http://:%[6]s {
	wxauth {
		app_id %[4]s
		app_secret bench-secret
		api_base http://127.0.0.1:%[3]s
		signing_key %[5]s
		store memory
	}
	respond "ok"
}
`, storage, benchAppPort, benchMockPort, benchAppID, benchKey, benchMemPort, benchPlainPort, benchNoopPort, benchHdrsPort)
}

// benchEnv is the running benchmark Caddy, shared by all benchmarks.
type benchEnv struct {
	app, mem    *caddyhttp.Server // wxauth with Caddy's storage, with memory
	plain, noop *caddyhttp.Server // respond alone, a no-op handler and respond
	hdrs        *caddyhttp.Server // benchHeaders and respond
	client      *http.Client      // for wxmock's developer endpoints
	token       string            // a valid token from a real login
	claims      *token.Claims     // its claims
	tokens      *token.Tokens     // signs like the handler (same key and app_id)
}

var (
	benchOnce sync.Once
	benchErr  error
	bench     *benchEnv
)

// setupBench loads the benchmark Caddy once per process and logs in.
func setupBench(b *testing.B) *benchEnv {
	b.Helper()
	benchOnce.Do(func() { bench, benchErr = startBench() })
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return bench
}

func startBench() (*benchEnv, error) {
	dir, err := os.MkdirTemp("", "wxauth-bench-")
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(6)
	if err != nil {
		return nil, err
	}
	for i, p := range []*string{&benchAppPort, &benchMockPort, &benchMemPort, &benchPlainPort, &benchNoopPort, &benchHdrsPort} {
		*p = strconv.Itoa(ports[i])
	}
	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(benchCaddyfile(filepath.Join(dir, "storage"))), nil)
	if err != nil {
		return nil, fmt.Errorf("adapting the benchmark Caddyfile: %v", err)
	}
	if err := caddy.Load(cfg, true); err != nil {
		return nil, fmt.Errorf("loading the benchmark Caddy: %v", err)
	}
	app, err := caddy.ActiveContext().App("http")
	if err != nil {
		return nil, err
	}
	e := &benchEnv{client: &http.Client{Timeout: 5 * time.Second}}
	for _, s := range app.(*caddyhttp.App).Servers {
		for _, l := range s.Listen {
			switch {
			case strings.HasSuffix(l, ":"+benchAppPort):
				e.app = s
			case strings.HasSuffix(l, ":"+benchMemPort):
				e.mem = s
			case strings.HasSuffix(l, ":"+benchPlainPort):
				e.plain = s
			case strings.HasSuffix(l, ":"+benchNoopPort):
				e.noop = s
			case strings.HasSuffix(l, ":"+benchHdrsPort):
				e.hdrs = s
			}
		}
	}
	if e.app == nil || e.mem == nil || e.plain == nil || e.noop == nil || e.hdrs == nil {
		return nil, fmt.Errorf("benchmark servers not found in the running http app")
	}
	secret, err := token.ParseSecret(benchKey)
	if err != nil {
		return nil, err
	}
	if e.tokens, err = newTokens(secret); err != nil {
		return nil, err
	}

	code, err := e.code("bench")
	if err != nil {
		return nil, err
	}
	rec := serve(e.app, loginRequest(benchAppPort, code))
	var reply struct{ Token string }
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &reply) != nil || reply.Token == "" {
		return nil, fmt.Errorf("login: %d %s", rec.Code, rec.Body)
	}
	e.token = reply.Token
	if e.claims, err = e.tokens.Verify(e.token); err != nil {
		return nil, fmt.Errorf("the login token does not verify with the benchmark key: %v", err)
	}
	if e.claims.UnionID == "" {
		// benchHeaders sets X-Wx-Unionid: both sites must set as many headers.
		return nil, fmt.Errorf("the benchmark user has no unionid, so wxauth sets one identity header fewer than benchHeaders")
	}

	// The guarded site must really be guarded, and the token accepted.
	if rec := serve(e.app, getRequest(benchAppPort, "/api/me", "")); rec.Code != http.StatusUnauthorized {
		return nil, fmt.Errorf("guarded site without a token: %d, want 401", rec.Code)
	}
	if rec := serve(e.app, getRequest(benchAppPort, "/api/me", e.token)); rec.Code != http.StatusOK || rec.Body.String() != "ok" {
		return nil, fmt.Errorf("guarded site with a token: %d %q", rec.Code, rec.Body)
	}
	return e, nil
}

// newTokens returns a signer like the handler's for one HS256 secret.
func newTokens(secret []byte) (*token.Tokens, error) {
	ring, err := token.NewKeyring(token.Key{ID: "k1", Alg: token.HS256, Secret: secret})
	if err != nil {
		return nil, err
	}
	return token.New(token.Config{Audience: benchAppID}, ring)
}

// code asks wxmock for a wx.login code of user.
func (e *benchEnv) code(user string) (string, error) {
	resp, err := e.client.Get("http://" + benchHost + ":" + benchMockPort + "/wxmock/login?user=" + url.QueryEscape(user))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var r struct{ Code string }
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &r) != nil || r.Code == "" {
		return "", fmt.Errorf("wxmock login: %d %s", resp.StatusCode, body)
	}
	return r.Code, nil
}

// codes fetches n codes for a few users.
func (e *benchEnv) codes(b *testing.B, n int) []string {
	b.Helper()
	out := make([]string, n)
	for i := range out {
		c, err := e.code(fmt.Sprintf("bench%d", i%64))
		if err != nil {
			b.Fatal(err)
		}
		out[i] = c
	}
	return out
}

// getRequest is a GET like a mini-program's wx.request, with tok as Bearer
// token when it is not empty. Every site gets the same headers.
func getRequest(port, path, tok string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "http://"+benchHost+":"+port+path, nil)
	r.RemoteAddr = "127.0.0.1:40000"
	r.Header.Set("User-Agent", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) MicroMessenger/8.0.50 MiniProgramEnv/iOS")
	r.Header.Set("Accept", "*/*")
	r.Header.Set("Accept-Encoding", "gzip, deflate, br")
	r.Header.Set("Referer", "https://servicewechat.com/"+benchAppID+"/1/page-frame.html")
	if tok != "" {
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	return r
}

func loginRequest(port, code string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "http://"+benchHost+":"+port+"/wx/login", strings.NewReader(`{"code":"`+code+`"}`))
	r.RemoteAddr = "127.0.0.1:40000"
	r.Header.Set("Content-Type", "application/json")
	return r
}

// serve runs one request through the server's whole handler chain.
func serve(s *caddyhttp.Server, r *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, r)
	return rec
}

// serveCopy serves a fresh copy of tmpl (a server gets a new request, with
// its own header map, every time) and checks the status.
func serveCopy(b *testing.B, s *caddyhttp.Server, tmpl *http.Request, status int) {
	rec := serve(s, tmpl.Clone(context.Background()))
	if rec.Code != status {
		b.Fatalf("%s: status %d, want %d: %s", tmpl.URL.Path, rec.Code, status, rec.Body)
	}
}

// firstUseSeq numbers the tokens of wxauth-first-use, so that no token is
// used twice across the framework's runs and -count.
var firstUseSeq int

// BenchmarkProtected is the cost of one request through a server's whole
// handler chain: the plain site, the no-op site, the guarded site with a
// token already verified (the steady state), and the first use of each token
// (signature check, session lookup in Caddy's file storage, cache insert).
func BenchmarkProtected(b *testing.B) {
	e := setupBench(b)
	b.Run("plain", func(b *testing.B) {
		tmpl := getRequest(benchPlainPort, "/api/me", e.token)
		b.ReportAllocs()
		for b.Loop() {
			serveCopy(b, e.plain, tmpl, http.StatusOK)
		}
	})
	b.Run("noop", func(b *testing.B) {
		tmpl := getRequest(benchNoopPort, "/api/me", e.token)
		b.ReportAllocs()
		for b.Loop() {
			serveCopy(b, e.noop, tmpl, http.StatusOK)
		}
	})
	b.Run("wxauth", func(b *testing.B) {
		tmpl := getRequest(benchAppPort, "/api/me", e.token)
		b.ReportAllocs()
		for b.Loop() {
			serveCopy(b, e.app, tmpl, http.StatusOK)
		}
	})
	b.Run("wxauth-first-use", func(b *testing.B) {
		// Fresh tokens of the same session, made outside the timer.
		const batch = 512
		tmpls := make([]*http.Request, 0, batch)
		now := time.Now()
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if len(tmpls) == 0 {
				b.StopTimer()
				for range min(batch, b.N-i) {
					c := e.claims
					firstUseSeq++
					tok, _, err := e.tokens.Issue(c.Subject, c.UnionID, c.SessionID, map[string]any{"n": firstUseSeq}, now)
					if err != nil {
						b.Fatal(err)
					}
					tmpls = append(tmpls, getRequest(benchAppPort, "/api/me", tok))
				}
				b.StartTimer()
			}
			serveCopy(b, e.app, tmpls[len(tmpls)-1], http.StatusOK)
			tmpls = tmpls[:len(tmpls)-1]
		}
	})
}

// BenchmarkProtectedOverhead measures what wxauth adds: plain and guarded
// requests interleaved in rounds, paired per round, and the median of the
// per-round differences reported, so drift and background noise hit both
// sides alike. The no-op and headers sites are measured in the same rounds;
// the order of the four cycles through all permutations. One iteration is
// one request of each kind; the default ns/op is the time of such a
// quadruple including the bookkeeping; the figures to read are the custom
// metrics:
//
//	added-*       wxauth site minus plain site: the figure budgetNs and budgetAllocs bound
//	own-*         wxauth site minus no-op site: wxauth's own work
//	floor-*       no-op site minus plain site: Caddy's cost of any handler
//	headers-*     headers site minus plain site: a handler that only takes the
//	              token out and sets the identity headers (benchHeaders)
//	check-*       wxauth site minus headers site: wxauth's work beyond that
func BenchmarkProtectedOverhead(b *testing.B) {
	e := setupBench(b)
	const (
		plain = iota
		noop
		hdrs
		guarded
		sites
	)
	srvs := [sites]*caddyhttp.Server{e.plain, e.noop, e.hdrs, e.app}
	tmpls := [sites]*http.Request{
		getRequest(benchPlainPort, "/api/me", e.token),
		getRequest(benchNoopPort, "/api/me", e.token),
		getRequest(benchHdrsPort, "/api/me", e.token),
		getRequest(benchAppPort, "/api/me", e.token),
	}
	// Warm every path (token cache, pools) before measuring.
	for range 200 {
		for k := range tmpls {
			serveCopy(b, srvs[k], tmpls[k], http.StatusOK)
		}
	}

	var ms runtime.MemStats
	measure := func(k, n int) (ns, allocs float64) {
		runtime.ReadMemStats(&ms)
		m0 := ms.Mallocs
		t0 := time.Now()
		for range n {
			serveCopy(b, srvs[k], tmpls[k], http.StatusOK)
		}
		d := time.Since(t0)
		runtime.ReadMemStats(&ms)
		return float64(d.Nanoseconds()) / float64(n), float64(ms.Mallocs-m0) / float64(n)
	}
	orders := permutations(sites)

	const batch = 100
	var ns, allocs [sites][]float64
	var addNs, ownNs, floorNs, hdrsNs, checkNs, addAllocs, ownAllocs, floorAllocs, hdrsAllocs, checkAllocs []float64
	b.ResetTimer()
	for done, round := 0, 0; done < b.N; round++ {
		n := min(batch, b.N-done)
		var rn, ra [sites]float64
		for _, k := range orders[round%len(orders)] {
			rn[k], ra[k] = measure(k, n)
			ns[k], allocs[k] = append(ns[k], rn[k]), append(allocs[k], ra[k])
		}
		addNs, addAllocs = append(addNs, rn[guarded]-rn[plain]), append(addAllocs, ra[guarded]-ra[plain])
		ownNs, ownAllocs = append(ownNs, rn[guarded]-rn[noop]), append(ownAllocs, ra[guarded]-ra[noop])
		floorNs, floorAllocs = append(floorNs, rn[noop]-rn[plain]), append(floorAllocs, ra[noop]-ra[plain])
		hdrsNs, hdrsAllocs = append(hdrsNs, rn[hdrs]-rn[plain]), append(hdrsAllocs, ra[hdrs]-ra[plain])
		checkNs, checkAllocs = append(checkNs, rn[guarded]-rn[hdrs]), append(checkAllocs, ra[guarded]-ra[hdrs])
		done += n
	}
	b.StopTimer()

	mAdd, mAddAllocs := median(addNs), median(addAllocs)
	b.ReportMetric(mAdd, "added-ns/req")
	b.ReportMetric(mAddAllocs, "added-allocs/req")
	b.ReportMetric(median(ownNs), "own-ns/req")
	b.ReportMetric(median(ownAllocs), "own-allocs/req")
	b.ReportMetric(median(floorNs), "floor-ns/req")
	b.ReportMetric(median(floorAllocs), "floor-allocs/req")
	b.ReportMetric(median(hdrsNs), "headers-ns/req")
	b.ReportMetric(median(hdrsAllocs), "headers-allocs/req")
	b.ReportMetric(median(checkNs), "check-ns/req")
	b.ReportMetric(median(checkAllocs), "check-allocs/req")
	b.ReportMetric(median(ns[plain]), "plain-ns/req")
	b.ReportMetric(median(ns[guarded]), "wxauth-ns/req")
	b.ReportMetric(median(allocs[plain]), "plain-allocs/req")
	b.ReportMetric(median(allocs[guarded]), "wxauth-allocs/req")
	b.ReportMetric(median(ns[plain])/median(ns[guarded]), "throughput-ratio")
	if len(addNs) < 20 {
		return // too few rounds to judge (the framework's first short run)
	}
	met := mAdd <= budgetNs && mAddAllocs <= budgetAllocs
	b.Logf("%d rounds of %d: wxauth adds %.0f ns and %.1f allocs per request (budget %d ns, %d allocs; met: %v); of which Caddy's cost of any handler %.0f ns, %.1f allocs; taking the token out and setting the identity headers alone %.0f ns, %.1f allocs",
		len(addNs), batch, mAdd, mAddAllocs, budgetNs, budgetAllocs, met, median(floorNs), median(floorAllocs), median(hdrsNs), median(hdrsAllocs))
	// Allocations are exact, so an allocation beyond what the headers site
	// makes fails the benchmark. The budget's own bound is reported, not
	// enforced: this request arrives with four headers besides the token,
	// and its header map grows (3 allocations) for the five identity
	// headers whoever sets them, which puts the headers site itself over
	// budgetAllocs (see BENCHMARKS.md). Time is noisy on a shared machine,
	// so it is reported, not enforced.
	if c := median(checkAllocs); c > 0.5 {
		b.Errorf("wxauth makes %.1f allocations per request beyond taking the token out and setting the identity headers", c)
	}
}

// permutations returns every order of 0..n-1, so that rounds cycling
// through them put each site before and after each other alike.
func permutations(n int) [][]int {
	if n == 0 {
		return [][]int{{}}
	}
	var out [][]int
	for _, p := range permutations(n - 1) {
		for i := 0; i <= len(p); i++ {
			q := append(append(append(make([]int, 0, n), p[:i]...), n-1), p[i:]...)
			out = append(out, q)
		}
	}
	return out
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// BenchmarkLogin is POST /wx/login through the site's handler chain, with
// code2Session answered by wxmock over loopback HTTP, and the session kept
// in Caddy's file storage or in memory. Codes are fetched outside the timer.
func BenchmarkLogin(b *testing.B) {
	e := setupBench(b)
	for _, c := range []struct {
		name string
		srv  *caddyhttp.Server
		port string
	}{
		{"store=caddy", e.app, benchAppPort},
		{"store=memory", e.mem, benchMemPort},
	} {
		b.Run(c.name, func(b *testing.B) {
			const batch = 256
			var codes []string
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if len(codes) == 0 {
					b.StopTimer()
					codes = e.codes(b, min(batch, b.N-i))
					b.StartTimer()
				}
				rec := serve(c.srv, loginRequest(c.port, codes[0]))
				codes = codes[1:]
				if rec.Code != http.StatusOK {
					b.Fatalf("login: %d %s", rec.Code, rec.Body)
				}
			}
		})
	}
}

// BenchmarkInvalidToken shows that refused tokens are cheap: junk is refused
// before any decoding, and only well-formed tokens pay for a signature check.
func BenchmarkInvalidToken(b *testing.B) {
	e := setupBench(b)
	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	junk := func(n int) string {
		s := make([]byte, n)
		for i := range s {
			s[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return string(s)
	}
	other, err := token.ParseSecret(otherKey)
	if err != nil {
		b.Fatal(err)
	}
	forger, err := newTokens(other)
	if err != nil {
		b.Fatal(err)
	}
	c := e.claims
	forged, _, err := forger.Issue(c.Subject, c.UnionID, c.SessionID, nil, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	expired, _, err := e.tokens.Issue(c.Subject, c.UnionID, c.SessionID, nil, time.Now().Add(-3*time.Hour))
	if err != nil {
		b.Fatal(err)
	}
	cases := []struct{ name, tok string }{
		{"missing", ""},
		{"junk-16", junk(16)},
		{"junk-256", junk(256)},
		{"junk-4096", junk(4096)},
		{"junk-8192", junk(8192)}, // over token.MaxTokenLen
		{"dotted-256", junk(80) + "." + junk(120) + "." + junk(54)},
		{"forged-signature", forged},
		{"expired", expired},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			tmpl := getRequest(benchAppPort, "/api/me", tc.tok)
			b.ReportAllocs()
			for b.Loop() {
				serveCopy(b, e.app, tmpl, http.StatusUnauthorized)
			}
		})
	}
}
