package guard

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/wxauth/caddy-wxauth/internal/apierr"
)

// passRequest runs req through g and returns what the next handler saw.
func passRequest(t *testing.T, g *Guard, req *http.Request) *http.Request {
	t.Helper()
	var seen *http.Request
	w := httptest.NewRecorder()
	err := serveThen(g, w, req, nextFunc(func(_ http.ResponseWriter, r *http.Request) error {
		seen = r
		return nil
	}))
	if err != nil || seen == nil {
		t.Fatalf("refused: %v %d %s", err, w.Code, w.Body)
	}
	return seen
}

func TestTokenRemovedBeforeNext(t *testing.T) {
	cases := []struct {
		name    string
		sources []TokenSource
		forward bool
		target  string
		header  http.Header
		// What the next handler must see.
		wantURI    string
		wantHeader http.Header
	}{
		{
			name:       "Authorization header",
			target:     "/api?x=1",
			header:     http.Header{"Authorization": {"Bearer tok-s1"}, "Accept": {"*/*"}},
			wantURI:    "/api?x=1",
			wantHeader: http.Header{"Accept": {"*/*"}},
		},
		{
			name:       "custom header without a scheme",
			sources:    []TokenSource{{From: "header", Name: "Authentication"}},
			target:     "/api",
			header:     http.Header{"Authentication": {"tok-s1"}, "Authorization": {"Basic dXNlcjpwdw=="}},
			wantURI:    "/api",
			wantHeader: http.Header{"Authorization": {"Basic dXNlcjpwdw=="}},
		},
		{
			name:    "cookie, other cookies kept",
			sources: []TokenSource{{From: "cookie", Name: "wxtoken"}},
			target:  "/api",
			header: http.Header{
				"Cookie":        {"a=1; wxtoken=tok-s1;b=\"two\"", "wxtoken=tok-s1", "c=3"},
				"Authorization": {"Basic dXNlcjpwdw=="},
			},
			wantURI:    "/api",
			wantHeader: http.Header{"Cookie": {`a=1; b="two"`, "c=3"}, "Authorization": {"Basic dXNlcjpwdw=="}},
		},
		{
			name:       "cookie, the only one",
			sources:    []TokenSource{{From: "cookie", Name: "wxtoken"}},
			target:     "/api",
			header:     http.Header{"Cookie": {"wxtoken=tok-s1"}},
			wantURI:    "/api",
			wantHeader: http.Header{},
		},
		{
			name:       "query, other parameters kept as sent",
			sources:    []TokenSource{{From: "query", Name: "access_token"}},
			target:     "/a%2Fb/c?x=1&access_token=tok-s1&y=%20z&access%5Ftoken=tok-s1&tail",
			header:     http.Header{},
			wantURI:    "/a%2Fb/c?x=1&y=%20z&tail",
			wantHeader: http.Header{},
		},
		{
			name:       "query, after a ';' and percent-encoded",
			sources:    []TokenSource{{From: "query", Name: "access_token"}},
			target:     "/api?x=1;access_token=tok-s1&y=2;%61ccess_token=tok-s2;z",
			header:     http.Header{},
			wantURI:    "/api?x=1&y=2;z",
			wantHeader: http.Header{},
		},
		{
			name:       "query, two tokens: the first is checked, both go",
			sources:    []TokenSource{{From: "query", Name: "access_token"}},
			target:     "/api?access_token=&access_token=tok-s1;access_token=tok-s2&k=v",
			header:     http.Header{},
			wantURI:    "/api?k=v",
			wantHeader: http.Header{},
		},
		{
			name:       "query, a name that does not decode goes too",
			sources:    []TokenSource{{From: "query", Name: "access_token"}},
			target:     "/api?access_token=tok-s1&access%ZZtoken=tok-s2&k=v%ZZ",
			header:     http.Header{},
			wantURI:    "/api?k=v%ZZ",
			wantHeader: http.Header{},
		},
		{
			name: "a ';'-separated query token behind a header token",
			sources: []TokenSource{
				{From: "header", Name: "Authorization", Scheme: "Bearer"},
				{From: "query", Name: "access_token"},
			},
			target:     "/api?x=1;access_token=tok-s2",
			header:     http.Header{"Authorization": {"Bearer tok-s1"}},
			wantURI:    "/api?x=1",
			wantHeader: http.Header{},
		},
		{
			name:       "query, the only parameter",
			sources:    []TokenSource{{From: "query", Name: "access_token"}},
			target:     "/api?access_token=tok-s1",
			header:     http.Header{},
			wantURI:    "/api",
			wantHeader: http.Header{},
		},
		{
			name: "a second source's token goes too",
			sources: []TokenSource{
				{From: "header", Name: "Authorization", Scheme: "Bearer"},
				{From: "cookie", Name: "wxtoken"},
				{From: "query", Name: "t"},
			},
			target:     "/api?t=tok-s2&k=v",
			header:     http.Header{"Authorization": {"Bearer tok-s1"}, "Cookie": {"wxtoken=tok-s2; k=v"}},
			wantURI:    "/api?k=v",
			wantHeader: http.Header{"Cookie": {"k=v"}},
		},
		{
			name:       "forward_token keeps it",
			forward:    true,
			target:     "/api?x=1",
			header:     http.Header{"Authorization": {"Bearer tok-s1"}},
			wantURI:    "/api?x=1",
			wantHeader: http.Header{"Authorization": {"Bearer tok-s1"}},
		},
		{
			name:       "forward_token keeps a query token",
			sources:    []TokenSource{{From: "query", Name: "access_token"}},
			forward:    true,
			target:     "/api?access_token=tok-s1",
			header:     http.Header{},
			wantURI:    "/api?access_token=tok-s1",
			wantHeader: http.Header{},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newGuardFixture(t, func(c *Config) {
				if tc.sources != nil {
					c.Sources = tc.sources
					for i := range c.Sources {
						if err := c.Sources[i].Validate(); err != nil {
							t.Fatal(err)
						}
					}
				}
				c.ForwardToken = tc.forward
			})
			f.login("s1", "alice", nil)
			f.login("s2", "alice", nil)
			req := httptest.NewRequest(http.MethodGet, tc.target, nil)
			req.Header = tc.header.Clone()
			seen := passRequest(t, f.g, req)
			if seen.Header.Get("X-Wx-Openid") != "alice" {
				t.Fatalf("not the token's identity: %v", seen.Header)
			}
			for k := range seen.Header {
				if strings.HasPrefix(k, "X-Wx-") {
					seen.Header.Del(k) // the identity, checked elsewhere
				}
			}
			if !reflect.DeepEqual(seen.Header, tc.wantHeader) {
				t.Errorf("headers = %v, want %v", seen.Header, tc.wantHeader)
			}
			if seen.RequestURI != tc.wantURI || seen.URL.RequestURI() != tc.wantURI {
				t.Errorf("RequestURI = %q, URL = %q, want %q", seen.RequestURI, seen.URL.RequestURI(), tc.wantURI)
			}
		})
	}
}

// A refused request keeps nothing from reaching next; an anonymous one
// (optional, no token) is left as it was.
func TestTokenKeptWhenNotChecked(t *testing.T) {
	f := newGuardFixture(t, func(c *Config) {
		c.Optional = true
		c.Sources = []TokenSource{{From: "cookie", Name: "wxtoken"}}
	})
	req := httptest.NewRequest(http.MethodGet, "/api", nil)
	req.Header.Set("Cookie", "other=1")
	req.Header.Set("Authorization", "Bearer not-ours")
	seen := passRequest(t, f.g, req)
	if seen.Header.Get("Cookie") != "other=1" || seen.Header.Get("Authorization") != "Bearer not-ours" {
		t.Fatalf("anonymous request changed: %v", seen.Header)
	}
}

// Removing a header token is a map delete: nothing on the hot path allocates.
func TestTokenRemovalAllocatesNothing(t *testing.T) {
	f := newGuardFixture(t)
	req := httptest.NewRequest(http.MethodGet, "/api", nil)
	vals := []string{"Bearer tok-s1"}
	allocs := testing.AllocsPerRun(100, func() {
		req.Header["Authorization"] = vals
		if _, i := f.g.findFrom(req, 0); i != 0 {
			t.Fatal("token not found")
		}
		f.g.removeToken(req, 0)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per removal", allocs)
	}
	if _, ok := req.Header["Authorization"]; ok {
		t.Fatal("header kept")
	}
}

// Serve reads the first source's header in the pass that strips identity
// headers; what it finds is what find would find after the strip.
func TestTokenFromLeadHeader(t *testing.T) {
	t.Run("another scheme is no token and stays", func(t *testing.T) {
		f := newGuardFixture(t, func(c *Config) { c.Optional = true })
		req := httptest.NewRequest(http.MethodGet, "/api", nil)
		req.Header.Set("Authorization", "Basic dXNlcjpwYXNz")
		req.Header.Set("X-Wx-Openid", "mallory")
		seen := passRequest(t, f.g, req)
		if seen.Header.Get("Authorization") != "Basic dXNlcjpwYXNz" || seen.Header.Get("X-Wx-Openid") != "" {
			t.Fatalf("headers = %v", seen.Header)
		}
	})
	t.Run("a stripped header holds no token", func(t *testing.T) {
		f := newGuardFixture(t, func(c *Config) {
			c.Optional = true
			c.Sources = []TokenSource{{From: "header", Name: "X-Role"}}
			c.Strip = []string{"X-Role"}
		})
		f.login("s1", "alice", nil)
		req := httptest.NewRequest(http.MethodGet, "/api", nil)
		req.Header.Set("X-Role", "tok-s1")
		seen := passRequest(t, f.g, req)
		if seen.Header.Get("X-Wx-Openid") != "" || len(seen.Header.Values("X-Role")) != 0 {
			t.Fatalf("headers = %v", seen.Header)
		}
	})
	t.Run("the next source when the first has none", func(t *testing.T) {
		f := newGuardFixture(t, func(c *Config) {
			c.Sources = []TokenSource{{From: "header", Name: "Authorization", Scheme: "Bearer"}, {From: "cookie", Name: "wxtoken"}}
		})
		f.login("s1", "alice", nil)
		req := httptest.NewRequest(http.MethodGet, "/api", nil)
		req.Header.Set("Cookie", "wxtoken=tok-s1")
		seen := passRequest(t, f.g, req)
		if seen.Header.Get("X-Wx-Openid") != "alice" || seen.Header.Get("Cookie") != "" {
			t.Fatalf("headers = %v", seen.Header)
		}
	})
	t.Run("forwarded", func(t *testing.T) {
		f := newGuardFixture(t, func(c *Config) { c.ForwardToken = true })
		f.login("s1", "alice", nil)
		req := httptest.NewRequest(http.MethodGet, "/api", nil)
		req.Header.Set("Authorization", "Bearer tok-s1")
		seen := passRequest(t, f.g, req)
		if seen.Header.Get("X-Wx-Openid") != "alice" || seen.Header.Get("Authorization") != "Bearer tok-s1" {
			t.Fatalf("headers = %v", seen.Header)
		}
	})
}

func TestQueryToken(t *testing.T) {
	for raw, want := range map[string]string{
		"":                                  "",
		"x=1":                               "",
		"access_token=t1":                   "t1",
		"x=1;access_token=t1":               "t1",
		"x=1&access%5Ftoken=t1":             "t1",
		"access_token&access_token=t1":      "t1",
		"access_token=&access_token=t1;t2":  "t1",
		"access_token=t1&access_token=t2":   "t1",
		"access_token=t%2B1":                "t+1",
		"access_token=t%ZZ":                 "t%ZZ", // refused as a token, not ignored
		"access%ZZtoken=t1":                 "",
		"Access_Token=t1":                   "",
		"xaccess_token=t1&access_tokenx=t2": "",
	} {
		if got := queryToken(raw, "access_token"); got != want {
			t.Errorf("queryToken(%q) = %q, want %q", raw, got, want)
		}
	}
}

func TestWithoutParam(t *testing.T) {
	for raw, want := range map[string]string{
		"":                                  "",
		"x=1":                               "x=1",
		"x=1;y=2&&z":                        "x=1;y=2&&z",
		"access_token=t":                    "",
		"access_token=t&":                   "",
		"x=1;access_token=t":                "x=1",
		"access_token=t;x=1&y=2":            "x=1&y=2",
		"x=1&access_token=t;y=2":            "x=1;y=2",
		"x=1&access%5ftoken=t&access_token": "x=1",
		"access_token=t1&access_token=t2;x": "x",
		"x=%ZZ&bad%ZZname=t":                "x=%ZZ",
		"x=1&access_token=t%ZZ":             "x=1",
	} {
		got, changed := withoutParam(raw, "access_token")
		if got != want || changed != (got != raw) {
			t.Errorf("withoutParam(%q) = %q, %v, want %q", raw, got, changed, want)
		}
		if queryToken(got, "access_token") != "" {
			t.Errorf("withoutParam(%q) left a token: %q", raw, got)
		}
	}
}

// A rewrite before wxauth makes the URL and RequestURI differ: the token
// goes from each.
func TestQueryTokenRemovedFromBothURIs(t *testing.T) {
	s := TokenSource{From: "query", Name: "access_token"}
	r := httptest.NewRequest(http.MethodGet, "/orig?access_token=t1;a=1", nil)
	r.URL.RawQuery = "b=2&access_token=t1"
	s.remove(r)
	if r.URL.RawQuery != "b=2" || r.RequestURI != "/orig?a=1" {
		t.Fatalf("URL query %q, RequestURI %q", r.URL.RawQuery, r.RequestURI)
	}
}

// A bare token in Authorization, without "Bearer ", is missing_token with
// a message that says how to send it; another scheme's credentials keep
// the plain message.
func TestBareTokenSaysHowToSendIt(t *testing.T) {
	f := newGuardFixture(t)
	const jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJvIn0.c2lnbmF0dXJl"
	for _, tc := range []struct{ header, want string }{
		{jwt, "the Authorization header holds a token without the Bearer scheme; send it as Authorization: Bearer <token>"},
		{" " + jwt + " ", "send it as Authorization: Bearer <token>"},
		{"Basic dXNlcjpwYXNz", apierr.MissingToken.Message},
		{"a.b", apierr.MissingToken.Message},
		{"a..b", apierr.MissingToken.Message},
		{"", apierr.MissingToken.Message},
	} {
		req := httptest.NewRequest(http.MethodGet, "/api", nil)
		if tc.header != "" {
			req.Header.Set("Authorization", tc.header)
		}
		w := httptest.NewRecorder()
		if _, _, pass, _ := f.g.Serve(w, req); pass {
			t.Fatalf("%q passed", tc.header)
		}
		var body struct{ Error, Message string }
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatal(err)
		}
		if w.Code != http.StatusUnauthorized || body.Error != "missing_token" || !strings.Contains(body.Message, tc.want) {
			t.Errorf("%q: %d %+v, want missing_token %q", tc.header, w.Code, body, tc.want)
		}
	}
}

// A refused token whose source's owner takes it back (a web login's dead
// cookie) is served as if the request never held it; any other refused
// token is answered 401 invalid_token.
func TestRefusedTokenTakenBack(t *testing.T) {
	sources := []TokenSource{{From: "header", Name: "Authorization", Scheme: "Bearer"}, {From: "cookie", Name: "web"}}
	for _, tc := range []struct {
		name     string
		optional bool
		cookie   bool // the dead token comes in the cookie, else in the header
		want     int  // status, or 200: passed on
		taken    int  // Refused calls that took the token back
	}{
		{"optional site, dead cookie", true, true, http.StatusOK, 1},
		{"protected site, dead cookie", false, true, http.StatusUnauthorized, 1},
		{"dead bearer token", true, false, http.StatusUnauthorized, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var taken int
			f := newGuardFixture(t, func(c *Config) {
				c.Sources, c.Optional = sources, tc.optional
				c.Refused = func(w http.ResponseWriter, r *http.Request, src int) bool {
					if src != 1 {
						return false
					}
					taken++
					return true
				}
			})
			tok := f.login("s1", "alice", nil)
			f.logout("s1")
			req := httptest.NewRequest(http.MethodGet, "/page", nil)
			if tc.cookie {
				req.AddCookie(&http.Cookie{Name: "web", Value: tok})
			} else {
				req.Header.Set("Authorization", "Bearer "+tok)
			}
			w := httptest.NewRecorder()
			var seen *http.Request
			_ = serveThen(f.g, w, req, nextFunc(func(_ http.ResponseWriter, r *http.Request) error {
				seen = r
				return nil
			}))
			got := w.Code
			if seen != nil {
				got = http.StatusOK
				if seen.Header.Get("Cookie") != "" || seen.Header.Get("X-Wx-Openid") != "" {
					t.Errorf("passed on with %v", seen.Header)
				}
			}
			if got != tc.want || taken != tc.taken {
				t.Errorf("status %d, taken back %d times; want %d, %d (%s)", got, taken, tc.want, tc.taken, w.Body)
			}
			if !tc.optional && tc.cookie && !strings.Contains(w.Body.String(), "missing_token") {
				t.Errorf("answer %s, want missing_token", w.Body)
			}
		})
	}
}
