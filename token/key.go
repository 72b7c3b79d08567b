package token

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Supported signing algorithms (JWS "alg" values).
const (
	// HS256 is HMAC-SHA256 with a shared secret; the default.
	HS256 = "HS256"
	// EdDSA is Ed25519; its public keys can be published as a JWKS.
	EdDSA = "EdDSA"
)

// MinSecretLen is the shortest HS256 secret accepted, in bytes (the size
// of the SHA-256 output, as RFC 7518 section 3.2 requires).
const MinSecretLen = 32

// Key is one signing key. Its Secret or Private field is key material:
// never log it or put it in an error.
type Key struct {
	// ID is the "kid" header of the tokens it signs.
	ID string
	// Alg is HS256 or EdDSA.
	Alg string
	// Secret is the HS256 secret, at least MinSecretLen bytes.
	Secret []byte
	// Private is the EdDSA private key.
	Private ed25519.PrivateKey
}

// GenerateKey makes a new random key of alg (HS256 when empty) named id.
// HS256 secrets are MinSecretLen bytes from crypto/rand.
func GenerateKey(alg, id string) (Key, error) {
	if alg == "" {
		alg = HS256
	}
	k := Key{ID: id, Alg: alg}
	switch alg {
	case HS256:
		k.Secret = make([]byte, MinSecretLen)
		if _, err := rand.Read(k.Secret); err != nil {
			return Key{}, fmt.Errorf("token: generating key: %w", err)
		}
	case EdDSA:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return Key{}, fmt.Errorf("token: generating key: %w", err)
		}
		k.Private = priv
	default:
		return Key{}, fmt.Errorf("token: unsupported algorithm %q (want %s or %s)", alg, HS256, EdDSA)
	}
	return k, k.validate()
}

// validate checks that k is complete and its material fits its algorithm.
func (k Key) validate() error {
	if k.ID == "" {
		return errors.New("token: key without id")
	}
	switch k.Alg {
	case HS256:
		if len(k.Secret) < MinSecretLen {
			return fmt.Errorf("token: key %q: HS256 secret is %d bytes, need at least %d", k.ID, len(k.Secret), MinSecretLen)
		}
		if k.Private != nil {
			return fmt.Errorf("token: key %q: HS256 key must not carry an Ed25519 key", k.ID)
		}
	case EdDSA:
		if len(k.Private) != ed25519.PrivateKeySize {
			return fmt.Errorf("token: key %q: Ed25519 private key is %d bytes, want %d", k.ID, len(k.Private), ed25519.PrivateKeySize)
		}
		if k.Secret != nil {
			return fmt.Errorf("token: key %q: EdDSA key must not carry an HS256 secret", k.ID)
		}
		// The private key embeds its public half; a mismatch would make
		// every token it signs unverifiable.
		pub := ed25519.NewKeyFromSeed(k.Private.Seed()).Public().(ed25519.PublicKey)
		if !bytes.Equal(pub, k.Private[ed25519.SeedSize:]) {
			return fmt.Errorf("token: key %q: Ed25519 private key is inconsistent", k.ID)
		}
	default:
		return fmt.Errorf("token: key %q: unsupported algorithm %q (want %s or %s)", k.ID, k.Alg, HS256, EdDSA)
	}
	return nil
}

// storedKey is the storage form of a Key: a private JWK (RFC 7517/8037)
// with kid and alg, so the material stays readable by standard tools.
type storedKey struct {
	Kty string `json:"kty"`
	Crv string `json:"crv,omitempty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	K   string `json:"k,omitempty"` // HS256 secret
	D   string `json:"d,omitempty"` // Ed25519 seed
	X   string `json:"x,omitempty"` // Ed25519 public key
}

var b64 = base64.RawURLEncoding

// Marshal encodes k as a private JWK for storage. The result contains the
// key material.
func (k Key) Marshal() ([]byte, error) {
	if err := k.validate(); err != nil {
		return nil, err
	}
	s := storedKey{Kid: k.ID, Alg: k.Alg}
	switch k.Alg {
	case HS256:
		s.Kty, s.K = "oct", b64.EncodeToString(k.Secret)
	case EdDSA:
		s.Kty, s.Crv = "OKP", "Ed25519"
		s.D = b64.EncodeToString(k.Private.Seed())
		s.X = b64.EncodeToString(k.Private[ed25519.SeedSize:])
	}
	return json.Marshal(s)
}

// UnmarshalKey decodes a key written by Key.Marshal and validates it.
// Errors never quote the material.
func UnmarshalKey(b []byte) (Key, error) {
	var s storedKey
	if err := json.Unmarshal(b, &s); err != nil {
		return Key{}, errors.New("token: stored key is not valid JSON")
	}
	k := Key{ID: s.Kid, Alg: s.Alg}
	switch {
	case s.Alg == HS256 && s.Kty == "oct":
		secret, err := b64.DecodeString(s.K)
		if err != nil {
			return Key{}, fmt.Errorf("token: stored key %q: bad base64 in k", s.Kid)
		}
		k.Secret = secret
	case s.Alg == EdDSA && s.Kty == "OKP" && s.Crv == "Ed25519":
		seed, err := b64.DecodeString(s.D)
		if err != nil || len(seed) != ed25519.SeedSize {
			return Key{}, fmt.Errorf("token: stored key %q: bad Ed25519 seed in d", s.Kid)
		}
		k.Private = ed25519.NewKeyFromSeed(seed)
		if s.X != "" && s.X != b64.EncodeToString(k.Private[ed25519.SeedSize:]) {
			return Key{}, fmt.Errorf("token: stored key %q: x does not match d", s.Kid)
		}
	default:
		return Key{}, fmt.Errorf("token: stored key %q: unsupported kty/crv/alg %q/%q/%q", s.Kid, s.Kty, s.Crv, s.Alg)
	}
	return k, k.validate()
}

// ParseSecret decodes a configured HS256 secret: base64, standard or URL
// alphabet, padded or not. It must decode to at least MinSecretLen bytes.
func ParseSecret(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("token: signing secret is empty")
	}
	// Padding is optional; the alphabet is told apart by '+', '/' vs '-', '_'.
	unpadded := strings.TrimRight(s, "=")
	enc := base64.RawStdEncoding
	if strings.ContainsAny(unpadded, "-_") {
		enc = base64.RawURLEncoding
	}
	b, err := enc.DecodeString(unpadded)
	if err != nil {
		// Do not wrap: base64 errors quote the offending byte offset only,
		// but keep the message free of the secret regardless.
		return nil, errors.New("token: signing secret is not valid base64 (standard or URL alphabet)")
	}
	if len(b) < MinSecretLen {
		return nil, fmt.Errorf("token: signing secret decodes to %d bytes, need at least %d (e.g. `openssl rand -base64 32`)", len(b), MinSecretLen)
	}
	return b, nil
}
