package apierr

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"testing"
)

func TestWithReturnsCopies(t *testing.T) {
	base := New(429, "rate_limited", "slow down")
	a := base.WithHeader("Retry-After", "5").WithErrCode(45011)
	b := base.WithHeader("Retry-After", "60")
	if n, _ := base.Header(); n != "" || base.ErrCode != nil {
		t.Fatal("With changed the shared value")
	}
	if _, v := a.Header(); v != "5" || a.ErrCode != 45011 {
		t.Fatalf("a: %v %v", v, a.ErrCode)
	}
	if _, v := b.Header(); v != "60" || b.ErrCode != nil {
		t.Fatalf("b: %v %v", v, b.ErrCode)
	}
	if r := base.WithRefusedBy("app"); r.RefusedBy != "app" || base.RefusedBy != "" || r.Code != base.Code {
		t.Fatalf("WithRefusedBy: %+v, base %+v", r, base)
	}
}

func TestWrite(t *testing.T) {
	cases := []struct {
		name   string
		err    error
		status int
		header string
		body   string
	}{
		{"with header", InvalidToken("the token has expired"), 401, `Bearer realm="wxauth", error="invalid_token"`,
			`{"error":"invalid_token","message":"the token has expired"}`},
		{"errcode", New(401, "invalid_code", "bad code").WithErrCode(40029), 401, "",
			`{"error":"invalid_code","message":"bad code","errcode":40029}`},
		{"wrapped", fmt.Errorf("reading: %w", StoreUnavailable), 503, "1",
			`{"error":"store_unavailable","message":"the session store is not reachable; try again shortly"}`},
		{"refused by the app", New(403, "banned", "this account is closed").WithRefusedBy("app"), 403, "",
			`{"error":"banned","message":"this account is closed","refused_by":"app"}`},
		{"not ours", errors.New("boom"), 500, "", `{"error":"internal_error","message":"internal error"}`},
		{"rate limited rounds up to 1 s", RateLimited("slow", 0), 429, "1", `{"error":"rate_limited","message":"slow"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			if err := Write(w, c.err); err != nil {
				t.Fatal(err)
			}
			if w.Code != c.status {
				t.Fatalf("status %d, want %d", w.Code, c.status)
			}
			if w.Body.String() != c.body {
				t.Fatalf("body %s, want %s", w.Body, c.body)
			}
			got := w.Header().Get("Retry-After") + w.Header().Get("WWW-Authenticate")
			if got != c.header {
				t.Fatalf("header %q, want %q", got, c.header)
			}
			if w.Header().Get("Cache-Control") != "no-store" || !json.Valid(w.Body.Bytes()) {
				t.Fatal("not the contract's JSON")
			}
		})
	}
}
