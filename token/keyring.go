package token

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/golang-jwt/jwt/v5"
)

// Keyring is an immutable set of keys: the first one signs, all of them
// verify. Tokens are matched to a key by their kid header; a token
// without kid is accepted only when the ring holds a single key.
type Keyring struct {
	keys []Key
	byID map[string]*verifier
	jwks []byte
}

// verifier is what verification needs of a key, typed by algorithm so
// that HS256 material can never check an EdDSA-declared token or the
// reverse (algorithm confusion).
type verifier struct {
	alg    string
	secret []byte            // HS256
	public ed25519.PublicKey // EdDSA
}

// NewKeyring validates keys (each complete, ids unique) and builds a ring
// whose first key signs. Algorithms may be mixed. The keys are copied.
func NewKeyring(keys ...Key) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("token: keyring needs at least one key")
	}
	r := &Keyring{
		keys: make([]Key, 0, len(keys)),
		byID: make(map[string]*verifier, len(keys)),
	}
	for _, k := range keys {
		if err := k.validate(); err != nil {
			return nil, err
		}
		if _, dup := r.byID[k.ID]; dup {
			return nil, fmt.Errorf("token: duplicate key id %q in keyring", k.ID)
		}
		k.Secret = bytes.Clone(k.Secret)
		k.Private = ed25519.PrivateKey(bytes.Clone(k.Private))
		v := &verifier{alg: k.Alg, secret: k.Secret}
		if k.Alg == EdDSA {
			v.public = k.Private.Public().(ed25519.PublicKey)
		}
		r.keys = append(r.keys, k)
		r.byID[k.ID] = v
	}
	r.jwks = r.buildJWKS()
	return r, nil
}

// Signing returns the key that signs new tokens.
func (r *Keyring) Signing() Key { return r.keys[0] }

// IDs returns the key ids of the ring, the signing key first.
func (r *Keyring) IDs() []string {
	ids := make([]string, len(r.keys))
	for i, k := range r.keys {
		ids[i] = k.ID
	}
	return ids
}

// jwk is the public JWK of an Ed25519 key (RFC 8037).
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

func (r *Keyring) buildJWKS() []byte {
	set := struct {
		Keys []jwk `json:"keys"`
	}{Keys: []jwk{}}
	// Only public EdDSA keys: HS256 secrets are symmetric and must stay
	// on the server.
	for _, k := range r.keys {
		if k.Alg != EdDSA {
			continue
		}
		set.Keys = append(set.Keys, jwk{
			Kty: "OKP", Crv: "Ed25519", Kid: k.ID, Alg: EdDSA, Use: "sig",
			X: b64.EncodeToString(r.byID[k.ID].public),
		})
	}
	b, err := json.Marshal(set)
	if err != nil {
		panic("token: marshal JWKS: " + err.Error()) // plain strings only; cannot happen
	}
	return b
}

// JWKS returns the ring's public EdDSA keys as a JSON Web Key Set, for
// services that verify tokens themselves. HS256 keys never appear.
func (r *Keyring) JWKS() []byte { return bytes.Clone(r.jwks) }

// Errors of the key lookup; wrapped into ErrInvalid by Verify.
var (
	errNoKid      = errors.New("kid header required: the keyring has several keys")
	errBadKid     = errors.New("kid header is not a string")
	errUnknownKid = errors.New("unknown key id")
	errAlgMatch   = errors.New("alg header does not match the key's algorithm")
)

// keyfunc picks the verification key of t by kid, and pins the token's
// algorithm to that key's: the material returned has the Go type the
// declared method expects only when the two agree.
func (r *Keyring) keyfunc(t *jwt.Token) (any, error) {
	var v *verifier
	switch kid := t.Header["kid"].(type) {
	case nil:
		if _, present := t.Header["kid"]; present || len(r.keys) != 1 {
			return nil, errNoKid
		}
		v = r.byID[r.keys[0].ID]
	case string:
		if v = r.byID[kid]; v == nil {
			return nil, errUnknownKid
		}
	default:
		return nil, errBadKid
	}
	if t.Method == nil || t.Method.Alg() != v.alg {
		return nil, errAlgMatch
	}
	if v.alg == EdDSA {
		return v.public, nil
	}
	return v.secret, nil
}
