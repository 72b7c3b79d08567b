package token_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wxauth/caddy-wxauth/token"
)

// FuzzVerify feeds arbitrary strings to Tokens.Verify: it must never panic,
// every failure must wrap ErrInvalid, and whatever verifies must carry a
// signature made by one of the ring's keys over its own header and payload,
// for a subject that was issued. The keys are fixed (not random) because
// every fuzz worker process runs this setup and must agree on them.
func FuzzVerify(f *testing.F) {
	hsSecret := []byte("fuzz-verify-hs256-secret-0123456789abcdef")
	edKey := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	ring, err := token.NewKeyring(
		token.Key{ID: "hs", Alg: token.HS256, Secret: hsSecret},
		token.Key{ID: "ed", Alg: token.EdDSA, Private: edKey},
	)
	if err != nil {
		f.Fatal(err)
	}
	edRing, err := token.NewKeyring(
		token.Key{ID: "ed", Alg: token.EdDSA, Private: edKey},
		token.Key{ID: "hs", Alg: token.HS256, Secret: hsSecret},
	)
	if err != nil {
		f.Fatal(err)
	}
	cfg := token.Config{Audience: "wxfuzz0123456789", TTL: 24 * time.Hour}
	tokens, err := token.New(cfg, ring)
	if err != nil {
		f.Fatal(err)
	}
	edTokens, err := token.New(cfg, edRing)
	if err != nil {
		f.Fatal(err)
	}
	issued := map[string]bool{"o-fuzz-1": true, "o-fuzz-2": true}

	// Hour-aligned so that worker processes issue the same seeds.
	now := time.Now().Truncate(time.Hour)
	hsTok, _, err := tokens.Issue("o-fuzz-1", "u-fuzz", "sid-1", map[string]any{"uid": 1}, now)
	if err != nil {
		f.Fatal(err)
	}
	edTok, _, err := edTokens.Issue("o-fuzz-2", "", "sid-2", nil, now)
	if err != nil {
		f.Fatal(err)
	}
	// The property below is only worth something if real tokens pass it.
	for _, tok := range []string{hsTok, edTok} {
		if _, err := tokens.Verify(tok); err != nil {
			f.Fatalf("a freshly issued token does not verify: %v", err)
		}
	}

	parts := strings.Split(hsTok, ".")
	tampered := []byte(hsTok)
	tampered[len(parts[0])+3] ^= 1 // a payload character
	noneHeader := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	for _, s := range []string{
		hsTok,
		edTok,
		hsTok[:len(hsTok)-1], // truncated signature
		hsTok[:len(hsTok)/2], // truncated mid-payload
		string(tampered),
		noneHeader + "." + parts[1] + ".",
		parts[0] + "." + parts[1] + "." + strings.Split(edTok, ".")[2], // swapped signature
		hsTok + "=",
		"a.b.c",
		"..",
		"",
	} {
		f.Add(s)
	}

	f.Fuzz(func(t *testing.T, s string) {
		claims, err := tokens.Verify(s)
		if err != nil {
			if !errors.Is(err, token.ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			n := 0
			for _, k := range []error{token.ErrMalformed, token.ErrUnknownKey, token.ErrBadSignature, token.ErrAudience, token.ErrExpired, token.ErrClaims} {
				if errors.Is(err, k) {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("error wraps %d kinds, want 1: %v", n, err)
			}
			if claims != nil {
				t.Fatal("claims returned with an error")
			}
			return
		}
		if claims == nil {
			t.Fatal("nil claims without an error")
		}
		if !issued[claims.Subject] {
			t.Fatalf("verified a token for subject %q that was never issued", claims.Subject)
		}
		if !signedByRing(s, hsSecret, edKey.Public().(ed25519.PublicKey)) {
			t.Fatalf("verified a token whose signature none of the keys made: %q", s)
		}
	})
}

// signedByRing checks s's signature independently of the jwt library: the
// header's kid and alg name one of the two keys, and the signature segment
// is that key's signature over the first two segments.
func signedByRing(s string, secret []byte, pub ed25519.PublicKey) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return false
	}
	rawHeader, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return false
	}
	var h struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	if json.Unmarshal(rawHeader, &h) != nil {
		return false
	}
	sig, err := base64.RawURLEncoding.Strict().DecodeString(parts[2])
	if err != nil {
		return false
	}
	signed := []byte(parts[0] + "." + parts[1])
	switch {
	case h.Kid == "hs" && h.Alg == token.HS256:
		mac := hmac.New(sha256.New, secret)
		mac.Write(signed)
		return hmac.Equal(sig, mac.Sum(nil))
	case h.Kid == "ed" && h.Alg == token.EdDSA:
		return ed25519.Verify(pub, signed, sig)
	}
	return false
}
