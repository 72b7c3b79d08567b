package wxmock

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
)

// These few lines mirror the wechat package on purpose, so that the mock
// does not test the client with the client's own code.

// randomToken returns n random bytes, base64url encoded.
func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails since Go 1.24
	return base64.RawURLEncoding.EncodeToString(b)
}

// wechatKeySize is the length of WeChat's session keys (AES-128), and of
// QQ's, Douyin's and Kuaishou's.
const wechatKeySize = 16

// newSessionKey returns a random session_key as WeChat encodes it.
func newSessionKey() string { return newKey(wechatKeySize) }

// newKey returns size random bytes in standard base64, as the platforms
// encode session keys (Baidu's are 24 bytes).
func newKey(size int) string {
	b := make([]byte, size)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// validSessionKey reports whether k is base64 of an AES-128 key.
func validSessionKey(k string) bool { return validKey(k, wechatKeySize) }

// validKey reports whether k is base64 of a key of size bytes.
func validKey(k string, size int) bool {
	b, err := base64.StdEncoding.DecodeString(k)
	return err == nil && len(b) == size
}

// openID derives a stable openid for user in appID, 28 characters like WeChat's.
func openID(appID, user string) string {
	return "o" + hashID(appID+"/"+user)
}

// unionID derives a stable unionid for user; like WeChat's it does not
// depend on the app.
func unionID(user string) string {
	return "u" + hashID("unionid/"+user)
}

func hashID(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base64.RawURLEncoding.EncodeToString(sum[:])[:27]
}

// encrypt encrypts plaintext the way WeChat encrypts user data: AES-128-CBC
// with the decoded session_key, PKCS#7 padding, random iv, base64 std.
func encrypt(sessionKey string, plaintext []byte) (encryptedData, iv string, err error) {
	ivb := make([]byte, aes.BlockSize)
	_, _ = rand.Read(ivb)
	return encryptIV(sessionKey, ivb, plaintext)
}

func encryptIV(sessionKey string, iv, plaintext []byte) (encryptedData, ivText string, err error) {
	key, err := base64.StdEncoding.DecodeString(sessionKey)
	if err != nil || len(key) != 16 {
		return "", "", fmt.Errorf("session_key is not base64 of 16 bytes")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return "", "", err
	}
	pad := aes.BlockSize - len(plaintext)%aes.BlockSize
	buf := append(bytes.Clone(plaintext), bytes.Repeat([]byte{byte(pad)}, pad)...)
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(buf, buf)
	return base64.StdEncoding.EncodeToString(buf), base64.StdEncoding.EncodeToString(iv), nil
}

// loginSignature is WeChat's user login-state signature: hex HMAC-SHA256 keyed
// with the session_key's base64 text (not the decoded bytes).
func loginSignature(sessionKey, message string) string {
	m := hmac.New(sha256.New, []byte(sessionKey))
	m.Write([]byte(message))
	return hex.EncodeToString(m.Sum(nil))
}

// rawDataSignature is wx.getUserInfo's signature: hex(sha1(rawData + session_key)).
func rawDataSignature(rawData, sessionKey string) string {
	sum := sha1.Sum([]byte(rawData + sessionKey))
	return hex.EncodeToString(sum[:])
}

// equal compares secrets in constant time.
func equal(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
