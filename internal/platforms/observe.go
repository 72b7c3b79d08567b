package platforms

import (
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
