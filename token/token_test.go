package token

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const testAud = "wx1234567890abcdef"

func now() time.Time { return time.Now() }

func mustRing(t testing.TB, keys ...Key) *Keyring {
	t.Helper()
	r, err := NewKeyring(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustTokens(t testing.TB, cfg Config, ring *Keyring) *Tokens {
	t.Helper()
	if cfg.Audience == "" {
		cfg.Audience = testAud
	}
	tk, err := New(cfg, ring)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func mustIssue(t testing.TB, tk *Tokens, at time.Time) string {
	t.Helper()
	tok, _, err := tk.Issue("openid-1", "union-1", "sid-1", map[string]any{"uid": 9007199254740993, "roles": []string{"admin"}}, at)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// craft signs arbitrary header fields and claims, bypassing Issue.
func craft(t testing.TB, method jwt.SigningMethod, key any, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		if v == nil {
			delete(tok.Header, k)
		} else {
			tok.Header[k] = v
		}
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// good returns claims that pass verification, minus the names in drop.
func good(drop ...string) jwt.MapClaims {
	n := time.Now().Unix()
	c := jwt.MapClaims{"iss": DefaultIssuer, "sub": "openid-1", "aud": testAud, "exp": n + 3600, "iat": n, "sid": "sid-1"}
	for _, d := range drop {
		delete(c, d)
	}
	return c
}

func with(c jwt.MapClaims, k string, v any) jwt.MapClaims { c[k] = v; return c }

func TestIssueVerify(t *testing.T) {
	for _, alg := range []string{HS256, EdDSA} {
		t.Run(alg, func(t *testing.T) {
			tk := mustTokens(t, Config{TTL: time.Hour}, mustRing(t, mustKey(t, alg, "k1")))
			at := time.Now()
			tok, exp, err := tk.Issue("openid-1", "union-1", "sid-1", map[string]any{"uid": 9007199254740993}, at)
			if err != nil {
				t.Fatal(err)
			}
			if want := at.Truncate(time.Second).Add(time.Hour); !exp.Equal(want) {
				t.Fatalf("exp %v, want %v", exp, want)
			}
			c, err := tk.Verify(tok)
			if err != nil {
				t.Fatal(err)
			}
			if c.Subject != "openid-1" || c.UnionID != "union-1" || c.SessionID != "sid-1" || c.Issuer != DefaultIssuer ||
				len(c.Audience) != 1 || c.Audience[0] != testAud || !c.ExpiresAt.Equal(exp) || c.IssuedAt == nil {
				t.Fatalf("claims %+v", c)
			}
			// Large integer ids keep their precision.
			if uid, _ := c.Extra["uid"].(json.Number); uid != "9007199254740993" {
				t.Fatalf("uid = %#v", c.Extra["uid"])
			}
		})
	}
}

func TestIssueRefuses(t *testing.T) {
	tk := mustTokens(t, Config{}, mustRing(t, mustKey(t, HS256, "k1")))
	if _, _, err := tk.Issue("", "", "sid", nil, now()); err == nil {
		t.Error("empty openid accepted")
	}
	if _, _, err := tk.Issue("o", "", "", nil, now()); err == nil {
		t.Error("empty sid accepted")
	}
	if _, _, err := tk.Issue("o", "", "s", map[string]any{"blob": strings.Repeat("x", MaxTokenLen)}, now()); err == nil {
		t.Error("token over MaxTokenLen issued")
	}
}

func TestNewConfig(t *testing.T) {
	ring := mustRing(t, mustKey(t, HS256, "k1"))
	tk, err := New(Config{Audience: "a"}, ring)
	if err != nil {
		t.Fatal(err)
	}
	if c := tk.Config(); c.Issuer != DefaultIssuer || c.TTL != DefaultTTL || c.Leeway != DefaultLeeway {
		t.Fatalf("defaults not applied: %+v", c)
	}
	for name, cfg := range map[string]Config{
		"no audience":    {},
		"negative ttl":   {Audience: "a", TTL: -time.Second},
		"negative leway": {Audience: "a", Leeway: -time.Second},
	} {
		if _, err := New(cfg, ring); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := New(Config{Audience: "a"}, nil); err == nil {
		t.Error("nil keyring accepted")
	}
}

// kinds are the kinds of Verify errors: each error wraps exactly one.
var kinds = []error{ErrMalformed, ErrUnknownKey, ErrBadSignature, ErrAudience, ErrExpired, ErrClaims}

func TestVerifyRefuses(t *testing.T) {
	hs := mustKey(t, HS256, "hs1")
	ed := mustKey(t, EdDSA, "ed1")
	otherHS := mustKey(t, HS256, "hs1") // same kid, other secret
	otherED := mustKey(t, EdDSA, "ed1")
	edPub := []byte(ed.Private.Public().(ed25519.PublicKey))

	ring := mustRing(t, hs, ed)
	tk := mustTokens(t, Config{}, ring)
	single := mustTokens(t, Config{}, mustRing(t, hs))

	valid := mustIssue(t, tk, time.Now())
	validED := mustIssue(t, mustTokens(t, Config{}, mustRing(t, ed, hs)), time.Now())
	parts := strings.Split(valid, ".")

	hsHdr := map[string]any{"kid": "hs1"}
	edHdr := map[string]any{"kid": "ed1"}
	noneKey := jwt.UnsafeAllowNoneSignatureType

	// A payload with another subject, base64url of JSON.
	forged := good()
	forged["sub"] = "someone-else"
	fb, _ := json.Marshal(forged)
	tamperedPayload := parts[0] + "." + b64.EncodeToString(fb) + "." + parts[2]
	sig, _ := b64.DecodeString(parts[2])
	sig[len(sig)/2] ^= 1
	tamperedSig := parts[0] + "." + parts[1] + "." + b64.EncodeToString(sig)
	// Same signature bytes, but the unused low bits of the last character
	// set: only strict decoding refuses it.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, valid[len(valid)-1])
	nonCanonical := valid[:len(valid)-1] + string(alphabet[last|1])
	if nonCanonical == valid {
		nonCanonical = valid[:len(valid)-1] + string(alphabet[last&^1])
	}

	tests := []struct {
		name  string
		tk    *Tokens
		token string
		is    error  // a cause that must be wrapped, besides ErrInvalid
		msg   string // a part of the message
		kind  error  // the one kind it must wrap; nil: any one
	}{
		{"empty", tk, "", nil, "empty", ErrMalformed},
		{"dot", tk, ".", nil, "compact", ErrMalformed},
		{"two parts", tk, "a.b", nil, "compact", ErrMalformed},
		{"four parts", tk, valid + ".x", nil, "compact", ErrMalformed},
		{"three junk parts", tk, "a.b.c", jwt.ErrTokenMalformed, "", ErrMalformed},
		{"dots only", tk, "..", jwt.ErrTokenMalformed, "", ErrMalformed},
		{"10 KiB", tk, strings.Repeat("a", 10<<10), nil, "longer", ErrMalformed},
		{"10 KiB of dots", tk, strings.Repeat(".", 10<<10), nil, "longer", ErrMalformed},
		{"just over the bound", tk, valid + "." + strings.Repeat("A", MaxTokenLen), nil, "longer", ErrMalformed},
		{"padded signature", tk, valid + "=", jwt.ErrTokenMalformed, "", ErrMalformed},
		{"alg none", tk, craft(t, jwt.SigningMethodNone, noneKey, hsHdr, good()), jwt.ErrTokenSignatureInvalid, "none", ErrBadSignature},
		{"alg none single key no kid", single, craft(t, jwt.SigningMethodNone, noneKey, nil, good()), jwt.ErrTokenSignatureInvalid, "none", ErrBadSignature},
		{"alg HS512", tk, craft(t, jwt.SigningMethodHS512, hs.Secret, hsHdr, good()), jwt.ErrTokenSignatureInvalid, "HS512", ErrBadSignature},
		{"other HS256 key, same kid", tk, craft(t, jwt.SigningMethodHS256, otherHS.Secret, hsHdr, good()), jwt.ErrTokenSignatureInvalid, "", ErrBadSignature},
		{"other EdDSA key, same kid", tk, craft(t, jwt.SigningMethodEdDSA, otherED.Private, edHdr, good()), jwt.ErrTokenSignatureInvalid, "", ErrBadSignature},
		{"HS256 with the Ed25519 public key as secret", tk, craft(t, jwt.SigningMethodHS256, edPub, edHdr, good()), jwt.ErrTokenUnverifiable, "alg header does not match", ErrBadSignature},
		{"HS256 with the Ed25519 public key, single EdDSA ring", mustTokens(t, Config{}, mustRing(t, ed)), craft(t, jwt.SigningMethodHS256, edPub, nil, good()), jwt.ErrTokenUnverifiable, "alg header does not match", ErrBadSignature},
		{"EdDSA token naming an HS256 kid", tk, craft(t, jwt.SigningMethodEdDSA, ed.Private, hsHdr, good()), jwt.ErrTokenUnverifiable, "alg header does not match", ErrBadSignature},
		{"wrong aud", tk, mustIssue(t, mustTokens(t, Config{Audience: "wx-other-app"}, ring), time.Now()), jwt.ErrTokenInvalidAudience, "", ErrAudience},
		{"aud missing", tk, craft(t, jwt.SigningMethodHS256, hs.Secret, hsHdr, good("aud")), jwt.ErrTokenRequiredClaimMissing, "aud", ErrClaims},
		{"wrong iss", tk, mustIssue(t, mustTokens(t, Config{Issuer: "someone"}, ring), time.Now()), jwt.ErrTokenInvalidIssuer, "", ErrClaims},
		{"expired beyond leeway", tk, mustIssue(t, tk, time.Now().Add(-DefaultTTL-time.Minute)), jwt.ErrTokenExpired, "", ErrExpired},
		{"issued in the future", tk, mustIssue(t, tk, time.Now().Add(5*time.Minute)), jwt.ErrTokenUsedBeforeIssued, "", ErrClaims},
		{"missing exp", tk, craft(t, jwt.SigningMethodHS256, hs.Secret, hsHdr, good("exp")), jwt.ErrTokenRequiredClaimMissing, "exp", ErrClaims},
		{"missing iat", tk, craft(t, jwt.SigningMethodHS256, hs.Secret, hsHdr, good("iat")), nil, "missing iat", ErrClaims},
		{"missing sub", tk, craft(t, jwt.SigningMethodHS256, hs.Secret, hsHdr, good("sub")), nil, "missing sub", ErrClaims},
		{"empty sub", tk, craft(t, jwt.SigningMethodHS256, hs.Secret, hsHdr, with(good(), "sub", "")), nil, "missing sub", ErrClaims},
		{"missing sid", tk, craft(t, jwt.SigningMethodHS256, hs.Secret, hsHdr, good("sid")), nil, "missing sid", ErrClaims},
		{"sid not a string", tk, craft(t, jwt.SigningMethodHS256, hs.Secret, hsHdr, with(good(), "sid", 5)), jwt.ErrTokenMalformed, "", ErrMalformed},
		{"exp not a number", tk, craft(t, jwt.SigningMethodHS256, hs.Secret, hsHdr, with(good(), "exp", "soon")), jwt.ErrTokenMalformed, "", ErrMalformed},
		{"unknown kid", tk, craft(t, jwt.SigningMethodHS256, hs.Secret, map[string]any{"kid": "hs9"}, good()), jwt.ErrTokenUnverifiable, "unknown key id", ErrUnknownKey},
		{"kid not a string", tk, craft(t, jwt.SigningMethodHS256, hs.Secret, map[string]any{"kid": 1}, good()), jwt.ErrTokenUnverifiable, "kid", ErrMalformed},
		{"no kid, two-key ring", tk, craft(t, jwt.SigningMethodHS256, hs.Secret, nil, good()), jwt.ErrTokenUnverifiable, "kid header required", ErrUnknownKey},
		{"kid of another ring on a single-key ring", single, validED, jwt.ErrTokenUnverifiable, "unknown key id", ErrUnknownKey},
		{"tampered payload", tk, tamperedPayload, jwt.ErrTokenSignatureInvalid, "", ErrBadSignature},
		{"tampered signature", tk, tamperedSig, jwt.ErrTokenSignatureInvalid, "", ErrBadSignature},
		{"non-canonical signature encoding", tk, nonCanonical, jwt.ErrTokenMalformed, "", ErrMalformed},
		{"signature cut", tk, valid[:len(valid)-4], nil, "", nil}, // malformed or bad, by the last character's bits
		{"signature removed", tk, parts[0] + "." + parts[1] + ".", jwt.ErrTokenSignatureInvalid, "", ErrBadSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tc.tk.Verify(tc.token)
			if err == nil {
				t.Fatalf("accepted: %+v", c)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("error %q does not wrap %q", err, tc.is)
			}
			n := 0
			for _, k := range kinds {
				if errors.Is(err, k) {
					n++
				}
			}
			if n != 1 || tc.kind != nil && !errors.Is(err, tc.kind) {
				t.Fatalf("error %q wraps %d kinds, want just %v", err, n, tc.kind)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %q does not say %q", err, tc.msg)
			}
			if len(tc.token) > 20 && strings.Contains(err.Error(), tc.token) {
				t.Fatal("error quotes the token")
			}
		})
	}

	// The crafting helper makes tokens that do verify when nothing is wrong,
	// so the refusals above are for the stated reason.
	for name, tok := range map[string]string{
		"HS256":                   craft(t, jwt.SigningMethodHS256, hs.Secret, hsHdr, good()),
		"EdDSA":                   craft(t, jwt.SigningMethodEdDSA, ed.Private, edHdr, good()),
		"no kid, single-key ring": craft(t, jwt.SigningMethodHS256, hs.Secret, nil, good()),
		"issued":                  valid,
		"issued EdDSA":            validED,
	} {
		v := tk
		if name == "no kid, single-key ring" {
			v = single
		}
		if _, err := v.Verify(tok); err != nil {
			t.Errorf("control %s: %v", name, err)
		}
	}
}

func TestVerifyLeeway(t *testing.T) {
	tk := mustTokens(t, Config{TTL: time.Minute, Leeway: 30 * time.Second}, mustRing(t, mustKey(t, HS256, "k")))
	// Expired 10s ago: within the leeway.
	if _, err := tk.Verify(mustIssue(t, tk, time.Now().Add(-70*time.Second))); err != nil {
		t.Fatalf("token expired within leeway refused: %v", err)
	}
	// Expired 60s ago: beyond it.
	if _, err := tk.Verify(mustIssue(t, tk, time.Now().Add(-2*time.Minute))); !errors.Is(err, jwt.ErrTokenExpired) {
		t.Fatalf("token expired beyond leeway: %v", err)
	}
}

func TestKeyringRotation(t *testing.T) {
	old := mustKey(t, HS256, "k-old")
	tk := mustTokens(t, Config{}, mustRing(t, old))
	oldTok := mustIssue(t, tk, time.Now())

	newKey := mustKey(t, EdDSA, "k-new")
	tk.SetKeyring(mustRing(t, newKey, old))
	tk.SetKeyring(nil) // ignored
	if got := tk.Keyring().Signing().ID; got != "k-new" {
		t.Fatalf("signing key %q", got)
	}
	if got := tk.Keyring().IDs(); len(got) != 2 || got[0] != "k-new" || got[1] != "k-old" {
		t.Fatalf("ids %v", got)
	}
	if _, err := tk.Verify(oldTok); err != nil {
		t.Fatalf("old key no longer verifies: %v", err)
	}
	newTok := mustIssue(t, tk, time.Now())
	hdr, _ := b64.DecodeString(strings.Split(newTok, ".")[0])
	if !strings.Contains(string(hdr), `"kid":"k-new"`) || !strings.Contains(string(hdr), `"alg":"EdDSA"`) {
		t.Fatalf("new token header %s", hdr)
	}
	if _, err := tk.Verify(newTok); err != nil {
		t.Fatal(err)
	}

	tk.SetKeyring(mustRing(t, newKey))
	if _, err := tk.Verify(oldTok); !errors.Is(err, ErrInvalid) {
		t.Fatalf("token of a dropped key: %v", err)
	}
}

func benchTokens(b *testing.B, alg string) *Tokens {
	return mustTokens(b, Config{}, mustRing(b, mustKey(b, alg, "k1"), mustKey(b, HS256, "k0")))
}

func BenchmarkVerify(b *testing.B) {
	for _, alg := range []string{HS256, EdDSA} {
		b.Run(alg, func(b *testing.B) {
			tk := benchTokens(b, alg)
			tok := mustIssue(b, tk, time.Now())
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := tk.Verify(tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkIssue(b *testing.B) {
	for _, alg := range []string{HS256, EdDSA} {
		b.Run(alg, func(b *testing.B) {
			tk := benchTokens(b, alg)
			extra := map[string]any{"uid": 42}
			at := time.Now()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, _, err := tk.Issue("openid-1", "union-1", "sid-1", extra, at); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestIssueUntil(t *testing.T) {
	tk := mustTokens(t, Config{TTL: 2 * time.Hour}, mustRing(t, mustKey(t, HS256, "k1")))
	at := time.Date(2026, 12, 1, 8, 0, 0, 700_000_000, time.UTC) // 08:00:00.7
	iat := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		notAfter time.Time
		want     time.Time // zero: refused
	}{
		{"no cap", time.Time{}, iat.Add(2 * time.Hour)},
		{"cap later than the ttl", at.Add(30 * 24 * time.Hour), iat.Add(2 * time.Hour)},
		{"cap exactly at the ttl", iat.Add(2 * time.Hour), iat.Add(2 * time.Hour)},
		{"cap earlier, rounded down", iat.Add(90*time.Minute + 999*time.Millisecond), iat.Add(90 * time.Minute)},
		{"one second left", iat.Add(time.Second + 500*time.Millisecond), iat.Add(time.Second)},
		{"less than a second left", at.Add(200 * time.Millisecond), time.Time{}},
		{"cap in the past", at.Add(-time.Hour), time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, exp, err := tk.IssueUntil("openid-1", "", "sid-1", nil, at, tc.notAfter)
			if tc.want.IsZero() {
				if !errors.Is(err, ErrNoLifetime) || tok != "" {
					t.Fatalf("issued %q, %v; want ErrNoLifetime", tok, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !exp.Equal(tc.want) {
				t.Fatalf("exp %v, want %v", exp, tc.want)
			}
			var c Claims
			if _, _, err := jwt.NewParser().ParseUnverified(tok, &c); err != nil {
				t.Fatal(err)
			}
			if !c.ExpiresAt.Equal(tc.want) || !c.IssuedAt.Equal(iat) {
				t.Fatalf("token claims exp %v iat %v, want %v %v", c.ExpiresAt, c.IssuedAt, tc.want, iat)
			}
		})
	}
}

// Two tokens issued in one second for one session differ.
func TestIssuedTokensAreUnique(t *testing.T) {
	r, err := NewKeyring(Key{ID: "k1", Alg: HS256, Secret: []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	tk, err := New(Config{Audience: "app"}, r)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	a, _, _ := tk.Issue("openid", "", "sid", nil, now)
	b, _, _ := tk.Issue("openid", "", "sid", nil, now)
	if a == "" || a == b {
		t.Fatal("two tokens of one session in one second are the same")
	}
}

// A token names its platform and app; a Tokens accepts only the apps it
// serves, an app id being unique only within its platform.
func TestPlatformsAndApps(t *testing.T) {
	ring := mustRing(t, mustKey(t, HS256, "k1"))
	tk := mustTokens(t, Config{Audience: "wx-mp", Apps: []App{{"douyin", "tt-app"}, {PlatformWeChat, "wx-web"}}}, ring)
	now := time.Now()
	cases := []struct {
		name string
		sub  Subject
		want Claims // the fields checked
	}{
		{"mini-program", Subject{OpenID: "o1", SessionID: "s1"}, Claims{Platform: "wechat"}},
		{"douyin guest", Subject{OpenID: "a1", SessionID: "s2", Platform: "douyin", AppID: "tt-app", Anonymous: true}, Claims{Platform: "douyin", Anonymous: true}},
		{"web", Subject{OpenID: "o2", UnionID: "u2", SessionID: "s3", AppID: "wx-web", Surface: "qr"}, Claims{Platform: "wechat", Surface: "qr", UnionID: "u2"}},
	}
	for _, c := range cases {
		tok, _, err := tk.IssueFor(c.sub, now, time.Time{})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got, err := tk.Verify(tok)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		wantAud := c.sub.AppID
		if wantAud == "" {
			wantAud = "wx-mp"
		}
		if got.Platform != c.want.Platform || got.Surface != c.want.Surface || got.Anonymous != c.want.Anonymous ||
			got.UnionID != c.want.UnionID || got.Audience[0] != wantAud || got.Subject != c.sub.OpenID {
			t.Errorf("%s: got %+v", c.name, got)
		}
	}
	if _, _, err := tk.IssueFor(Subject{OpenID: "o", SessionID: "s", Platform: "qq", AppID: "tt-app"}, now, time.Time{}); err == nil {
		t.Error("issued a token for an app of another platform")
	}
	// The same app id on another platform, and a token of an app another
	// handler serves, are refused.
	other := mustTokens(t, Config{Apps: []App{{"qq", "tt-app"}, {PlatformWeChat, "wx-other"}}}, ring)
	for _, sub := range []Subject{{OpenID: "o", SessionID: "s", Platform: "qq", AppID: "tt-app"}, {OpenID: "o", SessionID: "s", AppID: "wx-other"}} {
		tok, _, err := other.IssueFor(sub, now, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tk.Verify(tok); !errors.Is(err, ErrAudience) {
			t.Errorf("%+v: got %v, want ErrAudience", sub, err)
		}
	}
	// A token without plt (issued before platforms) is WeChat's.
	legacy := craft(t, jwt.SigningMethodHS256, ring.Signing().Secret, map[string]any{"kid": "k1"}, jwt.MapClaims{
		"iss": "wxauth", "sub": "o3", "aud": "wx-mp", "sid": "s4", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	})
	if c, err := tk.Verify(legacy); err != nil || c.Platform != "" {
		t.Errorf("legacy token: %+v, %v", c, err)
	}
	if _, err := mustTokens(t, Config{Apps: []App{{"qq", "tt-app"}}}, ring).Verify(legacy); !errors.Is(err, ErrAudience) {
		t.Errorf("legacy WeChat token accepted by a QQ-only handler: %v", err)
	}
}
