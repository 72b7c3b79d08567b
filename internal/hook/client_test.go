package hook

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// app is a test app: it checks each event's signature, keeps the last one,
// and answers with status and body.
type app struct {
	t      *testing.T
	key    Key
	mu     sync.Mutex
	status int
	body   string
	delay  time.Duration
	last   http.Header
	got    map[string]any
}

func newApp(t *testing.T) (*app, *httptest.Server) {
	key, err := ParseSecret(swSecret)
	if err != nil {
		t.Fatal(err)
	}
	a := &app{t: t, key: key, status: 200}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if _, err := a.key.Verify(r.Header, body, time.Now()); err != nil {
			t.Errorf("an event with a bad signature: %v", r.Header)
		}
		a.mu.Lock()
		a.last = r.Header.Clone()
		_ = json.Unmarshal(body, &a.got)
		status, answer, delay := a.status, a.body, a.delay
		a.mu.Unlock()
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
			}
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, answer)
	}))
	t.Cleanup(srv.Close)
	return a, srv
}

func (a *app) answer(status int, body string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.status, a.body = status, body
}

func testEvent() *Event {
	return &Event{ID: NewEventID(), Event: "login", Time: time.Now().Unix(), AppID: "wxapp", OpenID: "o1", SID: "s1", Claims: map[string]any{}}
}

// noSub refuses a "sub" claim, as the root's claim rules do.
func noSub(claims map[string]any) error {
	if _, ok := claims["sub"]; ok {
		return errors.New(`claim "sub" is reserved`)
	}
	return nil
}

func TestSendSignsAndReadsClaims(t *testing.T) {
	a, srv := newApp(t)
	c := New(Config{URL: srv.URL, Key: a.key, Timeout: time.Second, CheckClaims: noSub})
	a.answer(200, `{"uid": 12345678901234567890, "old": null}`)
	ev := testEvent()
	claims, err := c.Send(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if claims["uid"] != json.Number("12345678901234567890") || claims["old"] != nil || len(claims) != 2 {
		t.Fatalf("claims %#v", claims)
	}
	if a.last.Get("X-Wxauth-Event") != "login" || a.last.Get(HeaderID) != ev.ID || a.last.Get("Content-Type") != "application/json" {
		t.Fatalf("headers %v", a.last)
	}
	if a.got["openid"] != "o1" || a.got["sid"] != "s1" {
		t.Fatalf("sent %v", a.got)
	}
	// 204 and an empty 200 are no change.
	for _, status := range []int{204, 200} {
		a.answer(status, "")
		if claims, err := c.Send(context.Background(), testEvent()); err != nil || claims != nil {
			t.Fatalf("empty %d answer: %v %v", status, claims, err)
		}
	}
	a.answer(200, " \n ")
	if claims, err := c.Send(context.Background(), testEvent()); err != nil || claims != nil {
		t.Fatalf("blank answer: %v %v", claims, err)
	}
}

func TestSendRefusesBadAnswers(t *testing.T) {
	a, srv := newApp(t)
	c := New(Config{URL: srv.URL, Key: a.key, Timeout: time.Second, CheckClaims: noSub})
	for name, ans := range map[string]struct {
		status int
		body   string
	}{
		"status 500":       {500, ""},
		"status 400":       {400, `{"uid": 1}`},
		"array":            {200, `[1]`},
		"string":           {200, `"x"`},
		"cut short":        {200, `{`},
		"repeated claim":   {200, `{"uid": 8, "uid": 9}`},
		"a second object":  {200, `{"uid": 8} {"uid": 9}`},
		"trailing garbage": {200, `{"uid": 8} x`},
		"refused claim":    {200, `{"sub": "x"}`},
		"over the limit":   {200, `{"uid": "` + strings.Repeat("x", AnswerMax) + `"}`},
	} {
		a.answer(ans.status, ans.body)
		claims, err := c.Send(context.Background(), testEvent())
		if !errors.Is(err, ErrFailed) || claims != nil {
			t.Errorf("%s: %v %v, want ErrFailed", name, claims, err)
		}
		want := ReasonBadAnswer
		if ans.status != 200 {
			want = ReasonStatus
		}
		if got := Reason(err); got != want {
			t.Errorf("%s: reason %q, want %q", name, got, want)
		}
	}
}

// A closed port and a caller who left have reasons of their own.
func TestSendUnreachableAndCanceled(t *testing.T) {
	a, srv := newApp(t)
	c := New(Config{URL: srv.URL, Key: a.key, Timeout: time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Send(ctx, testEvent()); !errors.Is(err, ErrFailed) || Reason(err) != ReasonCanceled {
		t.Errorf("canceled: %v, reason %q", err, Reason(err))
	}
	srv.Close()
	if _, err := c.Send(context.Background(), testEvent()); !errors.Is(err, ErrFailed) || Reason(err) != ReasonUnreachable {
		t.Errorf("closed: %v, reason %q", err, Reason(err))
	}
	if Reason(nil) != "" {
		t.Error("a nil error has a reason")
	}
}

// A redirect is an answer, not followed: 3xx is not 2xx.
func TestSendFollowsNoRedirect(t *testing.T) {
	a, _ := newApp(t)
	var followed atomic.Bool
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { followed.Store(true) }))
	t.Cleanup(elsewhere.Close)
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(redirect.Close)
	c := New(Config{URL: redirect.URL, Key: a.key, Timeout: time.Second})
	if _, err := c.Send(context.Background(), testEvent()); !errors.Is(err, ErrFailed) || followed.Load() {
		t.Fatalf("redirect: %v, followed %v", err, followed.Load())
	}
}

// A hanging app is cut off by the timeout; credentials of the URL stay out
// of the error.
func TestSendTimeout(t *testing.T) {
	a, srv := newApp(t)
	a.mu.Lock()
	a.delay = 30 * time.Second
	a.mu.Unlock()
	u := strings.Replace(srv.URL, "http://", "http://user:hunter2@", 1)
	c := New(Config{URL: u, Key: a.key, Timeout: 200 * time.Millisecond})
	began := time.Now()
	_, err := c.Send(context.Background(), testEvent())
	if !errors.Is(err, ErrFailed) || time.Since(began) > 3*time.Second {
		t.Fatalf("hanging app: %v after %v", err, time.Since(began))
	}
	if Reason(err) != ReasonTimeout {
		t.Errorf("hanging app: reason %q, want timeout", Reason(err))
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("the URL's credentials in the error: %v", err)
	}
}

// A well-formed 403 is the app refusing on purpose: a *Refusal with its
// name and message, not ErrFailed.
func TestSendRefusal(t *testing.T) {
	a, srv := newApp(t)
	c := New(Config{URL: srv.URL, Key: a.key, Timeout: time.Second, CheckClaims: noSub})
	for body, want := range map[string]Refusal{
		`{"error":"banned","message":"this account is closed"}`:                    {"banned", "this account is closed"},
		`{"message":"账号已停用","error":"account_closed_2"}`:                           {"account_closed_2", "账号已停用"},
		`{"error":"` + strings.Repeat("a", 32) + `","message":""}`:                 {strings.Repeat("a", 32), ""},
		`{"error":"x","message":"` + strings.Repeat("长", RefusalMessageMax) + `"}`: {"x", strings.Repeat("长", RefusalMessageMax)},
	} {
		a.answer(403, body)
		claims, err := c.Send(context.Background(), testEvent())
		var r *Refusal
		if !errors.As(err, &r) || claims != nil {
			t.Fatalf("%s: %v %v, want a refusal", body, claims, err)
		}
		if *r != want {
			t.Errorf("%s: got %+v, want %+v", body, *r, want)
		}
		if errors.Is(err, ErrFailed) || Reason(err) != ReasonRefused {
			t.Errorf("%s: a refusal reads as a failure (reason %q)", body, Reason(err))
		}
	}
}

// A 403 that is not exactly a refusal is a failure like any other.
func TestSendMalformedRefusal(t *testing.T) {
	a, srv := newApp(t)
	c := New(Config{URL: srv.URL, Key: a.key, Timeout: time.Second})
	for name, body := range map[string]string{
		"empty":               ``,
		"not JSON":            `forbidden`,
		"array":               `[{"error":"banned","message":"no"}]`,
		"no message":          `{"error":"banned"}`,
		"no name":             `{"message":"no"}`,
		"null message":        `{"error":"banned","message":null}`,
		"number name":         `{"error":7,"message":"no"}`,
		"upper case name":     `{"error":"Banned","message":"no"}`,
		"name with a space":   `{"error":"is banned","message":"no"}`,
		"name with a dash":    `{"error":"is-banned","message":"no"}`,
		"empty name":          `{"error":"","message":"no"}`,
		"name over 32":        `{"error":"` + strings.Repeat("a", 33) + `","message":"no"}`,
		"message over 200":    `{"error":"banned","message":"` + strings.Repeat("长", RefusalMessageMax+1) + `"}`,
		"control character":   `{"error":"banned","message":"line\nbreak"}`,
		"extra field":         `{"error":"banned","message":"no","errcode":1}`,
		"refused_by given":    `{"error":"banned","message":"no","refused_by":"app"}`,
		"field named twice":   `{"error":"banned","message":"no","error":"other"}`,
		"wrongly spelled":     `{"Error":"banned","message":"no"}`,
		"a second object":     `{"error":"banned","message":"no"} {}`,
		"claims, not refusal": `{"uid": 1}`,
		"over the limit":      `{"error":"banned","message":"` + strings.Repeat("x", AnswerMax) + `"}`,
	} {
		a.answer(403, body)
		claims, err := c.Send(context.Background(), testEvent())
		var r *Refusal
		if !errors.Is(err, ErrFailed) || errors.As(err, &r) || claims != nil || Reason(err) != ReasonBadAnswer {
			t.Errorf("%s: %v %v (reason %q), want ErrFailed, bad_answer", name, claims, err, Reason(err))
		}
	}
	// A refusal's shape under another status is no refusal either.
	a.answer(401, `{"error":"banned","message":"no"}`)
	if _, err := c.Send(context.Background(), testEvent()); !errors.Is(err, ErrFailed) {
		t.Errorf("401 refusal: %v, want ErrFailed", err)
	}
}
