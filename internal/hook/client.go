package hook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/wxauth/caddy-wxauth/internal/strictjson"
)

// AnswerMax bounds the app's answer.
const AnswerMax = 64 << 10

// Event is the body of an event. It never holds a secret, session_key or
// token.
type Event struct {
	ID         string         `json:"id"`                    // the event's id, also its webhook-id
	Event      string         `json:"event"`                 // login, phone, decrypt, logout or userinfo
	Time       int64          `json:"time"`                  // unix seconds
	AppID      string         `json:"app_id"`                // the app the user logged in to
	Platform   string         `json:"platform"`              // wechat, qq, douyin, alipay, baidu or kuaishou
	Surface    string         `json:"surface"`               // mp (a mini-program), oa or qr (web login)
	OpenID     string         `json:"openid"`                // the user
	UnionID    string         `json:"unionid,omitempty"`     // the user across the open platform, when the platform gave one
	Anonymous  bool           `json:"anonymous,omitempty"`   // the openid names a device, not a person (a Douyin guest)
	SID        string         `json:"sid"`                   // the session
	FirstLogin *bool          `json:"first_login,omitempty"` // login: true in exactly one login event per user
	Claims     map[string]any `json:"claims"`                // the user's claims before the app answers
	Phone      any            `json:"phone,omitempty"`       // phone: WeChat's phone_info
	Data       any            `json:"data,omitempty"`        // decrypt: the decrypted user data
	// AnonymousOpenID is, in a login event, the device's anonymous openid
	// the client sent beside its code (Douyin), so the app can merge what
	// the guest did before logging in.
	AnonymousOpenID string `json:"anonymous_openid,omitempty"`
	// UserInfo is, in a userinfo event, the profile a web login gave
	// (sns/userinfo without tokens or privilege lists).
	UserInfo any `json:"userinfo,omitempty"`
}

// ErrFailed is matched (errors.Is) by every error of Send but a *Refusal;
// the details stay in the log, Reason names the kind.
var ErrFailed = errors.New("app hook failed")

// Why Send failed, as Reason names it: a small fixed set, for metrics.
const (
	// ReasonTimeout: the app did not answer within the timeout.
	ReasonTimeout = "timeout"
	// ReasonCanceled: the caller gave up first (the client left).
	ReasonCanceled = "canceled"
	// ReasonUnreachable: no connection, or it broke before an answer.
	ReasonUnreachable = "unreachable"
	// ReasonStatus: the app answered a status other than 2xx and 403.
	ReasonStatus = "status"
	// ReasonBadAnswer: a 2xx that is not valid claims, a 403 that is not a
	// refusal, or an answer over AnswerMax.
	ReasonBadAnswer = "bad_answer"
	// ReasonRefused: the app refused the event on purpose (a *Refusal).
	ReasonRefused = "refused"
)

// failure is an error of Send other than a refusal.
type failure struct {
	reason string
	msg    string
}

func (f *failure) Error() string        { return ErrFailed.Error() + ": " + f.msg }
func (f *failure) Is(target error) bool { return target == ErrFailed }

func failed(reason, format string, args ...any) error {
	return &failure{reason: reason, msg: fmt.Sprintf(format, args...)}
}

// Reason names why err, an error of Send, happened: one of the Reason
// constants, or "" for nil.
func Reason(err error) string {
	var f *failure
	var r *Refusal
	switch {
	case err == nil:
		return ""
	case errors.As(err, &r):
		return ReasonRefused
	case errors.As(err, &f):
		return f.reason
	}
	return ReasonUnreachable
}

// transportReason tells a timeout and a caller who left from a broken
// connection.
func transportReason(ctx context.Context, err error) string {
	var ne net.Error
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		return ReasonCanceled
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return ReasonTimeout
	}
	return ReasonUnreachable
}

// The bounds of a refusal's answer.
const (
	// RefusalNameMax bounds a refusal's name, 1 to 32 of [a-z0-9_].
	RefusalNameMax = 32
	// RefusalMessageMax bounds a refusal's message, in characters.
	RefusalMessageMax = 200
)

// Refusal is the app refusing an event on purpose: it answered 403 with
// exactly {"error": "<name>", "message": "<text>"}, the name 1 to 32 of
// [a-z0-9_], the message at most 200 characters without control
// characters. Nothing is handed out; the client gets the name and the
// message. Any other 403 is a failure (ErrFailed).
type Refusal struct {
	// Name is the app's error name, e.g. "banned".
	Name string
	// Message is the app's text for the client; it may be empty.
	Message string
}

// Error implements error.
func (r *Refusal) Error() string {
	return "the app refused the event: " + r.Name + ": " + r.Message
}

// refusalFields are the names of a refusal's answer, the only ones it may use.
var refusalFields = []string{"error", "message"}

// parseRefusal reads a 403 answer as a Refusal; any other shape is an error.
func parseRefusal(raw []byte) (*Refusal, error) {
	var ans struct {
		Error   *string `json:"error"`
		Message *string `json:"message"`
	}
	if err := strictjson.Decode(raw, &ans, refusalFields...); err != nil {
		return nil, err
	}
	if ans.Error == nil || ans.Message == nil {
		return nil, errors.New(`a refusal needs "error" and "message", both strings`)
	}
	if !refusalName(*ans.Error) {
		return nil, fmt.Errorf("refusal name %s is not 1 to %d of a-z, 0-9 and _", strictjson.Quote(*ans.Error), RefusalNameMax)
	}
	msg := *ans.Message
	if n := utf8.RuneCountInString(msg); n > RefusalMessageMax {
		return nil, fmt.Errorf("refusal message is %d characters, over %d", n, RefusalMessageMax)
	}
	if strings.ContainsFunc(msg, unicode.IsControl) {
		return nil, errors.New("refusal message holds a control character")
	}
	return &Refusal{Name: *ans.Error, Message: msg}, nil
}

// refusalName reports whether s is 1 to 32 of [a-z0-9_].
func refusalName(s string) bool {
	if s == "" || len(s) > RefusalNameMax {
		return false
	}
	for _, c := range []byte(s) {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

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
// none). A well-formed 403 refusal is a *Refusal; any other answer but 2xx
// with nothing, or one JSON object of valid claims, each named once, is an
// error wrapping ErrFailed.
func (c *Client) Send(ctx context.Context, ev *Event) (map[string]any, error) {
	body, err := json.Marshal(ev)
	if err != nil {
		return nil, failed(ReasonUnreachable, "%v", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return nil, failed(ReasonUnreachable, "%v", err)
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
		return nil, failed(transportReason(ctx, err), "%v", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, AnswerMax+1))
	if err != nil {
		return nil, failed(transportReason(ctx, err), "reading the answer: %v", err)
	}
	if resp.StatusCode != http.StatusForbidden && (resp.StatusCode < 200 || resp.StatusCode > 299) {
		return nil, failed(ReasonStatus, "status %d", resp.StatusCode)
	}
	if len(raw) > AnswerMax {
		return nil, failed(ReasonBadAnswer, "status %d, the answer is over %d bytes", resp.StatusCode, AnswerMax)
	}
	if resp.StatusCode == http.StatusForbidden {
		r, err := parseRefusal(raw)
		if err != nil {
			return nil, failed(ReasonBadAnswer, "status 403 but not a refusal: %v", err)
		}
		return nil, r
	}
	if resp.StatusCode == http.StatusNoContent || len(bytes.TrimSpace(raw)) == 0 {
		return nil, nil
	}
	var claims map[string]any
	if err := strictjson.Decode(raw, &claims); err != nil {
		return nil, failed(ReasonBadAnswer, "the answer: %v", err)
	}
	if c.check != nil {
		if err := c.check(claims); err != nil {
			return nil, failed(ReasonBadAnswer, "%v", err)
		}
	}
	return claims, nil
}
