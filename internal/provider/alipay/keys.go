package alipay

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"strings"
)

// minKeyBits is the size RSA2 needs: Alipay's tool makes 2048-bit keys,
// and a smaller one is refused by Alipay anyway.
const minKeyBits = 2048

// keyDER returns the DER bytes of a key given as PEM or as the bare base64
// that Alipay's key tool and console show, and the PEM type ("" for bare
// base64). Errors never quote the text: it may be a private key.
func keyDER(text string) (der []byte, pemType string, err error) {
	text = strings.TrimSpace(text)
	// A PEM put in an environment variable often arrives with its line
	// breaks written as the two characters \n.
	if strings.HasPrefix(text, "-----BEGIN") && !strings.Contains(text, "\n") {
		text = strings.ReplaceAll(text, `\n`, "\n")
	}
	if strings.HasPrefix(text, "-----BEGIN") {
		block, rest := pem.Decode([]byte(text))
		switch {
		case block == nil:
			return nil, "", errors.New("is not a valid PEM block")
		case strings.Contains(block.Type, "CERTIFICATE"):
			return nil, "", errors.New("is a certificate: certificate mode (app_cert_sn, alipay_root_cert_sn) is not supported; use Alipay's public key mode (公钥模式) and its keys")
		case block.Headers["Proc-Type"] != "":
			return nil, "", errors.New("is an encrypted PEM block; give the key unencrypted")
		case strings.TrimSpace(string(rest)) != "":
			return nil, "", errors.New("holds more than one PEM block; give just the key")
		}
		return block.Bytes, block.Type, nil
	}
	der, err = base64.StdEncoding.DecodeString(strings.Join(strings.Fields(text), ""))
	if err != nil || len(der) == 0 {
		return nil, "", errors.New("is neither PEM nor base64 of a key")
	}
	return der, "", nil
}

// parsePrivateKey reads the app's RSA private key: PEM PKCS#1 ("RSA
// PRIVATE KEY") or PKCS#8 ("PRIVATE KEY"), or the bare base64 of either
// (Alipay's tool gives PKCS#8 for Java and PKCS#1 for other languages).
func parsePrivateKey(text string) (*rsa.PrivateKey, error) {
	der, typ, err := keyDER(text)
	if err != nil {
		return nil, err
	}
	var key any
	switch typ {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(der)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(der)
	case "":
		if key, err = x509.ParsePKCS8PrivateKey(der); err != nil {
			key, err = x509.ParsePKCS1PrivateKey(der)
		}
	default:
		return nil, errors.New("is a PEM " + typ + ", not an RSA private key")
	}
	if err != nil {
		return nil, errors.New("is not an RSA private key in PKCS#1 or PKCS#8")
	}
	rk, _ := key.(*rsa.PrivateKey)
	if rk == nil {
		return nil, errNotRSA
	}
	if err := checkSize(&rk.PublicKey); err != nil {
		return nil, err
	}
	return rk, nil
}

// errNotRSA is a key of another kind (EC, Ed25519): RSA2 is RSA.
var errNotRSA = errors.New("is not an RSA key: RSA2 needs an RSA 2048-bit key")

// checkSize refuses a key shorter than RSA2's.
func checkSize(key *rsa.PublicKey) error {
	if key.N.BitLen() < minKeyBits {
		return errors.New("is shorter than 2048 bits: RSA2 needs an RSA 2048-bit key")
	}
	return nil
}

// parsePublicKey reads Alipay's RSA public key: PEM "PUBLIC KEY" (PKIX, as
// the console shows it) or "RSA PUBLIC KEY" (PKCS#1), or bare base64.
func parsePublicKey(text string) (*rsa.PublicKey, error) {
	der, typ, err := keyDER(text)
	if err != nil {
		return nil, err
	}
	if strings.Contains(typ, "PRIVATE") {
		return nil, errors.New("is a private key; it takes Alipay's public key (支付宝公钥)")
	}
	key, err := x509.ParsePKIXPublicKey(der)
	if err != nil && typ != "PUBLIC KEY" {
		key, err = x509.ParsePKCS1PublicKey(der)
	}
	if err != nil {
		return nil, errors.New("is not an RSA public key (PKIX or PKCS#1)")
	}
	rk, _ := key.(*rsa.PublicKey)
	if rk == nil {
		return nil, errNotRSA
	}
	if err := checkSize(rk); err != nil {
		return nil, err
	}
	return rk, nil
}

// parseAESKey reads the app's content key (接口内容加密方式, AES): base64 of
// 16 bytes, as the console shows it.
func parseAESKey(text string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(text))
	if err != nil || len(key) != 16 {
		return nil, errors.New("is not base64 of a 16-byte AES key (the console's 24-character AES key)")
	}
	return key, nil
}
