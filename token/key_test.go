package token

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

func mustKey(t testing.TB, alg, id string) Key {
	t.Helper()
	k, err := GenerateKey(alg, id)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestGenerateKey(t *testing.T) {
	hs := mustKey(t, "", "a")
	if hs.Alg != HS256 || len(hs.Secret) != MinSecretLen || hs.Private != nil {
		t.Fatalf("default key: alg %q, %d secret bytes", hs.Alg, len(hs.Secret))
	}
	if hs2 := mustKey(t, HS256, "a"); bytes.Equal(hs.Secret, hs2.Secret) {
		t.Fatal("two generated secrets are equal")
	}
	ed := mustKey(t, EdDSA, "b")
	if len(ed.Private) != ed25519.PrivateKeySize || ed.Secret != nil {
		t.Fatalf("EdDSA key: %d private bytes", len(ed.Private))
	}
	if _, err := GenerateKey("RS256", "c"); err == nil {
		t.Fatal("RS256 accepted")
	}
	if _, err := GenerateKey(HS256, ""); err == nil {
		t.Fatal("empty id accepted")
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	for _, alg := range []string{HS256, EdDSA} {
		k := mustKey(t, alg, "kid-"+alg)
		b, err := k.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		got, err := UnmarshalKey(b)
		if err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		if got.ID != k.ID || got.Alg != k.Alg || !bytes.Equal(got.Secret, k.Secret) || !bytes.Equal(got.Private, k.Private) {
			t.Fatalf("%s: round trip changed the key", alg)
		}
	}
}

func TestUnmarshalKeyRefuses(t *testing.T) {
	ed := mustKey(t, EdDSA, "e")
	other := mustKey(t, EdDSA, "o")
	seed := b64.EncodeToString(ed.Private.Seed())
	secret := b64.EncodeToString(bytes.Repeat([]byte{7}, 31))
	for name, in := range map[string]string{
		"garbage":     `not json`,
		"short hs":    `{"kty":"oct","kid":"h","alg":"HS256","k":"` + secret + `"}`,
		"bad b64":     `{"kty":"oct","kid":"h","alg":"HS256","k":"***"}`,
		"no kid":      `{"kty":"oct","alg":"HS256","k":"` + b64.EncodeToString(make([]byte, 32)) + `"}`,
		"kty vs alg":  `{"kty":"oct","kid":"e","alg":"EdDSA","k":"` + seed + `"}`,
		"short seed":  `{"kty":"OKP","crv":"Ed25519","kid":"e","alg":"EdDSA","d":"AAAA"}`,
		"x mismatch":  `{"kty":"OKP","crv":"Ed25519","kid":"e","alg":"EdDSA","d":"` + seed + `","x":"` + b64.EncodeToString(other.Private[32:]) + `"}`,
		"rsa":         `{"kty":"RSA","kid":"r","alg":"RS256"}`,
		"wrong curve": `{"kty":"OKP","crv":"X25519","kid":"e","alg":"EdDSA","d":"` + seed + `"}`,
	} {
		if _, err := UnmarshalKey([]byte(in)); err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), seed) {
			t.Errorf("%s: error leaks key material", name)
		}
	}
}

func TestParseSecret(t *testing.T) {
	raw := make([]byte, 33)
	for i := range raw {
		raw[i] = byte(i*37 + 250) // yields '+', '/' or '-', '_' in the encodings
	}
	for name, in := range map[string]string{
		"std padded":   base64.StdEncoding.EncodeToString(raw[:32]),
		"std raw":      base64.RawStdEncoding.EncodeToString(raw[:32]),
		"url padded":   base64.URLEncoding.EncodeToString(raw[:32]),
		"url raw":      base64.RawURLEncoding.EncodeToString(raw[:32]),
		"spaces":       "  " + base64.StdEncoding.EncodeToString(raw[:32]) + "\n",
		"33 bytes std": base64.StdEncoding.EncodeToString(raw),
	} {
		got, err := ParseSecret(in)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !bytes.Equal(got, raw[:len(got)]) || len(got) < 32 {
			t.Errorf("%s: decoded wrong bytes", name)
		}
	}
	short := base64.StdEncoding.EncodeToString(raw[:31])
	for name, in := range map[string]string{
		"empty":         "",
		"short":         short,
		"not base64":    strings.Repeat("!", 44),
		"mixed":         "ab+_" + base64.RawStdEncoding.EncodeToString(raw[:32]),
		"inner padding": base64.StdEncoding.EncodeToString(raw[:16]) + base64.StdEncoding.EncodeToString(raw[16:32]) + "x",
	} {
		_, err := ParseSecret(in)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if in != "" && strings.Contains(err.Error(), strings.TrimSpace(in)) {
			t.Errorf("%s: error quotes the secret", name)
		}
	}
	if _, err := ParseSecret(short); err == nil || !strings.Contains(err.Error(), "31 bytes") {
		t.Errorf("short secret error not clear: %v", err)
	}
}

func TestNewKeyringRefuses(t *testing.T) {
	a := mustKey(t, HS256, "a")
	for name, keys := range map[string][]Key{
		"none":         nil,
		"duplicate id": {a, mustKey(t, EdDSA, "a")},
		"short secret": {{ID: "s", Alg: HS256, Secret: make([]byte, 16)}},
		"no id":        {{Alg: HS256, Secret: make([]byte, 32)}},
		"bad alg":      {{ID: "x", Alg: "none", Secret: make([]byte, 32)}},
		"ed no key":    {{ID: "e", Alg: EdDSA}},
		"both":         {{ID: "b", Alg: HS256, Secret: make([]byte, 32), Private: mustKey(t, EdDSA, "e").Private}},
	} {
		if _, err := NewKeyring(keys...); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestKeyringCopiesKeys(t *testing.T) {
	k := mustKey(t, HS256, "a")
	orig := bytes.Clone(k.Secret)
	r, err := NewKeyring(k)
	if err != nil {
		t.Fatal(err)
	}
	k.Secret[0] ^= 0xff
	if !bytes.Equal(r.Signing().Secret, orig) {
		t.Fatal("keyring shares the caller's secret slice")
	}
}

func TestJWKS(t *testing.T) {
	hs := mustKey(t, HS256, "hs")
	ed1 := mustKey(t, EdDSA, "ed1")
	ed2 := mustKey(t, EdDSA, "ed2")
	ring, err := NewKeyring(ed2, hs, ed1)
	if err != nil {
		t.Fatal(err)
	}
	js := ring.JWKS()
	for _, secret := range []string{b64.EncodeToString(hs.Secret), base64.StdEncoding.EncodeToString(hs.Secret), b64.EncodeToString(ed1.Private.Seed())} {
		if strings.Contains(string(js), secret) {
			t.Fatal("JWKS leaks private key material")
		}
	}
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(js, &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 2 {
		t.Fatalf("JWKS has %d keys, want the 2 EdDSA ones: %s", len(set.Keys), js)
	}
	for _, k := range set.Keys {
		if k["kty"] != "OKP" || k["crv"] != "Ed25519" || k["alg"] != EdDSA || k["use"] != "sig" || k["d"] != "" || k["k"] != "" {
			t.Fatalf("bad JWK %v", k)
		}
	}

	// A holder of the JWKS alone can verify an EdDSA token.
	tk, err := New(Config{Audience: "wxapp"}, ring)
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := tk.Issue("openid-1", "", "sid-1", nil, now())
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	var hdr struct{ Kid, Alg string }
	hb, _ := b64.DecodeString(parts[0])
	if err := json.Unmarshal(hb, &hdr); err != nil || hdr.Kid != "ed2" || hdr.Alg != EdDSA {
		t.Fatalf("header %s: %v", hb, err)
	}
	sig, err := b64.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	verified := false
	for _, k := range set.Keys {
		if k["kid"] != hdr.Kid {
			continue
		}
		x, err := base64.RawURLEncoding.DecodeString(k["x"])
		if err != nil || len(x) != ed25519.PublicKeySize {
			t.Fatalf("bad x %q", k["x"])
		}
		verified = ed25519.Verify(ed25519.PublicKey(x), []byte(parts[0]+"."+parts[1]), sig)
	}
	if !verified {
		t.Fatal("token does not verify with the JWKS key")
	}

	hsOnly, _ := NewKeyring(hs)
	if got := string(hsOnly.JWKS()); got != `{"keys":[]}` {
		t.Fatalf("HS-only JWKS = %s", got)
	}
}
