package hook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/wxauth/caddy-wxauth/internal/strictjson"
)

// AnswerMax bounds the app's answer.
const AnswerMax = 64 << 10

// Event is the body of an event. It never holds a secret, session_key or
// token.
type Event struct {
	ID         string         `json:"id"`
	Event      string         `json:"event"`
	Time       int64          `json:"time"`
	AppID      string         `json:"app_id"`
	OpenID     string         `json:"openid"`
	UnionID    string         `json:"unionid,omitempty"`
	SID        string         `json:"sid"`
	FirstLogin *bool          `json:"first_login,omitempty"`
	Claims     map[string]any `json:"claims"`
	Phone      any            `json:"phone,omitempty"`
	Data       any            `json:"data,omitempty"`
}

// ErrFailed is wrapped by every error of Send; the reason stays in the log.
var ErrFailed = errors.New("app hook failed")

// Config is what a Client needs.
type Config struct {
	// URL the events are POSTed to, an http(s) URL.
	URL string
	// Key signs every event.
	Key Key
	// Timeout bounds each event, answer included.
	Timeout time.Duration
	// CheckClaims refuses claims the app may not set; nil takes any.
	CheckClaims func(claims map[string]any) error
}

// Client sends events to the app.
type Client struct {
	url   string
	key   Key
	check func(map[string]any) error
	http  *http.Client
}

// New returns a client for cfg.
func New(cfg Config) *Client {
	return &Client{
		url:   cfg.URL,
		key:   cfg.Key,
		check: cfg.CheckClaims,
		http: &http.Client{
			Timeout: cfg.Timeout,
			// The app answers; it does not send events elsewhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

// Send posts ev and returns the claims change the app answered (nil for
// none). Any answer but 2xx with nothing, or one JSON object of valid
// claims, each named once, is an error wrapping ErrFailed.
func (c *Client) Send(ctx context.Context, ev *Event) (map[string]any, error) {
	body, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFailed, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFailed, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "caddy-wxauth")
	req.Header.Set("X-Wxauth-Event", ev.Event)
	c.key.SetHeaders(req.Header, ev.ID, ev.Time, body)
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL may carry credentials; keep it out of logs
		}
		return nil, fmt.Errorf("%w: %v", ErrFailed, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, AnswerMax+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading the answer: %v", ErrFailed, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, fmt.Errorf("%w: status %d", ErrFailed, resp.StatusCode)
	}
	if len(raw) > AnswerMax {
		return nil, fmt.Errorf("%w: the answer is over %d bytes", ErrFailed, AnswerMax)
	}
	if resp.StatusCode == http.StatusNoContent || len(bytes.TrimSpace(raw)) == 0 {
		return nil, nil
	}
	var claims map[string]any
	if err := strictjson.Decode(raw, &claims); err != nil {
		return nil, fmt.Errorf("%w: the answer: %v", ErrFailed, err)
	}
	if c.check != nil {
		if err := c.check(claims); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrFailed, err)
		}
	}
	return claims, nil
}
