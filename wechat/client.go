package wechat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// DefaultBaseURL is the WeChat server API.
const DefaultBaseURL = "https://api.weixin.qq.com"

// DefaultTimeout bounds each HTTP attempt unless Config.Timeout is set.
const DefaultTimeout = 5 * time.Second

const (
	// connectTimeout bounds the dial and, separately, the TLS handshake of
	// the default transport.
	connectTimeout = 5 * time.Second
	defaultRetries = 2
	defaultBackoff = 100 * time.Millisecond
	maxBackoff     = time.Second
	maxBody        = 1 << 20 // WeChat replies are a few hundred bytes
	maxErrMsg      = 256
)

// Config configures a Client. Zero values mean the defaults.
type Config struct {
	// AppID is the mini-program's appid.
	AppID string
	// AppSecret is the mini-program's secret.
	AppSecret string
	// BaseURL is where the API lives; default https://api.weixin.qq.com.
	BaseURL string
	// HTTPClient sends the requests; default a client of its own with
	// dial, TLS and header timeouts (never http.DefaultClient). Redirects
	// are never followed, whatever client is given: they would carry the
	// secret or access_token in the query to another place.
	HTTPClient *http.Client
	// Timeout bounds each HTTP attempt; default 5s. Timeouts are not
	// retried: a slow WeChat would otherwise hold the caller for a multiple
	// of it.
	Timeout time.Duration
	// Retries is how often a call is repeated after errcode -1 (system
	// busy) or a transport error; default 2, negative means none.
	Retries int
	// Backoff is the base of the jittered exponential backoff between
	// retries; default 100ms, each wait capped at 1s.
	Backoff time.Duration
	// Observe, when set, is called once per HTTP attempt with the API name,
	// the attempt's duration and its error (nil on success); for metrics.
	Observe func(api string, d time.Duration, err error)
}

// Client calls the WeChat server API for one mini-program. It is safe for
// concurrent use.
type Client struct {
	appID, secret string
	base          string
	hc            *http.Client
	timeout       time.Duration
	retries       int
	backoff       time.Duration
	observe       func(string, time.Duration, error)
}

// NewClient returns a client for cfg, filling in defaults.
func NewClient(cfg Config) *Client {
	c := &Client{
		appID:   cfg.AppID,
		secret:  cfg.AppSecret,
		base:    strings.TrimRight(cfg.BaseURL, "/"),
		timeout: cfg.Timeout,
		retries: cfg.Retries,
		backoff: cfg.Backoff,
		observe: cfg.Observe,
	}
	if c.base == "" {
		c.base = DefaultBaseURL
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	switch {
	case c.retries == 0:
		c.retries = defaultRetries
	case c.retries < 0:
		c.retries = 0
	}
	if c.backoff <= 0 {
		c.backoff = defaultBackoff
	}
	var hc http.Client
	if cfg.HTTPClient != nil {
		hc = *cfg.HTTPClient // a copy: the caller's client stays untouched
	} else {
		hc.Transport = newTransport()
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.hc = &hc
	return c
}

func newTransport() *http.Transport {
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   connectTimeout,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   connectTimeout,
		ResponseHeaderTimeout: 10 * time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   16,
	}
}

// Session is what code2Session returns for a login code.
type Session struct {
	// OpenID identifies the user within this mini-program.
	OpenID string
	// UnionID identifies the user across the developer's apps; empty when
	// WeChat does not give one.
	UnionID string
	// SessionKey decrypts the user's encryptedData; it must stay on the server.
	SessionKey string
}

// Code2Session exchanges a wx.login code for the user's session.
//
// A code is single-use: once WeChat has read it, asking again gives 40163.
// So the call is retried only after errcode -1 and after transport errors
// that happened before the request was written (dial, TLS), never when a
// request may have reached WeChat without its reply reaching us.
func (c *Client) Code2Session(ctx context.Context, code string) (*Session, error) {
	const api = "jscode2session"
	q := url.Values{
		"appid":      {c.appID},
		"secret":     {c.secret},
		"js_code":    {code},
		"grant_type": {"authorization_code"},
	}
	var out struct {
		OpenID     string `json:"openid"`
		UnionID    string `json:"unionid"`
		SessionKey string `json:"session_key"`
	}
	err := c.call(ctx, request{
		api: api, method: http.MethodGet, path: "/sns/jscode2session", query: q,
		secrets: []string{c.secret, code},
	}, &out)
	if err != nil {
		return nil, err
	}
	if out.OpenID == "" || out.SessionKey == "" {
		return nil, &UpstreamError{API: api, Err: errors.New("reply without openid or session_key")}
	}
	return &Session{OpenID: out.OpenID, UnionID: out.UnionID, SessionKey: out.SessionKey}, nil
}

// StableToken gets the app's access_token from the stable_token API, which
// hands every caller the same token until it expires. force asks WeChat for
// a new one, which invalidates the previous token everywhere; WeChat limits
// how often that may be done, so a forced call is retried only like
// Code2Session.
func (c *Client) StableToken(ctx context.Context, force bool) (token string, expiresIn time.Duration, err error) {
	const api = "stable_token"
	body := map[string]any{
		"grant_type":    "client_credential",
		"appid":         c.appID,
		"secret":        c.secret,
		"force_refresh": force,
	}
	var out struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	err = c.call(ctx, request{
		api: api, method: http.MethodPost, path: "/cgi-bin/stable_token", body: body,
		idempotent: !force, secrets: []string{c.secret},
	}, &out)
	if err != nil {
		return "", 0, err
	}
	if out.AccessToken == "" || out.ExpiresIn <= 0 {
		return "", 0, &UpstreamError{API: api, Err: errors.New("reply without access_token or expires_in")}
	}
	return out.AccessToken, time.Duration(out.ExpiresIn) * time.Second, nil
}

// PhoneNumber resolves a getPhoneNumber button code and returns WeChat's
// phone_info object unchanged (its countryCode may be a number or a
// string). With openid (optional), WeChat refuses a code made for another
// user. Phone codes are single-use, so retries are as for Code2Session.
func (c *Client) PhoneNumber(ctx context.Context, accessToken, code, openid string) (json.RawMessage, error) {
	const api = "getuserphonenumber"
	var out struct {
		PhoneInfo json.RawMessage `json:"phone_info"`
	}
	err := c.call(ctx, request{
		api: api, method: http.MethodPost, path: "/wxa/business/getuserphonenumber",
		query: url.Values{"access_token": {accessToken}}, body: phoneBody(code, openid),
		secrets: []string{accessToken, code},
	}, &out)
	if err != nil {
		return nil, err
	}
	if !isObject(out.PhoneInfo) {
		return nil, &UpstreamError{API: api, Err: errors.New("reply without a phone_info object")}
	}
	return out.PhoneInfo, nil
}

// phoneBody is getuserphonenumber's body; with the openid, WeChat checks
// that the code was made for that user.
func phoneBody(code, openid string) map[string]string {
	b := map[string]string{"code": code}
	if openid != "" {
		b["openid"] = openid
	}
	return b
}

// CheckSession asks WeChat whether sessionKey is still the valid
// session_key of openid. It returns nil when it is, and an *Error for which
// IsSessionKeyInvalid is true when it is not.
func (c *Client) CheckSession(ctx context.Context, accessToken, openid, sessionKey string) error {
	sig := LoginStateSignature(sessionKey, "")
	q := url.Values{
		"access_token": {accessToken},
		"openid":       {openid},
		"signature":    {sig},
		"sig_method":   {"hmac_sha256"},
	}
	return c.call(ctx, request{
		api: "checksession", method: http.MethodGet, path: "/wxa/checksession", query: q,
		idempotent: true, secrets: []string{accessToken, sig, sessionKey},
	}, nil)
}

// request describes one API call.
type request struct {
	api    string
	method string
	path   string
	query  url.Values
	body   any // marshalled as JSON when non-nil
	// idempotent calls may be retried after any transport error; the others
	// only when the request was certainly not sent.
	idempotent bool
	// secrets are scrubbed from every error message.
	secrets []string
}

// call performs r with retries and decodes a successful reply into out.
func (c *Client) call(ctx context.Context, r request, out any) error {
	var payload []byte
	if r.body != nil {
		var err error
		if payload, err = json.Marshal(r.body); err != nil {
			return &UpstreamError{API: r.api, Err: err}
		}
	}
	target := c.base + r.path
	if len(r.query) > 0 {
		target += "?" + r.query.Encode()
	}
	for attempt := 0; ; attempt++ {
		start := time.Now()
		err, retry := c.attempt(ctx, r, target, payload, out)
		if c.observe != nil {
			c.observe(r.api, time.Since(start), err)
		}
		if err == nil || !retry || attempt >= c.retries {
			return err
		}
		if c.wait(ctx, attempt) != nil {
			return err
		}
	}
}

// attempt makes one HTTP request and reports whether a failure may be retried.
func (c *Client) attempt(ctx context.Context, r request, target string, payload []byte, out any) (err error, retry bool) {
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	// wrote tells apart failures before the request left (safe to repeat
	// even with a single-use code) from failures after.
	// The transport reports it from its own goroutine, hence the atomic.
	var wrote atomic.Bool
	actx = httptrace.WithClientTrace(actx, &httptrace.ClientTrace{
		WroteRequest: func(info httptrace.WroteRequestInfo) { wrote.Store(info.Err == nil) },
	})
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(actx, r.method, target, body)
	if err != nil {
		return upstream(actx, r, err), false
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "caddy-wxauth")
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}

	resp, err := c.hc.Do(req)
	if err != nil {
		ue := upstream(actx, r, err)
		return ue, !ue.Timeout && ctx.Err() == nil && (r.idempotent || !wrote.Load())
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// Drain a little so the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		err := &UpstreamError{API: r.api, Err: fmt.Errorf("HTTP status %d", resp.StatusCode)}
		return err, r.idempotent && resp.StatusCode >= 500
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		ue := upstream(actx, r, err)
		return ue, !ue.Timeout && ctx.Err() == nil && r.idempotent
	}
	if len(data) > maxBody {
		return &UpstreamError{API: r.api, Err: errors.New("reply too large")}, false
	}
	// WeChat labels JSON as text/plain on some APIs, so the content type is
	// not looked at; the body must simply be a JSON object.
	if len(bytes.TrimSpace(data)) == 0 {
		return &UpstreamError{API: r.api, Err: errors.New("empty reply")}, false
	}
	var env struct {
		ErrCode int    `json:"errcode"`
		ErrMsg  string `json:"errmsg"`
	}
	if !isObject(data) || json.Unmarshal(data, &env) != nil {
		return &UpstreamError{API: r.api, Err: errors.New("reply is not WeChat JSON")}, false
	}
	if env.ErrCode != 0 {
		msg := scrub(env.ErrMsg, r.secrets)
		if len(msg) > maxErrMsg {
			msg = msg[:maxErrMsg]
		}
		return &Error{API: r.api, Code: env.ErrCode, Msg: msg}, env.ErrCode == codeSystemBusy
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return &UpstreamError{API: r.api, Err: errors.New("reply has unexpected field types")}, false
		}
	}
	return nil, false
}

// upstream turns a transport error into an UpstreamError whose message
// holds neither the URL (a *url.Error quotes it, query and all) nor any of
// the request's secrets.
func upstream(actx context.Context, r request, err error) *UpstreamError {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	timeout := errors.Is(err, context.DeadlineExceeded) || errors.Is(actx.Err(), context.DeadlineExceeded)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		timeout = true
	}
	// Inner transport errors do not quote the URL, but make sure no secret
	// slips through; keep the context sentinels so errors.Is still works.
	if msg := err.Error(); scrub(msg, r.secrets) != msg {
		switch {
		case errors.Is(err, context.Canceled):
			err = context.Canceled
		case errors.Is(err, context.DeadlineExceeded):
			err = context.DeadlineExceeded
		default:
			err = errors.New(scrub(msg, r.secrets))
		}
	}
	return &UpstreamError{API: r.api, Timeout: timeout, Err: err}
}

// wait sleeps before retry number attempt+1: exponential from the base,
// capped, with jitter so instances do not retry in step.
func (c *Client) wait(ctx context.Context, attempt int) error {
	d := c.backoff << min(attempt, 16)
	if d <= 0 || d > maxBackoff {
		d = maxBackoff
	}
	d = d/2 + rand.N(d/2+1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// scrub replaces every non-empty secret in s.
func scrub(s string, secrets []string) string {
	for _, v := range secrets {
		if v != "" {
			s = strings.ReplaceAll(s, v, "[redacted]")
			// The query form of the value, in case it was echoed escaped.
			if e := url.QueryEscape(v); e != v {
				s = strings.ReplaceAll(s, e, "[redacted]")
			}
		}
	}
	return s
}

// isObject reports whether data is a JSON object.
func isObject(data []byte) bool {
	data = bytes.TrimSpace(data)
	return len(data) > 0 && data[0] == '{' && json.Valid(data)
}
