package guard

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

// Validate checks the source and puts a header's name in canonical form.
func (s *TokenSource) Validate() error {
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
		return queryToken(r.URL.RawQuery, s.Name)
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

// looksLikeToken reports whether v has a JWT's shape: three base64url
// parts separated by dots.
func looksLikeToken(v string) bool {
	parts := 0
	for part := range strings.SplitSeq(v, ".") {
		parts++
		if part == "" || strings.TrimLeft(part, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			return false
		}
	}
	return parts == 3
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

// A query is cut into parameters at every '&' and ';'. Go's url.ParseQuery
// refuses ';', but many app servers still split on it: to them
// "x=1;access_token=t" carries a token, so to wxauth it does too, and what
// extract checks and remove takes out are found by the same cut.
const querySeps = "&;"

// paramName decodes a parameter's name; ok is false when it does not decode
// (a bad escape), so that no one can say which name an app server reads.
func paramName(param string) (name string, ok bool) {
	k, _, _ := strings.Cut(param, "=")
	name, err := url.QueryUnescape(k)
	return name, err == nil
}

// queryToken returns the first non-empty value of a parameter named name,
// whatever its separator or escaping. The first non-empty one, not the
// first: "?access_token=&access_token=t" must not pass as anonymous with a
// token left in it. A value that does not decode is returned as sent, to be
// refused as a token rather than passed on unchecked.
func queryToken(raw, name string) string {
	for raw != "" {
		param := raw
		if i := strings.IndexAny(raw, querySeps); i >= 0 {
			param, raw = raw[:i], raw[i+1:]
		} else {
			raw = ""
		}
		if k, ok := paramName(param); !ok || k != name {
			continue
		}
		_, v, _ := strings.Cut(param, "=")
		if dv, err := url.QueryUnescape(v); err == nil {
			v = dv
		}
		if v != "" {
			return v
		}
	}
	return ""
}

// withoutParam returns the raw query without any parameter named name, and
// without those whose name does not decode: wxauth cannot tell they are not
// the token, so they go rather than risk it. Every other parameter stays as
// sent, after the separator it came after. changed is false when nothing
// went.
func withoutParam(raw, name string) (out string, changed bool) {
	var b strings.Builder
	kept := false
	for start := 0; start <= len(raw); {
		end := strings.IndexAny(raw[start:], querySeps)
		if end < 0 {
			end = len(raw)
		} else {
			end += start
		}
		if k, ok := paramName(raw[start:end]); !ok || k == name {
			changed = true
		} else {
			if kept {
				b.WriteByte(raw[start-1])
			}
			b.WriteString(raw[start:end])
			kept = true
		}
		start = end + 1
	}
	if !changed {
		return raw, false
	}
	return b.String(), true
}

// removeQueryParam drops the parameters named name from r's URL, which
// reverse_proxy sends on, and from RequestURI, which {http.request.uri} and
// some handlers read. Each is cut on its own: a rewrite before wxauth may
// have made them differ.
func removeQueryParam(r *http.Request, name string) {
	if r.URL.RawQuery != "" {
		r.URL.RawQuery, _ = withoutParam(r.URL.RawQuery, name)
	}
	path, query, ok := strings.Cut(r.RequestURI, "?")
	if !ok {
		return
	}
	if query, changed := withoutParam(query, name); changed {
		r.RequestURI = path
		if query != "" {
			r.RequestURI += "?" + query
		}
	}
}
