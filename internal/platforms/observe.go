package platforms

import (
	"net"
	"net/http"
	"time"

	"github.com/wxauth/caddy-wxauth/internal/clock"
)

// observed is the transport of a platform's calls: each one is measured,
// so that a slow or failing platform shows in the metrics by name.
type observed struct {
	platform string
	observe  func(platform string, d time.Duration, ok bool)
	next     http.RoundTripper
}

func (o observed) RoundTrip(r *http.Request) (*http.Response, error) {
	start := clock.Real()
	resp, err := o.next.RoundTrip(r)
	o.observe(o.platform, clock.Real().Sub(start), err == nil && resp.StatusCode < http.StatusInternalServerError)
	return resp, err
}

// transport is what a platform's calls go through: bounded connects and
// waits for headers, and no proxy but the environment's.
func transport() *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 3 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   3 * time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   16,
		ResponseHeaderTimeout: 10 * time.Second,
	}
}
