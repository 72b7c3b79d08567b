package wxauth

import (
	"fmt"
	"net/http"
	"net/textproto"
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
		vals := r.Header[s.Name]
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
