package session

import (
	"encoding/base64"
	"strings"
	"testing"
)

func TestNewID(t *testing.T) {
	seen := make(map[string]bool)
	for range 1000 {
		id := NewID()
		b, err := base64.RawURLEncoding.DecodeString(id)
		if err != nil || len(b) != 32 {
			t.Fatalf("NewID() = %q: not 32 bytes of base64url without padding", id)
		}
		if !validID(id) {
			t.Fatalf("NewID() = %q is not a valid id", id)
		}
		if seen[id] {
			t.Fatalf("NewID() repeated %q", id)
		}
		seen[id] = true
	}
	a, b := RandomKey(), RandomKey()
	if len(a) != 32 || string(a) == string(b) {
		t.Fatalf("RandomKey: %x, %x", a, b)
	}
}

func TestValidID(t *testing.T) {
	for id, want := range map[string]bool{
		"oXyZ_12-ab":                   true,
		"o6_bmjrPTlm6_2sgVt7hMZOPfL2M": true,
		"a.b":                          true,
		"a=b+c@d":                      true,
		"":                             false,
		".":                            false,
		"..":                           false,
		"a..b":                         false,
		"../x":                         false,
		"a/b":                          false,
		`a\b`:                          false,
		"a\x00":                        false,
		"a\tb":                         false,
		"a\u0085b":                     false,
		"\xff":                         false,
		strings.Repeat("x", 128):       true,
		strings.Repeat("x", 129):       false,
	} {
		if got := validID(id); got != want {
			t.Errorf("validID(%q) = %v, want %v", id, got, want)
		}
	}
}
