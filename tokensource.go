package wxauth

import (
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
)

// TokenSource says where a token is read from.
type TokenSource struct {
	// One of header, cookie or query.
	From string `json:"from"`
	// The header, cookie or query parameter name.
	Name string `json:"name"`
	// For headers: the auth scheme before the token (e.g. Bearer), matched
	// case-insensitively. Empty means the header holds the bare token, as in
	// mini-programs that send it in a custom header.
	Scheme string `json:"scheme,omitempty"`
}

func (s *TokenSource) validate() error {
	switch s.From {
	case "header", "cookie", "query":
	default:
		return fmt.Errorf("wxauth: token_from must be header, cookie or query, not %q", s.From)
	}
	if s.Name == "" {
		return fmt.Errorf("wxauth: token_from %s needs a name", s.From)
	}
	if s.Scheme != "" && s.From != "header" {
		return fmt.Errorf("wxauth: a scheme only applies to token_from header")
	}
	if s.From == "header" {
		s.Name = textproto.CanonicalMIMEHeaderKey(s.Name)
	}
	return nil
}

// extract returns the token this source finds in r, or "". Header lookups use
// the canonical key directly so the hot path allocates nothing.
func (s *TokenSource) extract(r *http.Request) string {
	switch s.From {
	case "header":
		return s.fromHeader(r.Header[s.Name])
	case "cookie":
		c, err := r.Cookie(s.Name)
		if err != nil {
			return ""
		}
		return c.Value
	case "query":
		return r.URL.Query().Get(s.Name)
	}
	return ""
}

// fromHeader returns the token in vals, the values of a header source's
// header, or "".
func (s *TokenSource) fromHeader(vals []string) string {
	if len(vals) == 0 {
		return ""
	}
	v := vals[0]
	if s.Scheme == "" {
		return strings.TrimSpace(v)
	}
	n := len(s.Scheme)
	if len(v) <= n || v[n] != ' ' || !strings.EqualFold(v[:n], s.Scheme) {
		return ""
	}
	return strings.TrimSpace(v[n+1:])
}

// remove takes this source's token out of r, so the credential reaches no
// later handler, upstream or log: the whole header, every cookie of the
// name (other cookies kept as sent), every query parameter of the name
// (other parameters kept as sent, and RequestURI kept equal to the URL).
func (s *TokenSource) remove(r *http.Request) {
	switch s.From {
	case "header":
		delete(r.Header, s.Name)
	case "cookie":
		removeCookie(r.Header, s.Name)
	case "query":
		removeQueryParam(r, s.Name)
	}
}

// removeCookie drops the name=value pairs of name from every Cookie line,
// and a line that is left empty.
func removeCookie(h http.Header, name string) {
	lines := h["Cookie"]
	kept := lines[:0]
	for _, line := range lines {
		if !strings.Contains(line, name) {
			kept = append(kept, line)
			continue
		}
		var b strings.Builder
		for pair := range strings.SplitSeq(line, ";") {
			pair = textproto.TrimString(pair)
			if pair == "" {
				continue
			}
			if k, _, _ := strings.Cut(pair, "="); textproto.TrimString(k) == name {
				continue
			}
			if b.Len() > 0 {
				b.WriteString("; ")
			}
			b.WriteString(pair)
		}
		if b.Len() > 0 {
			kept = append(kept, b.String())
		}
	}
	if len(kept) == 0 {
		delete(h, "Cookie")
		return
	}
	h["Cookie"] = kept
}

// removeQueryParam drops the parameters named name from r's query.
func removeQueryParam(r *http.Request, name string) {
	raw := r.URL.RawQuery
	if raw == "" {
		return
	}
	var b strings.Builder
	for pair := range strings.SplitSeq(raw, "&") {
		k, _, _ := strings.Cut(pair, "=")
		if uk, err := url.QueryUnescape(k); err == nil {
			k = uk
		}
		if k == name {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(pair)
	}
	if b.Len() == len(raw) {
		return // not there
	}
	r.URL.RawQuery = b.String()
	// The request line is what {http.request.uri} and some handlers read.
	if path, _, ok := strings.Cut(r.RequestURI, "?"); ok {
		r.RequestURI = path
		if r.URL.RawQuery != "" {
			r.RequestURI += "?" + r.URL.RawQuery
		}
	}
}
