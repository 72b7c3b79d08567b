package web

import (
	"net"
	"net/http"
	"net/url"
	"strings"
)

// maxNext bounds next; a longer one goes to "/".
const maxNext = 2048

// SafeNext returns next when it is a path of this site, with an optional
// query: a single leading '/' followed by a character that is neither '/'
// nor '\'. Anything else ("//evil", "/\evil", "https://evil", "evil", a
// control character, and any of these hidden under percent-encoding, which
// a server behind may decode) becomes "/". Bytes a Location header should
// not hold raw (space, non-ASCII) come back percent-encoded.
func SafeNext(next string) string {
	if next == "" || len(next) > maxNext {
		return "/"
	}
	// Each decoding must be safe too: an app may decode the path again and
	// redirect to what it got ("/%2F%2Fevil" is "///evil" once decoded).
	for s, i := next, 0; i < 4; i++ {
		if !sitePath(s) {
			return "/"
		}
		d, err := url.PathUnescape(s)
		if err != nil || d == s {
			break
		}
		s = d
	}
	var b strings.Builder
	for i := 0; i < len(next); i++ {
		switch c := next[i]; {
		case c == ' ' || c == '"' || c == '<' || c == '>' || c >= 0x80:
			b.WriteString("%" + strings.ToUpper(hexByte(c)))
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// sitePath reports whether s is a path on this site as a browser reads
// it: one leading '/' not followed by '/' or '\' (browsers read '\' as
// '/'), and no control character (browsers drop tabs and newlines, which
// could join "/" and "/evil").
func sitePath(s string) bool {
	if s == "" || s[0] != '/' || len(s) > 1 && (s[1] == '/' || s[1] == '\\') {
		return false
	}
	// Dot segments or an empty segment in the path: a browser resolves
	// "/a/..//evil" to "//evil", which an app reading location.pathname
	// would take for another site.
	path, _, _ := strings.Cut(s, "?")
	path, _, _ = strings.Cut(path, "#")
	if strings.Contains(path, "//") || strings.Contains(path+"/", "/./") || strings.Contains(path+"/", "/../") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f || c == '\\' {
			return false
		}
	}
	return true
}

func hexByte(c byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[c>>4], digits[c&15]})
}

// origin is the site's origin as the browser sees it: public_url when set,
// else the request's Host with https when the request came over TLS, or
// through a trusted proxy saying X-Forwarded-Proto: https.
func (rt *Routes) origin(r *http.Request) string {
	if rt.app.PublicURL != "" {
		return rt.app.PublicURL
	}
	scheme := "http"
	if r.TLS != nil || rt.trusted(r) && forwardedHTTPS(r) {
		scheme = "https"
	}
	return normalOrigin(scheme, r.Host)
}

// forwardedHTTPS reports whether the nearest proxy's X-Forwarded-Proto
// says https.
func forwardedHTTPS(r *http.Request) bool {
	v := r.Header.Values("X-Forwarded-Proto")
	if len(v) == 0 {
		return false
	}
	// The last value is the one the nearest proxy added.
	last := v[len(v)-1]
	if i := strings.LastIndexByte(last, ','); i >= 0 {
		last = last[i+1:]
	}
	return strings.EqualFold(strings.TrimSpace(last), "https")
}

// secure reports whether the site is served over https, so its cookies
// are Secure.
func (rt *Routes) secure(r *http.Request) bool {
	return strings.HasPrefix(rt.origin(r), "https://")
}

// normalOrigin is scheme://host in lower case without the scheme's
// default port, the form browsers send in Origin.
func normalOrigin(scheme, host string) string {
	scheme, host = strings.ToLower(scheme), strings.ToLower(host)
	if h, port, err := net.SplitHostPort(host); err == nil &&
		(scheme == "http" && port == "80" || scheme == "https" && port == "443") {
		host = h
		if strings.Contains(h, ":") {
			host = "[" + h + "]"
		}
	}
	return scheme + "://" + host
}

// sameSite reports whether r, a request that changes state, comes from a
// page of this site: its Origin, or without one its Referer, names the
// site's origin. A browser sends Origin with every cross-site POST, so a
// form on another site cannot pass; "null" (a sandboxed or privacy-hiding
// context) does not either.
func (rt *Routes) sameSite(r *http.Request) bool {
	want := rt.origin(r)
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		return err == nil && u.Host != "" && normalOrigin(u.Scheme, u.Host) == want
	}
	ref, err := url.Parse(r.Header.Get("Referer"))
	return err == nil && ref.Host != "" && normalOrigin(ref.Scheme, ref.Host) == want
}
