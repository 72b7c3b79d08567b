package wxauth

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

const dashboardFile = "examples/grafana/wxauth-dashboard.json"

// describingRegistry is a fresh registry, pedantic like the one Caddy gives
// each config, that also keeps the name of every metric registered on it:
// Gather lists a vector only once it has a child, and the dashboard may
// chart series that have not happened yet.
type describingRegistry struct {
	*prometheus.Registry
	// names maps each registered metric name to whether it is a histogram
	// or summary (so its _bucket, _sum and _count series exist).
	names map[string]bool
}

func newDescribingRegistry() *describingRegistry {
	return &describingRegistry{Registry: prometheus.NewPedanticRegistry(), names: map[string]bool{}}
}

// descName reads the metric name out of a Desc, which has no accessor for it.
var descName = regexp.MustCompile(`fqName: ("(?:[^"\\]|\\.)*")`)

func (r *describingRegistry) Register(c prometheus.Collector) error {
	if err := r.Registry.Register(c); err != nil {
		return err
	}
	_, observer := c.(prometheus.ObserverVec)
	if _, ok := c.(prometheus.Observer); ok {
		observer = true
	}
	ch := make(chan *prometheus.Desc)
	go func() {
		c.Describe(ch)
		close(ch)
	}()
	var descs []*prometheus.Desc
	for d := range ch {
		descs = append(descs, d)
	}
	for _, d := range descs {
		m := descName.FindStringSubmatch(d.String())
		if m == nil {
			return fmt.Errorf("no metric name in %s", d)
		}
		name, err := strconv.Unquote(m[1])
		if err != nil {
			return err
		}
		r.names[name] = observer
	}
	return nil
}

func (r *describingRegistry) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// registeredMetrics registers the plugin's metrics the way a Caddy config
// does, on a fresh registry, and returns their names.
func registeredMetrics(t *testing.T) map[string]bool {
	t.Helper()
	reg := newDescribingRegistry()
	if err := registerMetrics(reg); err != nil {
		t.Fatalf("registerMetrics: %v", err)
	}
	if len(reg.names) == 0 {
		t.Fatal("registerMetrics registered nothing")
	}
	// Whatever the registry exposes must be among the names read from the
	// descriptors, or reading them went wrong.
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	if len(families) == 0 {
		t.Fatal("the registry exposes no metric family")
	}
	for _, f := range families {
		if _, ok := reg.names[f.GetName()]; !ok {
			t.Fatalf("gathered %q, which was not among the described names %v", f.GetName(), reg.names)
		}
	}
	return reg.names
}

var (
	promStrings  = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`")
	promMatchers = regexp.MustCompile(`\{[^}]*\}`)
	promRanges   = regexp.MustCompile(`\[[^\]]*\]`)
	promGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promTokens   = regexp.MustCompile(`\$\w+|[0-9][0-9A-Za-z_.]*|[A-Za-z_:][A-Za-z0-9_:]*`)
	promKeywords = map[string]bool{
		"and": true, "or": true, "unless": true, "bool": true, "offset": true,
		"by": true, "without": true, "on": true, "ignoring": true,
		"group_left": true, "group_right": true, "inf": true, "nan": true,
	}
)

// promMetricNames returns the metric names a PromQL expression selects:
// the identifiers left once strings, label matchers, ranges and grouping
// labels are gone, except functions, aggregations, keywords, numbers and
// Grafana variables.
func promMetricNames(expr string) []string {
	expr = promStrings.ReplaceAllString(expr, `""`)
	expr = promMatchers.ReplaceAllString(expr, " ")
	expr = promRanges.ReplaceAllString(expr, " ")
	expr = promGrouping.ReplaceAllString(expr, " ")
	var names []string
	for _, loc := range promTokens.FindAllStringIndex(expr, -1) {
		tok := expr[loc[0]:loc[1]]
		switch {
		case tok[0] == '$', tok[0] >= '0' && tok[0] <= '9', promKeywords[strings.ToLower(tok)]:
			continue
		case strings.HasPrefix(strings.TrimLeft(expr[loc[1]:], " \t\n"), "("):
			continue // a function or an aggregation
		}
		if !slices.Contains(names, tok) {
			names = append(names, tok)
		}
	}
	return names
}

func TestDashboardPromMetricNames(t *testing.T) {
	for _, c := range []struct {
		expr string
		want []string
	}{
		{`sum by (result) (rate(wxauth_logins_total{job=~"$job"}[$__rate_interval]))`, []string{"wxauth_logins_total"}},
		{`histogram_quantile(0.99, sum by (le, api) (rate(a_bucket{x="}"}[5m])))`, []string{"a_bucket"}},
		{`sum(rate(a[1m])) by (le) / ignoring(result) group_left sum(b) offset 5m`, []string{"a", "b"}},
		{`a and on(job) b or bool c unless d_total > 1e3`, []string{"a", "b", "c", "d_total"}},
		{`count(up)`, []string{"up"}},
		{`vector(1)`, nil},
	} {
		if got := promMetricNames(c.expr); !slices.Equal(got, c.want) {
			t.Errorf("promMetricNames(%q) = %q, want %q", c.expr, got, c.want)
		}
	}
}

// dashboardPanel is what the test reads of a Grafana panel.
type dashboardPanel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	GridPos *struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []dashboardPanel `json:"panels"` // a row's panels
}

type dashboard struct {
	UID           string           `json:"uid"`
	Title         string           `json:"title"`
	SchemaVersion int              `json:"schemaVersion"`
	Panels        []dashboardPanel `json:"panels"`
	Templating    struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

// dashboardQuery is one PromQL expression of the dashboard and where it is.
type dashboardQuery struct{ where, expr string }

func loadDashboard(t *testing.T) (*dashboard, []dashboardQuery) {
	t.Helper()
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s is not valid JSON: %v", dashboardFile, err)
	}
	if d.UID == "" || d.Title == "" || d.SchemaVersion == 0 {
		t.Fatalf("%s lacks uid, title or schemaVersion", dashboardFile)
	}

	var queries []dashboardQuery
	hasDatasource := false
	for _, v := range d.Templating.List {
		switch v.Type {
		case "datasource":
			var q string
			if json.Unmarshal(v.Query, &q) == nil && q == "prometheus" && v.Name == "datasource" {
				hasDatasource = true
			}
		case "query":
			// A query variable's query is a string or {"query": "..."}.
			var q string
			if json.Unmarshal(v.Query, &q) != nil {
				var obj struct{ Query string }
				if err := json.Unmarshal(v.Query, &obj); err != nil {
					t.Fatalf("variable %s: unreadable query: %v", v.Name, err)
				}
				q = obj.Query
			}
			// label_values(<selector>, <label>): only the selector names metrics.
			if inner, ok := strings.CutPrefix(q, "label_values("); ok {
				if i := strings.LastIndex(inner, ","); i >= 0 {
					q = inner[:i]
				}
			}
			queries = append(queries, dashboardQuery{"variable " + v.Name, q})
		}
	}
	if !hasDatasource {
		t.Fatal(`the dashboard has no Prometheus datasource variable named "datasource"`)
	}

	ids := map[int]bool{}
	var walk func(ps []dashboardPanel)
	walk = func(ps []dashboardPanel) {
		for _, p := range ps {
			if ids[p.ID] {
				t.Errorf("panel id %d used twice", p.ID)
			}
			ids[p.ID] = true
			if p.GridPos == nil || p.GridPos.W == 0 || p.GridPos.H == 0 {
				t.Errorf("panel %q has no gridPos", p.Title)
			}
			if p.Type == "row" {
				walk(p.Panels)
				continue
			}
			if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q does not use the $datasource variable", p.Title)
			}
			if len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			for _, tg := range p.Targets {
				queries = append(queries, dashboardQuery{"panel " + strconv.Quote(p.Title) + " query " + tg.RefID, tg.Expr})
			}
		}
	}
	walk(d.Panels)
	return &d, queries
}

// TestDashboardMetricsExist fails when the Grafana dashboard charts a metric
// that the plugin does not register (a typo, or a metric renamed or removed).
func TestDashboardMetricsExist(t *testing.T) {
	known := registeredMetrics(t)
	_, queries := loadDashboard(t)
	if len(queries) == 0 {
		t.Fatal("the dashboard has no queries")
	}
	used := map[string]bool{}
	for _, q := range queries {
		names := promMetricNames(q.expr)
		if len(names) == 0 {
			t.Errorf("%s selects no metric: %s", q.where, q.expr)
		}
		for _, name := range names {
			base := name
			if _, ok := known[name]; !ok {
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					if b, ok := strings.CutSuffix(name, suffix); ok && known[b] {
						base = b
					}
				}
			}
			if _, ok := known[base]; !ok {
				t.Errorf("%s uses %s, which the plugin does not register (registered: %v)", q.where, name, slices.Sorted(maps.Keys(known)))
				continue
			}
			used[base] = true
		}
	}
	for _, name := range chartedMetrics {
		if !used[name] {
			t.Errorf("the dashboard has no panel for %s", name)
		}
	}
	t.Logf("the dashboard's %d queries use %d of the %d registered metrics", len(queries), len(used), len(known))
}

// chartedMetrics must each have a panel on the dashboard.
var chartedMetrics = []string{
	"wxauth_logins_total", "wxauth_token_checks_total", "wxauth_wechat_request_duration_seconds",
	"wxauth_store_errors_total", "wxauth_access_token_refreshes_total", "wxauth_access_token_forced_refreshes_total",
	"wxauth_app_hook_duration_seconds", "wxauth_app_hook_failures_total",
}
