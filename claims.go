package wxauth

import (
	"net/textproto"
	"sort"

	"github.com/wxauth/caddy-wxauth/internal/users"
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
		if !users.PlainName(k) {
			continue
		}
		s, err := users.ClaimText(v)
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

// tokenClaims are the claims a new token carries in ext: the ones fit for
// a header, so a token never hands on a value stored before claims were
// checked. m itself is returned when all are fit.
func tokenClaims(m map[string]any) map[string]any {
	fit := make(map[string]any, len(m))
	for k, v := range m {
		if _, err := users.ClaimText(v); err == nil {
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
