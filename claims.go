package wxauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/textproto"
	"sort"
	"strconv"

	"go.uber.org/zap"
)

// extraClaim is a claim added by the app's login hook, ready to be handed
// upstream as a header (X-Wx-<Name> unless mapped) and as placeholder
// {http.auth.user.<name>}.
type extraClaim struct {
	name   string
	header string
	value  string
}

// claimValueMax bounds a claim's text: it travels upstream in a header on
// every request of the user.
const claimValueMax = 1024

var (
	errClaimType    = errors.New("must be a string, number or boolean")
	errClaimLong    = fmt.Errorf("is over %d bytes", claimValueMax)
	errClaimControl = errors.New("holds a control character")
)

// extraClaims flattens claims in a stable order. A value that is not a
// valid header value (stored before claims were checked on the way in) is
// left out, with one warning for the view: a bad claim must not cost the
// user every request.
func extraClaims(m map[string]any, headers map[string]string, log *zap.Logger) []extraClaim {
	if len(m) == 0 {
		return nil
	}
	out := make([]extraClaim, 0, len(m))
	var skipped []string
	for k, v := range m {
		if !isPlainName(k) {
			continue
		}
		s, err := claimText(v)
		if err != nil {
			skipped = append(skipped, k)
			continue
		}
		hdr := headers[k]
		if hdr == "" {
			hdr = identityPrefix + k
		}
		out = append(out, extraClaim{name: k, header: textproto.CanonicalMIMEHeaderKey(hdr), value: s})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	if len(skipped) > 0 {
		sort.Strings(skipped)
		// The names only: a value may be personal, and is what broke.
		log.Warn("claims left out of the identity headers: not a string, number or boolean fit for a header", zap.Strings("claims", skipped))
	}
	return out
}

// claimText is a claim value as its header carries it, or why it cannot
// be one. The app's input and stored values pass the same test.
func claimText(v any) (string, error) {
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case json.Number:
		s = x.String()
	case bool:
		return strconv.FormatBool(x), nil
	case float64: // a number decoded without UseNumber
		s = strconv.FormatFloat(x, 'f', -1, 64)
	default:
		return "", errClaimType
	}
	if len(s) > claimValueMax {
		return "", errClaimLong
	}
	for i := 0; i < len(s); i++ {
		// Bytes of multi-byte UTF-8 are all >= 0x80, so a byte test finds
		// exactly U+0000-U+001F and U+007F.
		if s[i] < 0x20 || s[i] == 0x7f {
			return "", errClaimControl
		}
	}
	return s, nil
}

// checkClaimValue tells the app why claim name's value v is refused; nil
// (removing the claim) passes.
func checkClaimValue(name string, v any) error {
	if v == nil {
		return nil
	}
	if _, err := claimText(v); err != nil {
		return fmt.Errorf("claim %s %v", quoteName(name), err)
	}
	return nil
}

// tokenClaims are the claims a new token carries in ext: the ones fit for
// a header, so a token never hands on a value stored before claims were
// checked. m itself is returned when all are fit.
func tokenClaims(m map[string]any) map[string]any {
	fit := make(map[string]any, len(m))
	for k, v := range m {
		if _, err := claimText(v); err == nil {
			fit[k] = v
		}
	}
	switch {
	case len(fit) == len(m):
		return m
	case len(fit) == 0:
		return nil
	}
	return fit
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

// quoteName quotes a name the caller sent, for a message, cut short: a
// name can be as long as the body, the message should stay readable.
func quoteName(name string) string {
	const limit = 64
	if len(name) > limit {
		return fmt.Sprintf("%q...", name[:limit])
	}
	return fmt.Sprintf("%q", name)
}
