package users

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestClaimText(t *testing.T) {
	cases := []struct {
		name string
		v    any
		want string
		err  error
	}{
		{"string", "gold", "gold", nil},
		{"empty string", "", "", nil},
		{"utf-8", "会员 ✓", "会员 ✓", nil},
		{"C1 control is not ASCII control", "a\u0085b", "a\u0085b", nil},
		{"1024 bytes", strings.Repeat("x", 1024), strings.Repeat("x", 1024), nil},
		{"1025 bytes", strings.Repeat("x", 1025), "", ErrClaimLong},
		{"CR LF", "a\r\nb", "", ErrClaimControl},
		{"LF", "a\nb", "", ErrClaimControl},
		{"tab", "a\tb", "", ErrClaimControl},
		{"NUL", "a\x00b", "", ErrClaimControl},
		{"unit separator", "a\x1fb", "", ErrClaimControl},
		{"DEL", "a\x7fb", "", ErrClaimControl},
		{"number", json.Number("42"), "42", nil},
		{"big number", json.Number("12345678901234567890"), "12345678901234567890", nil},
		{"fraction", json.Number("-1.5e3"), "-1.5e3", nil},
		{"long number", json.Number(strings.Repeat("9", 1025)), "", ErrClaimLong},
		{"true", true, "true", nil},
		{"false", false, "false", nil},
		{"float64 number", float64(1001), "1001", nil},
		{"array", []any{"buyer", "vip"}, "", ErrClaimType},
		{"object", map[string]any{"a": json.Number("1")}, "", ErrClaimType},
		{"null", nil, "", ErrClaimType},
		{"other Go type", 42, "", ErrClaimType},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ClaimText(c.v)
			if !errors.Is(err, c.err) || got != c.want {
				t.Fatalf("ClaimText(%#v) = %q, %v; want %q, %v", c.v, got, err, c.want, c.err)
			}
		})
	}
}

func TestCheckClaims(t *testing.T) {
	cases := []struct {
		name   string
		claims map[string]any
		refuse string // a part of the message, "" when accepted
	}{
		{"plain values", map[string]any{"uid": json.Number("42"), "vip": true, "tier": "gold"}, ""},
		{"null removes", map[string]any{"tier": nil}, ""},
		{"1024-byte string", map[string]any{"bio": strings.Repeat("x", 1024)}, ""},
		{"CR LF", map[string]any{"tier": "a\r\nb"}, `claim "tier" holds a control character`},
		{"1025-byte string", map[string]any{"bio": strings.Repeat("x", 1025)}, `claim "bio" is over 1024 bytes`},
		{"array", map[string]any{"roles": []any{"a"}}, `claim "roles" must be a string, number or boolean`},
		{"object", map[string]any{"addr": map[string]any{"a": "1"}}, `claim "addr" must be`},
		{"reserved name", map[string]any{"OpenID": "x"}, "reserved"},
		{"an identity header's name", map[string]any{"surface": "oa"}, "reserved"},
		{"an identity placeholder's name", map[string]any{"App_ID": "wx1"}, "reserved"},
		{"the platform", map[string]any{"platform": "qq"}, "reserved"},
		{"bad name", map[string]any{"a b": "x"}, "not a valid name"},
		{"the first bad claim by name", map[string]any{"b": []any{}, "a": "\n"}, `claim "a"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := CheckClaims(c.claims)
			switch {
			case c.refuse == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.refuse != "" && (err == nil || !strings.Contains(err.Error(), c.refuse)):
				t.Fatalf("got %v, want an error with %q", err, c.refuse)
			}
		})
	}
}
