package users

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/wxauth/caddy-wxauth/internal/strictjson"
)

// ClaimValueMax bounds a claim's text: it travels upstream in a header on
// every request of the user.
const ClaimValueMax = 1024

// Why a claim value is refused.
var (
	ErrClaimType    = errors.New("must be a string, number or boolean")
	ErrClaimLong    = fmt.Errorf("is over %d bytes", ClaimValueMax)
	ErrClaimControl = errors.New("holds a control character")
)

// CheckClaims refuses claims the app may not set: reserved names (in any
// case, since headers are case-insensitive), names that are not plain, and
// values that could not travel as a header (see ClaimText).
func CheckClaims(claims map[string]any) error {
	// In name order, so the message names the same claim every time.
	for _, k := range slices.Sorted(maps.Keys(claims)) {
		v := claims[k]
		if reservedClaims[strings.ToLower(k)] || !PlainName(k) {
			return fmt.Errorf("claim %s is reserved or not a valid name", strictjson.Quote(k))
		}
		if err := checkClaimValue(k, v); err != nil {
			return err
		}
	}
	return nil
}

// reservedClaims cannot be set by the app: they carry wxauth's own identity.
var reservedClaims = map[string]bool{
	"iss": true, "sub": true, "aud": true, "exp": true, "nbf": true, "iat": true, "jti": true,
	"sid": true, "openid": true, "unionid": true, "id": true, "ext": true,
	"plt": true, "srf": true, "anon": true, "platform": true, "surface": true, "appid": true, "app_id": true, "anonymous": true,
}

// ReservedClaim reports whether a claim named name would stand for
// wxauth's own identity (a header X-Wx-<Name> or a placeholder
// {http.auth.user.<name>} wxauth sets): such a claim is never set, and one
// stored before it was reserved is never handed on.
func ReservedClaim(name string) bool { return reservedClaims[strings.ToLower(name)] }

// ClaimText is a claim value as its header carries it, or why it cannot
// be one. The app's input and stored values pass the same test.
func ClaimText(v any) (string, error) {
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
		return "", ErrClaimType
	}
	if len(s) > ClaimValueMax {
		return "", ErrClaimLong
	}
	for i := 0; i < len(s); i++ {
		// Bytes of multi-byte UTF-8 are all >= 0x80, so a byte test finds
		// exactly U+0000-U+001F and U+007F.
		if s[i] < 0x20 || s[i] == 0x7f {
			return "", ErrClaimControl
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
	if _, err := ClaimText(v); err != nil {
		return fmt.Errorf("claim %s %v", strictjson.Quote(name), err)
	}
	return nil
}

// PlainName reports whether k is 1-64 letters, digits, '-' or '_': safe as
// a header name, a placeholder, and a path element of store keys.
func PlainName(k string) bool {
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
