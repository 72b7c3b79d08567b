package e2e

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// upstream is an app behind reverse_proxy that records what reached it.
type upstream struct {
	*httptest.Server
	mu   sync.Mutex
	seen []seenRequest
}

// seenRequest is what the upstream got of one request.
type seenRequest struct {
	URI    string      `json:"uri"`
	Header http.Header `json:"header"`
}

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := seenRequest{URI: r.RequestURI, Header: r.Header.Clone()}
		u.mu.Lock()
		u.seen = append(u.seen, s)
		u.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s)
	}))
	t.Cleanup(u.Close)
	return u
}

// all returns every request the upstream has seen, in one string.
func (u *upstream) all() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	b, _ := json.Marshal(u.seen)
	return string(b)
}

// proxied is config(wxauthBody) whose protected route is a reverse_proxy to
// up, instead of the echoing respond.
func proxied(t *testing.T, wxauthBody string, up *upstream) string {
	t.Helper()
	const echo = "\t\theader Content-Type application/json\n"
	cfg := config(wxauthBody)
	if !strings.Contains(cfg, echo) {
		t.Fatal("config() changed: no echo route to replace")
	}
	// route runs before respond, so the proxy answers.
	return strings.Replace(cfg, echo, "\t\troute {\n\t\t\treverse_proxy "+up.Listener.Addr().String()+"\n\t\t}\n"+echo, 1)
}

// The token is taken off the request before reverse_proxy, from whichever
// source it came, and other headers, cookies and parameters go on.
func TestUpstreamNeverSeesTheToken(t *testing.T) {
	up := newUpstream(t)
	h := startConfig(t, proxied(t, `token_from header Authorization Bearer
			token_from header Authentication
			token_from cookie wxtoken
			token_from query access_token`, up))
	login := h.login("olga")
	tok, openid := login.str("token"), login.str("openid")
	for name, req := range map[string]struct {
		path    string
		headers []string
	}{
		"Authorization": {"/x?a=1", bearer(tok)},
		"custom header": {"/x?a=1", []string{"Authentication", tok}},
		"cookie":        {"/x?a=1", []string{"Cookie", "theme=dark; wxtoken=" + tok + "; lang=zh"}},
		"query":         {"/x?access_token=" + tok + "&a=1", nil},
	} {
		r := h.do(http.MethodGet, appURL+req.path, nil, append(req.headers, "X-Keep", "yes")...)
		if r.status != 200 {
			t.Fatalf("%s: %d %s", name, r.status, r.body)
		}
		var got seenRequest
		if err := json.Unmarshal(r.body, &got); err != nil {
			t.Fatalf("%s: %s", name, r.body)
		}
		if got.Header.Get("X-Wx-Openid") != openid || got.Header.Get("X-Keep") != "yes" || got.URI != "/x?a=1" {
			t.Errorf("%s: upstream got %+v", name, got)
		}
		if name == "cookie" && got.Header.Get("Cookie") != "theme=dark; lang=zh" {
			t.Errorf("cookie: other cookies = %q", got.Header.Get("Cookie"))
		}
	}
	if strings.Contains(up.all(), tok) || strings.Contains(up.all(), tok[strings.LastIndex(tok, ".")+1:]) {
		t.Fatalf("the upstream saw the token: %s", up.all())
	}
}

// forward_token hands the token on, for an upstream that verifies it.
func TestForwardToken(t *testing.T) {
	up := newUpstream(t)
	h := startConfig(t, proxied(t, "forward_token", up))
	tok := h.token("pia")
	r := h.do(http.MethodGet, appURL+"/x", nil, bearer(tok)...)
	var got seenRequest
	if err := json.Unmarshal(r.body, &got); r.status != 200 || err != nil {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if got.Header.Get("Authorization") != "Bearer "+tok {
		t.Fatalf("upstream got Authorization %q", got.Header.Get("Authorization"))
	}
}

// Every copy of a query token goes before reverse_proxy, whatever its
// separator or escaping, and the one checked is among those that go: the
// upstream, which echoes the query it got, sees no token in any request.
func TestQueryTokenNeverReachesUpstream(t *testing.T) {
	up := newUpstream(t)
	h := startConfig(t, proxied(t, `token_from header Authorization Bearer
			token_from query access_token`, up))
	login := h.login("quinn")
	tok, openid := login.str("token"), login.str("openid")
	other := h.token("rosa")
	for _, tc := range []struct {
		name, query string
		headers     []string
		want        string // the query the upstream must get
	}{
		{"after a ;", "a=1;access_token=" + tok, nil, "a=1"},
		{"; then &", "access_token=" + tok + ";a=1&b=2", nil, "a=1&b=2"},
		{"percent-encoded name", "a=1&access%5Ftoken=" + tok, nil, "a=1"},
		{"two tokens", "access_token=" + tok + "&a=1;access_token=" + other, nil, "a=1"},
		{"an empty one first", "access_token=&access_token=" + tok + "&a=1", nil, "a=1"},
		{"a second credential behind the header", "a=1;access_token=" + other, bearer(tok), "a=1"},
		{"a name that does not decode", "access%ZZtoken=" + other + "&a=1", bearer(tok), "a=1"},
	} {
		r := h.do(http.MethodGet, appURL+"/x?"+tc.query, nil, tc.headers...)
		var got seenRequest
		if err := json.Unmarshal(r.body, &got); r.status != 200 || err != nil {
			t.Fatalf("%s: %d %s", tc.name, r.status, r.body)
		}
		if got.URI != "/x?"+tc.want || got.Header.Get("X-Wx-Openid") != openid {
			t.Errorf("%s: upstream got %+v, want /x?%s as %s", tc.name, got, tc.want, openid)
		}
	}
	for _, sig := range []string{tok[strings.LastIndex(tok, ".")+1:], other[strings.LastIndex(other, ".")+1:]} {
		if strings.Contains(up.all(), sig) {
			t.Fatalf("the upstream saw a token: %s", up.all())
		}
	}
}
