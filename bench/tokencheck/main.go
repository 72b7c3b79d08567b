// Command tokencheck is the token service of the forward_auth baseline in
// bench/run.sh: the architecture most teams use today, where Caddy asks a
// separate service about every request. It verifies the same HS256 JWT that
// wxauth issues (same signing key, issuer and audience) and answers 200 with
// X-Wx-Openid (and X-Wx-Unionid when known), or 401.
//
//	tokencheck -listen 127.0.0.1:29082 -key <base64 signing_key> -aud <app_id>
package main

import (
	"encoding/base64"
	"flag"
	"log"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// claims are the claims of a wxauth token that this service reads.
type claims struct {
	jwt.RegisteredClaims
	UnionID string `json:"unionid,omitempty"`
}

func main() {
	listen := flag.String("listen", "127.0.0.1:29082", "address to listen on")
	key := flag.String("key", "", "the HS256 signing key, base64 (the wxauth signing_key)")
	aud := flag.String("aud", "", "the expected audience (the mini-program's app_id)")
	iss := flag.String("iss", "wxauth", "the expected issuer")
	flag.Parse()

	secret, err := decodeKey(*key)
	if err != nil || len(secret) < 32 || *aud == "" {
		log.Fatal("tokencheck: -key (base64, at least 32 bytes) and -aud are required")
	}
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{"HS256"}),
		jwt.WithAudience(*aud),
		jwt.WithIssuer(*iss),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(30*time.Second),
	)
	keyfunc := func(*jwt.Token) (any, error) { return secret, nil }

	http.HandleFunc("/check", func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		var c claims
		if !ok || tok == "" {
			http.Error(w, `{"error":"missing_token"}`, http.StatusUnauthorized)
			return
		}
		if _, err := parser.ParseWithClaims(tok, &c, keyfunc); err != nil || c.Subject == "" {
			http.Error(w, `{"error":"invalid_token"}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("X-Wx-Openid", c.Subject)
		if c.UnionID != "" {
			w.Header().Set("X-Wx-Unionid", c.UnionID)
		}
		w.WriteHeader(http.StatusOK)
	})
	srv := &http.Server{Addr: *listen, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}

// decodeKey reads base64 in the standard or URL alphabet, padded or not.
func decodeKey(s string) ([]byte, error) {
	s = strings.TrimRight(strings.TrimSpace(s), "=")
	if strings.ContainsAny(s, "-_") {
		return base64.RawURLEncoding.DecodeString(s)
	}
	return base64.RawStdEncoding.DecodeString(s)
}
