// Package platform is what the providers of the mini-program platforms
// other than WeChat (QQ, Douyin, Baidu, Kuaishou) share: the checked
// configuration, one bounded HTTP call to the platform's API, the mapping of
// a platform's refusal onto the contract's errors (with the config errors
// logged and counted), and the opening of user data sealed like WeChat's.
//
// It knows nothing of Caddy. Secrets (app secret, session keys, login
// codes) never reach an error or a log line it writes.
package platform

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/wxauth/caddy-wxauth/internal/apierr"
	"github.com/wxauth/caddy-wxauth/internal/clock"
	"github.com/wxauth/caddy-wxauth/internal/login"
	"github.com/wxauth/caddy-wxauth/internal/throttle"
)

// DefaultTimeout bounds each call to a platform unless the config sets one.
const DefaultTimeout = 5 * time.Second

const (
	// maxReply bounds a platform's answer; login answers are a few hundred
	// bytes.
	maxReply = 1 << 20
	// connectTimeout bounds the dial and the TLS handshake of the default
	// transport.
	connectTimeout = 5 * time.Second
)

// Client calls one platform's API for one app. It is safe for concurrent
// use.
type Client struct {
	// Name is the platform's name in errors and metrics ("qq").
	Name string
	// Label is the platform's name in messages for humans ("QQ").
	Label string
	// AppID is the app's id on the platform (Baidu: the AppKey).
	AppID string
	// Secret is the app's secret; it is sent to the platform only.
	Secret string

	base      string
	hc        *http.Client
	timeout   time.Duration
	configErr func(errcode string)
	now       clock.Clock
	logGate   *throttle.Gate // config errcodes logged at ERROR
}

// NewClient checks cfg and returns the client of the platform name (Label
// in messages), whose API is at defaultBase unless cfg.APIBase says
// otherwise. Its errors name the platform block's field that is wrong.
func NewClient(name, label, defaultBase string, cfg login.PlatformConfig) (*Client, error) {
	switch {
	case strings.TrimSpace(cfg.AppID) == "":
		return nil, errors.New(name + ": app_id is required")
	case strings.TrimSpace(cfg.AppSecret) == "":
		return nil, errors.New(name + ": app_secret is required")
	case cfg.Timeout < 0:
		return nil, errors.New(name + ": the timeout must not be negative")
	}
	base := cfg.APIBase
	if base == "" {
		base = defaultBase
	}
	if err := checkBase(base); err != nil {
		return nil, errors.New(name + ": api_base " + strconv.Quote(base) + " " + err.Error())
	}
	c := &Client{
		Name: name, Label: label, AppID: cfg.AppID, Secret: cfg.AppSecret,
		base: strings.TrimRight(base, "/"), timeout: cfg.Timeout, configErr: cfg.ConfigError,
		now: clock.Real,
	}
	// Through c.now, which tests replace.
	c.logGate = throttle.New(configLogEvery, func() time.Time { return c.now() })
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	}
	var hc http.Client
	if cfg.Client != nil {
		hc = *cfg.Client // a copy: the caller's client stays untouched
	} else {
		hc.Transport = &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second}).DialContext,
			ForceAttemptHTTP2:     true,
			TLSHandshakeTimeout:   connectTimeout,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConnsPerHost:   16,
			ResponseHeaderTimeout: 10 * time.Second,
		}
	}
	// A redirect would carry the secret, sent in a form or a query, to
	// another place.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.hc = &hc
	return c, nil
}

// String names the client's platform and app, so that printing a client
// never prints its secret.
func (c *Client) String() string { return c.Name + " app " + c.AppID }

// checkBase reports why base is not an http(s) origin to call, if it is not.
func checkBase(base string) error {
	u, err := url.Parse(base)
	switch {
	case err != nil:
		return errors.New("is not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return errors.New("must start with https:// (or http:// for a stand-in)")
	case u.Host == "":
		return errors.New("has no host")
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return errors.New("must hold no user, query or fragment")
	}
	return nil
}

// reply is a platform's answer: its HTTP status and body.
type reply struct {
	status int
	body   []byte
}

// Get calls path with query and decodes the answer into out (see decode).
func (c *Client) Get(ctx context.Context, log *zap.Logger, path string, query url.Values, out any) error {
	r, err := c.do(ctx, log, http.MethodGet, path+"?"+query.Encode(), "", nil)
	return c.decode(r, err, out)
}

// PostForm posts form to path, url-encoded, and decodes the answer into
// out (see decode).
func (c *Client) PostForm(ctx context.Context, log *zap.Logger, path string, form url.Values, out any) error {
	r, err := c.do(ctx, log, http.MethodPost, path, "application/x-www-form-urlencoded", []byte(form.Encode()))
	return c.decode(r, err, out)
}

// PostJSON posts body to path as JSON and decodes the answer into out (see
// decode).
func (c *Client) PostJSON(ctx context.Context, log *zap.Logger, path string, body, out any) error {
	payload, err := json.Marshal(body)
	if err != nil {
		return c.Upstream("could not be asked: " + err.Error())
	}
	r, err := c.do(ctx, log, http.MethodPost, path, "application/json", payload)
	return c.decode(r, err, out)
}

// do makes one request within the client's timeout. Its errors are the
// contract's upstream_error, without the URL (a GET's query holds the
// secret).
func (c *Client) do(ctx context.Context, log *zap.Logger, method, target, contentType string, payload []byte) (reply, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+target, body)
	if err != nil {
		return reply{}, c.Upstream("could not be asked")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "caddy-wxauth")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return reply{}, c.transportError(ctx, log, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxReply+1))
	switch {
	case err != nil:
		return reply{}, c.transportError(ctx, log, err)
	case len(data) > maxReply:
		return reply{}, c.Upstream("answered with more than 1 MiB")
	}
	return reply{status: resp.StatusCode, body: data}, nil
}

// transportError is the upstream_error of a call that got no whole answer;
// the cause goes to log, without the URL (a *url.Error quotes it, and a
// GET's query holds the secret).
func (c *Client) transportError(ctx context.Context, log *zap.Logger, err error) *apierr.Error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if log != nil {
		log.Warn(c.Label+" could not be asked", zap.String("platform", c.Name), zap.String("error", c.scrub(err.Error(), nil)))
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		// 502 as the contract says for a timeout, not 504.
		return c.Upstream("did not answer in time")
	}
	return c.Upstream("could not be reached")
}

// decode reads r's body, a JSON object, into v, unless the call failed
// with err. An answer of another kind (a gateway's HTML page, a 3xx or 5xx, bad
// JSON) is upstream_error. A 4xx with a JSON object is decoded: platforms
// answer some refusals that way.
func (c *Client) decode(r reply, err error, v any) error {
	if err != nil {
		return err
	}
	body := bytes.TrimSpace(r.body)
	switch {
	case r.status/100 != 2 && r.status/100 != 4:
		return c.Upstream("answered HTTP " + strconv.Itoa(r.status))
	case len(body) == 0 || body[0] != '{':
		return c.Upstream("answered something that is not a JSON object")
	}
	if json.Unmarshal(body, v) != nil {
		return c.Upstream("answered JSON of an unexpected shape")
	}
	return nil
}

// Upstream is the contract's upstream_error: the platform could not be
// reached or gave an unusable answer. what says what the platform did.
func (c *Client) Upstream(what string) *apierr.Error {
	return apierr.New(http.StatusBadGateway, "upstream_error", c.Label+" "+what)
}
