package token_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/wxauth/caddy-wxauth/session"
	"github.com/wxauth/caddy-wxauth/token"
)

func ExampleNew() {
	// A fixed HS256 key, as from the signing_key subdirective.
	secret, err := token.ParseSecret("dGVzdC1zaWduaW5nLWtleS0wMTIzNDU2Nzg5YWJjZGVm")
	if err != nil {
		fmt.Println(err)
		return
	}
	ring, err := token.NewKeyring(token.Key{ID: "k0", Alg: token.HS256, Secret: secret})
	if err != nil {
		fmt.Println(err)
		return
	}
	tokens, err := token.New(token.Config{Audience: "wxdemo0123456789", TTL: time.Hour}, ring)
	if err != nil {
		fmt.Println(err)
		return
	}

	now := time.Now()
	tok, exp, err := tokens.Issue("o-demo-openid", "u-demo-unionid", session.NewID(),
		map[string]any{"uid": 42}, now)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("expires in", exp.Sub(now.Truncate(time.Second)))

	claims, err := tokens.Verify(tok)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(claims.Subject, claims.UnionID, claims.Audience, claims.Issuer, claims.Extra["uid"])

	// A token of another app (audience) is refused.
	other, _ := token.New(token.Config{Audience: "wxother000000000"}, ring)
	_, err = other.Verify(tok)
	fmt.Println(errors.Is(err, token.ErrInvalid))
	// Output:
	// expires in 1h0m0s
	// o-demo-openid u-demo-unionid [wxdemo0123456789] wxauth 42
	// true
}

func ExampleNewKeyring() {
	oldKey, _ := token.GenerateKey(token.HS256, "2025")
	newKey, _ := token.GenerateKey(token.HS256, "2026")
	cfg := token.Config{Audience: "wxdemo0123456789"}

	// A token signed before the key change.
	before, _ := token.NewKeyring(oldKey)
	tokens, _ := token.New(cfg, before)
	old, _, _ := tokens.Issue("o-demo-openid", "", session.NewID(), nil, time.Now())

	// The new key signs; the old one still verifies until its tokens expire.
	ring, err := token.NewKeyring(newKey, oldKey)
	if err != nil {
		fmt.Println(err)
		return
	}
	tokens.SetKeyring(ring)
	fmt.Println(ring.IDs(), ring.Signing().ID)
	_, err = tokens.Verify(old)
	fmt.Println("old token:", err)

	// Once the old key is dropped, its tokens are refused.
	after, _ := token.NewKeyring(newKey)
	tokens.SetKeyring(after)
	_, err = tokens.Verify(old)
	fmt.Println("old token:", errors.Is(err, token.ErrInvalid))
	// Output:
	// [2026 2025] 2026
	// old token: <nil>
	// old token: true
}

func ExampleGenerateKey() {
	ed, err := token.GenerateKey(token.EdDSA, "ed-1")
	if err != nil {
		fmt.Println(err)
		return
	}
	hs, _ := token.GenerateKey(token.HS256, "hs-1")
	ring, _ := token.NewKeyring(ed, hs)

	// Services behind Caddy may verify tokens themselves with the public
	// keys; HS256 secrets never appear in the set.
	var set struct {
		Keys []struct {
			Kty, Crv, Kid, Alg string
		} `json:"keys"`
	}
	if err := json.Unmarshal(ring.JWKS(), &set); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(set.Keys), "key")
	for _, k := range set.Keys {
		fmt.Println(k.Kty, k.Crv, k.Kid, k.Alg)
	}
	// Output:
	// 1 key
	// OKP Ed25519 ed-1 EdDSA
}

func ExampleNewManager() {
	ctx := context.Background()
	// Every instance that shares the store gets the same keys.
	store := session.NewMemory()
	cfg := token.ManagerConfig{
		KV:     store,
		Prefix: "wxauth/wxdemo0123456789/keys",
	}
	now := time.Now()
	ring1, err := token.NewManager(cfg).Keyring(ctx, now)
	if err != nil {
		fmt.Println(err)
		return
	}
	ring2, _ := token.NewManager(cfg).Keyring(ctx, now)
	fmt.Println(names(ring1), names(ring2), ring1.Signing().ID == ring2.Signing().ID)

	issuer, _ := token.New(token.Config{Audience: "wxdemo0123456789"}, ring1)
	verifier, _ := token.New(token.Config{Audience: "wxdemo0123456789"}, ring2)
	tok, _, _ := issuer.Issue("o-demo-openid", "", session.NewID(), nil, now)
	_, err = verifier.Verify(tok)
	fmt.Println("verified by the other instance:", err == nil)

	// With rotation, each period has its own key and the next one is made
	// ahead of time.
	cfg.Rotate, cfg.TTL = 24*time.Hour, 2*time.Hour
	day := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	m := token.NewManager(cfg)
	ring, err := m.Keyring(ctx, day)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(names(ring), m.NextRotation(day).UTC())
	// Output:
	// [hs256] [hs256] true
	// verified by the other instance: true
	// [hs256-20454 hs256-20455] 2026-01-02 00:00:00 +0000 UTC
}

// names returns the ring's key ids without the random suffix each
// generated id ends with.
func names(r *token.Keyring) []string {
	var out []string
	for _, id := range r.IDs() {
		out = append(out, id[:strings.LastIndexByte(id, '-')])
	}
	return out
}
