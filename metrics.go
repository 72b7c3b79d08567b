package wxauth

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/wxauth/caddy-wxauth/internal/apierr"
	"github.com/wxauth/caddy-wxauth/internal/guard"
	"github.com/wxauth/caddy-wxauth/internal/hook"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wxauth/caddy-wxauth/wechat"
)

// metricSet is wxauth's collectors, with the hot path's counters resolved
// once so that counting allocates nothing.
type metricSet struct {
	logins        *prometheus.CounterVec
	tokenChecks   *prometheus.CounterVec
	wechatLatency *prometheus.HistogramVec
	tokenRefresh  prometheus.Counter
	tokenForced   prometheus.Counter
	storeErrors   *prometheus.CounterVec
	wechatConfig  *prometheus.CounterVec
	platformConf  *prometheus.CounterVec
	platformTime  *prometheus.HistogramVec
	panics        *prometheus.CounterVec
	hookLatency   *prometheus.HistogramVec
	hookFailures  *prometheus.CounterVec

	checkOK, checkCached, checkMissing, checkInvalid, checkAnonymous prometheus.Counter
	storeEndpoint, storeTokenCheck, storeFeed, storeLoginLimit       prometheus.Counter
}

// metrics are process-wide and registered on each config's registry, so a
// reload or several wxauth handlers share one set of series.
var metrics = resolveCounters(metricSet{
	logins: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "wxauth", Name: "logins_total",
		Help: "Logins by platform (wechat, qq, douyin, alipay, baidu, kuaishou; empty for a request that named none it serves), result (ok, invalid_code, risky_user, rate_limited, upstream_error, store_unavailable, hook_failed, refused_by_app, invalid_request, ...) and the platform's errcode (empty when it gave none).",
	}, []string{"platform", "result", "errcode"}),
	tokenChecks: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "wxauth", Name: "token_checks_total",
		Help: "Token checks on protected requests by result: ok (verified), cached, missing, invalid, anonymous.",
	}, []string{"result"}),
	wechatLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "wxauth", Name: "wechat_request_duration_seconds",
		Help:    "Latency of each HTTP attempt to the WeChat API, by API and outcome.",
		Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"api", "outcome"}),
	tokenRefresh: prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "wxauth", Name: "access_token_refreshes_total",
		Help: "access_token fetches from WeChat's stable_token API.",
	}),
	tokenForced: prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "wxauth", Name: "access_token_forced_refreshes_total",
		Help: "stable_token calls with force_refresh: WeChat handed back a token that was refused (WeChat allows 20 a day).",
	}),
	storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "wxauth", Name: "store_errors_total",
		Help: "Failures to reach the session store, by where they happened: endpoint (answered 503 store_unavailable), token_check (a token's session could not be read: a token this instance confirmed before is accepted, any other refused with 503), feed (reading the change feed, retried), login_limit (a login counted by this instance alone).",
	}, []string{"where"}),
	wechatConfig: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "wxauth", Name: "wechat_config_errors_total",
		Help: "WeChat answers that mean the server is misconfigured (answered 502 wechat_config), by WeChat's errcode: 40013, 40125, 40164, 41002, 41004, 48001, 89501, 89503, 89506, 89507.",
	}, []string{"errcode"}),
	platformConf: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "wxauth", Name: "platform_config_errors_total",
		Help: "Answers of the other mini-program platforms that mean the server's app there is misconfigured (answered 502 platform_config), by platform and its code.",
	}, []string{"platform", "errcode"}),
	platformTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "wxauth", Name: "platform_request_duration_seconds",
		Help:    "Calls to the other mini-program platforms' APIs (login, Alipay's gateway), by platform and outcome (ok: an answer below HTTP 500; error: none, or a 5xx), until the answer began.",
		Buckets: prometheus.DefBuckets,
	}, []string{"platform", "outcome"}),
	panics: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "wxauth", Name: "background_panics_total",
		Help: "Panics recovered in background work, by job (feed, retry, sweep, keys, recheck, event); a long-running job is started again after a backoff.",
	}, []string{"job"}),
	hookLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "wxauth", Name: "app_hook_duration_seconds",
		Help:    "Time the app hook took to answer each event (login, phone, decrypt, logout), failures included.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"event"}),
	hookFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "wxauth", Name: "app_hook_failures_total",
		Help: "Events the app hook did not take, by event and reason: timeout, canceled (the client left first), unreachable, status (not 2xx), bad_answer (not valid claims or refusal), refused (the app's 403 refusal).",
	}, []string{"event", "reason"}),
})

// resolveCounters resolves the hot path's labelled counters once.
func resolveCounters(m metricSet) metricSet {
	c := m.tokenChecks
	m.checkOK = c.WithLabelValues("ok")
	m.checkCached = c.WithLabelValues("cached")
	m.checkMissing = c.WithLabelValues("missing")
	m.checkInvalid = c.WithLabelValues("invalid")
	m.checkAnonymous = c.WithLabelValues("anonymous")
	s := m.storeErrors
	m.storeEndpoint = s.WithLabelValues("endpoint")
	m.storeTokenCheck = s.WithLabelValues("token_check")
	m.storeFeed = s.WithLabelValues("feed")
	m.storeLoginLimit = s.WithLabelValues("login_limit")
	return m
}

// guardCounters are the token check's counters.
func (m *metricSet) guardCounters() guard.Counters {
	return guard.Counters{OK: m.checkOK, Cached: m.checkCached, Missing: m.checkMissing,
		Invalid: m.checkInvalid, Anonymous: m.checkAnonymous, StoreTrouble: m.storeTokenCheck,
		Panics: m.panics.WithLabelValues("recheck")}
}

// registerMetrics adds the collectors to a config's registry.
func registerMetrics(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{metrics.logins, metrics.tokenChecks, metrics.wechatLatency, metrics.tokenRefresh, metrics.tokenForced, metrics.storeErrors, metrics.wechatConfig, metrics.platformConf, metrics.platformTime, metrics.panics,
		metrics.hookLatency, metrics.hookFailures} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return err
			}
		}
	}
	return nil
}

// observeWeChat is the WeChat client's per-attempt hook.
func observeWeChat(api string, d time.Duration, err error) {
	outcome := "ok"
	var we *wechat.Error
	switch {
	case err == nil:
	case errors.As(err, &we):
		outcome = "errcode"
	default:
		outcome = "error"
	}
	metrics.wechatLatency.WithLabelValues(api, outcome).Observe(d.Seconds())
}

// countLogin records a login's result on platform ("" when the request
// named none the handler serves: the label takes only served names).
func countLogin(platform string, err error) {
	if err == nil {
		metrics.logins.WithLabelValues(platform, "ok", "").Inc()
		return
	}
	result, code := "error", ""
	var ae *apierr.Error
	switch {
	case errors.As(err, &ae) && ae.RefusedBy != "":
		// The app names its refusals freely: one series for all of them.
		result = "refused_by_" + ae.RefusedBy
	case errors.As(err, &ae):
		result = ae.Code
		code = ae.ErrCodeString()
	}
	metrics.logins.WithLabelValues(platform, result, code).Inc()
}

// countWeChatConfigError counts a WeChat errcode that means the server is
// misconfigured; the provider sends only the few such codes.
func countWeChatConfigError(errcode int) {
	metrics.wechatConfig.WithLabelValues(strconv.Itoa(errcode)).Inc()
}

// countPlatformConfigError counts an answer of another platform that means
// the server's app there is misconfigured.
func countPlatformConfigError(platform, errcode string) {
	metrics.platformConf.WithLabelValues(platform, errcode).Inc()
}

// observePlatform measures one call to another platform's API.
func observePlatform(platform string, d time.Duration, ok bool) {
	outcome := "ok"
	if !ok {
		outcome = "error"
	}
	metrics.platformTime.WithLabelValues(platform, outcome).Observe(d.Seconds())
}

// countPanic counts a recovered panic of a background job, labelled by the
// job's kind (its name's first word), never by an app's store key.
func countPanic(job string) {
	kind, _, _ := strings.Cut(job, " ")
	metrics.panics.WithLabelValues(kind).Inc()
}

// observeHook records one event sent to the app hook: how long it took and,
// when it failed, the kind of failure (hook.Reason, a fixed set).
func observeHook(event string, d time.Duration, err error) {
	metrics.hookLatency.WithLabelValues(event).Observe(d.Seconds())
	if reason := hook.Reason(err); reason != "" {
		metrics.hookFailures.WithLabelValues(event, reason).Inc()
	}
}
