package wxauth

import (
	"encoding/json"
	"fmt"
	"net/textproto"
	"sort"
	"strconv"
	"strings"
)

// extraClaim is a claim added by the app's login hook, ready to be handed
// upstream as a header (X-Wx-<Name> unless mapped) and as placeholder
// {http.auth.user.<name>}.
type extraClaim struct {
	name   string
	header string
	value  string
}

// extraClaims flattens hook claims in a stable order. Arrays become
// comma-separated lists; objects are skipped (no header form fits them).
func extraClaims(m map[string]any, headers map[string]string) []extraClaim {
	if len(m) == 0 {
		return nil
	}
	out := make([]extraClaim, 0, len(m))
	for k, v := range m {
		s, ok := claimString(v)
		if !ok || !isPlainName(k) {
			continue
		}
		hdr := headers[k]
		if hdr == "" {
			hdr = identityPrefix + k
		}
		out = append(out, extraClaim{name: k, header: textproto.CanonicalMIMEHeaderKey(hdr), value: s})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

func claimString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	case bool:
		return strconv.FormatBool(x), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case []any:
		parts := make([]string, 0, len(x))
		for _, e := range x {
			s, ok := claimString(e)
			if !ok {
				return "", false
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, ","), true
	case nil:
		return "", false
	default:
		return fmt.Sprint(x), true
	}
}

// isPlainName reports whether k is 1-64 letters, digits, '-' or '_': safe
// as a header name, a placeholder, and a path element of store keys.
func isPlainName(k string) bool {
	if k == "" || len(k) > 64 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
