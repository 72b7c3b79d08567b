package alipay

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"

	"github.com/wxauth/caddy-wxauth/internal/strictjson"
)

// signContent is Alipay's "sign content" (待签名字符串) of request
// parameters: every parameter but sign whose value is not empty, sorted by
// name in byte order, written name=value and joined with &. Values are the
// raw text, not URL-encoded.
func signContent(params map[string]string) string {
	names := make([]string, 0, len(params))
	for name, value := range params {
		if name != "sign" && value != "" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	var b strings.Builder
	for i, name := range names {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(name)
		b.WriteByte('=')
		b.WriteString(params[name])
	}
	return b.String()
}

// signRSA2 is Alipay's RSA2 sign of content: SHA256withRSA (PKCS#1 v1.5)
// over its UTF-8 bytes, in standard base64.
func signRSA2(key *rsa.PrivateKey, content string) (string, error) {
	sum := sha256.Sum256([]byte(content))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// verifyRSA2 reports whether sign is key's RSA2 sign of content.
func verifyRSA2(key *rsa.PublicKey, content []byte, sign string) bool {
	sig, err := base64.StdEncoding.DecodeString(sign)
	if err != nil {
		return false
	}
	sum := sha256.Sum256(content)
	return rsa.VerifyPKCS1v15(key, crypto.SHA256, sum[:], sig) == nil
}

// errorNode is the member of a gateway answer that holds a refusal made
// before the API ran (a bad code, a bad sign of the request, ...).
const errorNode = "error_response"

// gatewayAnswer is one answer of Alipay's gateway, split as Alipay signs
// it: {"<method>_response" or "error_response": {...}, "sign": "..."}.
type gatewayAnswer struct {
	node string          // which member held the answer
	raw  json.RawMessage // that member's value, byte for byte as sent
	sign string          // the top-level sign; "" when there was none
}

// errBadAnswer is an answer that is not the gateway's JSON shape.
var errBadAnswer = errors.New("not a gateway answer")

// splitAnswer takes body apart without re-encoding anything: Alipay signs
// the exact text of the answer's member, so that text is what is verified.
// A name twice in any object is refused, so that what is verified is what
// is read.
func splitAnswer(body []byte, node string) (gatewayAnswer, error) {
	var top map[string]json.RawMessage
	if err := strictjson.Decode(body, &top); err != nil {
		return gatewayAnswer{}, errBadAnswer
	}
	var a gatewayAnswer
	for _, name := range []string{node, errorNode} {
		if raw, ok := top[name]; ok {
			if a.node != "" || len(raw) == 0 || raw[0] != '{' {
				return gatewayAnswer{}, errBadAnswer
			}
			a.node, a.raw = name, raw
		}
	}
	if a.node == "" {
		return gatewayAnswer{}, errBadAnswer
	}
	if raw, ok := top["sign"]; ok && json.Unmarshal(raw, &a.sign) != nil {
		return gatewayAnswer{}, errBadAnswer
	}
	return a, nil
}
