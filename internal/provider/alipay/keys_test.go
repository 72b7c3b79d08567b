package alipay

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/wxauth/caddy-wxauth/internal/login"
	"github.com/wxauth/caddy-wxauth/internal/testpki"
)

func TestParseKeys(t *testing.T) {
	want := privateKey(t, "app-private-key.pem")
	pemText := readKey(t, "app-private-key.pem")
	bare := readKey(t, "app-private-key-pkcs8-no-wrapper.pem")
	var wrapped strings.Builder // bare base64 in 64-character lines, as a file may hold it
	for s := bare; s != ""; {
		n := min(64, len(s))
		wrapped.WriteString(s[:n] + "\n")
		s = s[n:]
	}
	escaped := strings.ReplaceAll(string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(want)})), "\n", `\n`)
	for name, text := range map[string]string{
		"PKCS#1 PEM":               pemText,
		"PKCS#8 PEM":               readKey(t, "app-private-key-pkcs8.pem"),
		"bare PKCS#1":              readKey(t, "app-private-key-no-wrapper.pem"),
		"bare PKCS#8":              bare,
		"bare in lines":            wrapped.String(),
		"PEM with spaces around":   "\n  " + pemText + "\n\n",
		`PEM with \n for newlines`: escaped,
	} {
		got, err := parsePrivateKey(text)
		if err != nil || !got.Equal(want) {
			t.Errorf("%s: %v", name, err)
		}
	}

	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ec)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	smallDER := x509.MarshalPKCS1PrivateKey(small)
	pubPEM := readKey(t, "app-public-key.pem")
	for name, c := range map[string]struct{ text, says string }{
		"certificate":   {string(testpki.CAPEM(t)), "certificate mode"},
		"EC key":        {base64.StdEncoding.EncodeToString(ecDER), "not an RSA key"},
		"1024-bit key":  {base64.StdEncoding.EncodeToString(smallDER), "2048"},
		"public key":    {pubPEM, "PUBLIC KEY, not an RSA private key"},
		"not base64":    {"not a key at all!", "neither PEM nor base64"},
		"broken PEM":    {"-----BEGIN RSA PRIVATE KEY-----\nAAAA", "not a valid PEM"},
		"two blocks":    {pemText + "\n" + pemText, "more than one PEM block"},
		"garbage DER":   {"AAAAAAAA", "not an RSA private key"},
		"encrypted PEM": {"-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00000000000000000000000000000000\n\nAAAA\n-----END RSA PRIVATE KEY-----", "encrypted"},
	} {
		_, err := parsePrivateKey(c.text)
		if err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %v, want it to say %q", name, err, c.says)
		}
	}

	wantPub := publicKey(t, "app-public-key.pem")
	pkcs1Pub := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(wantPub)}))
	for name, text := range map[string]string{"PKIX PEM": pubPEM, "bare PKIX": readKey(t, "app-public-key-no-wrapper.pem"), "PKCS#1 PEM": pkcs1Pub} {
		if got, err := parsePublicKey(text); err != nil || !got.Equal(wantPub) {
			t.Errorf("public %s: %v", name, err)
		}
	}
	for name, c := range map[string]struct{ text, says string }{
		"private key": {pemText, "is a private key"},
		"certificate": {string(testpki.CAPEM(t)), "certificate mode"},
		"EC public":   {pemOf("PUBLIC KEY", must(x509.MarshalPKIXPublicKey(&ec.PublicKey))), "not an RSA key"},
		"1024-bit":    {pemOf("PUBLIC KEY", must(x509.MarshalPKIXPublicKey(&small.PublicKey))), "2048"},
		"garbage":     {"AAAAAAAA", "not an RSA public key"},
	} {
		_, err := parsePublicKey(c.text)
		if err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("public %s: %v, want it to say %q", name, err, c.says)
		}
	}
}

func pemOf(typ string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// validConfig is a config that New takes.
func validConfig(t testing.TB) login.PlatformConfig {
	return login.PlatformConfig{
		AppID:             "2021000000000001",
		PrivateKey:        readKey(t, "app-private-key.pem"),
		PlatformPublicKey: readKey(t, "app_2014060600164699_rsa2_public_key_no_wrapper.pem"),
		AESKey:            "aa4BtZ4tspm2wnXLb1ThQA==",
	}
}

// New names the wrong field, and its errors never quote a key.
func TestNewErrors(t *testing.T) {
	if _, err := New(validConfig(t)); err != nil {
		t.Fatal(err)
	}
	noAES := validConfig(t)
	noAES.AESKey = ""
	if p, err := New(noAES); err != nil || p.aesKey != "" {
		t.Fatalf("aes_key is optional: %v", err)
	}
	cases := []struct {
		name string
		edit func(*login.PlatformConfig)
		says string
	}{
		{"no app_id", func(c *login.PlatformConfig) { c.AppID = " " }, "app_id is required"},
		{"no private_key", func(c *login.PlatformConfig) { c.PrivateKey = "" }, "private_key is required"},
		{"bad private_key", func(c *login.PlatformConfig) { c.PrivateKey = readKey(t, "app-public-key.pem") }, "private_key is a PEM PUBLIC KEY"},
		{"no alipay_public_key", func(c *login.PlatformConfig) { c.PlatformPublicKey = "\n" }, "alipay_public_key is required"},
		{"bad alipay_public_key", func(c *login.PlatformConfig) { c.PlatformPublicKey = readKey(t, "app-private-key.pem") }, "alipay_public_key is a private key"},
		{"app public key as Alipay's", func(c *login.PlatformConfig) { c.PlatformPublicKey = readKey(t, "app-public-key.pem") }, "public half of private_key"},
		{"bad aes_key", func(c *login.PlatformConfig) { c.AESKey = base64.StdEncoding.EncodeToString(make([]byte, 32)) }, "aes_key is not base64 of a 16-byte"},
		{"aes_key not base64", func(c *login.PlatformConfig) { c.AESKey = "????" }, "aes_key is not base64"},
		{"api_base with a query", func(c *login.PlatformConfig) { c.APIBase = "https://openapi.alipay.com/gateway.do?charset=utf-8" }, "api_base"},
		{"api_base not a URL", func(c *login.PlatformConfig) { c.APIBase = "openapi.alipay.com" }, "api_base"},
	}
	for _, c := range cases {
		cfg := validConfig(t)
		c.edit(&cfg)
		_, err := New(cfg)
		if err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %v, want it to say %q", c.name, err, c.says)
			continue
		}
		for _, key := range []string{cfg.PrivateKey, cfg.PlatformPublicKey, cfg.AESKey} {
			if k := strings.TrimSpace(key); len(k) > 40 && strings.Contains(err.Error(), k[30:40]) {
				t.Errorf("%s: the error quotes a key: %v", c.name, err)
			}
		}
	}
}
