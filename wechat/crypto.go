package wechat

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
	"encoding/json"
	"errors"
	"strings"
)

// ErrDecrypt is wrapped by every error of Decrypt and DecryptUserData,
// together with one of the kinds below.
var ErrDecrypt = errors.New("wechat: decrypt failed")

// Kinds of decrypt errors: each error of Decrypt and DecryptUserData wraps
// exactly one, so callers can tell the client why with errors.Is. None of
// them carries the data, the iv or the session_key.
var (
	// ErrBadKey means the session_key is not base64 of 16 bytes.
	ErrBadKey = errors.New("wechat: bad session_key")
	// ErrBadIV means the iv is not base64 of 16 bytes.
	ErrBadIV = errors.New("wechat: bad iv")
	// ErrBadData means encryptedData is not base64 of whole 16-byte blocks.
	ErrBadData = errors.New("wechat: bad encryptedData")
	// ErrBadPadding means the plaintext's padding is wrong: the usual sign
	// that the data was encrypted with another session_key (one from
	// before the latest wx.login) or altered.
	ErrBadPadding = errors.New("wechat: bad padding")
	// ErrNotJSON means the plaintext is not a JSON object; like
	// ErrBadPadding, usually another session_key.
	ErrNotJSON = errors.New("wechat: plaintext is not a JSON object")
	// ErrWatermark means the plaintext's watermark is missing or names
	// another app: the data was made for another mini-program.
	ErrWatermark = errors.New("wechat: bad watermark")
)

// decryptError is an error of Decrypt or DecryptUserData.
type decryptError struct {
	kind   error // one of the kinds above
	reason string
}

func (e *decryptError) Error() string   { return ErrDecrypt.Error() + ": " + e.reason }
func (e *decryptError) Unwrap() []error { return []error{ErrDecrypt, e.kind} }

func decryptErr(kind error, reason string) error { return &decryptError{kind: kind, reason: reason} }

// DecodeBase64 decodes the standard alphabet strictly, with two
// allowances seen in the field: missing '=' padding (some clients strip
// it) and ' ' where '+' was meant (a '+' sent unescaped in a form or query
// string decodes to a space). Anything else, line breaks included, is
// rejected. The other platforms' providers decode their user data with it
// too: their clients send it the same way.
func DecodeBase64(s string) ([]byte, error) {
	s = strings.ReplaceAll(s, " ", "+")
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/' || c == '=') {
			return nil, errors.New("invalid base64")
		}
	}
	enc := base64.StdEncoding
	if len(s)%4 != 0 {
		enc = base64.RawStdEncoding // unpadded; any '=' left is then an error
	}
	return enc.Strict().DecodeString(s)
}

// Decrypt decrypts WeChat encryptedData: AES-128-CBC with the base64
// session_key as key and the base64 iv, then strict PKCS#7 unpadding.
func Decrypt(sessionKey, encryptedData, iv string) ([]byte, error) {
	key, err := DecodeBase64(sessionKey)
	if err != nil {
		return nil, decryptErr(ErrBadKey, "session_key is not base64")
	}
	if len(key) != aes.BlockSize {
		return nil, decryptErr(ErrBadKey, "session_key is not 16 bytes")
	}
	ivb, err := DecodeBase64(iv)
	if err != nil {
		return nil, decryptErr(ErrBadIV, "iv is not base64")
	}
	if len(ivb) != aes.BlockSize {
		return nil, decryptErr(ErrBadIV, "iv is not 16 bytes")
	}
	data, err := DecodeBase64(encryptedData)
	if err != nil {
		return nil, decryptErr(ErrBadData, "encryptedData is not base64")
	}
	if len(data) == 0 || len(data)%aes.BlockSize != 0 {
		return nil, decryptErr(ErrBadData, "encryptedData is not a whole number of blocks")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, decryptErr(ErrBadKey, "bad key")
	}
	cipher.NewCBCDecrypter(block, ivb).CryptBlocks(data, data)
	n, ok := unpad(data)
	if !ok {
		return nil, decryptErr(ErrBadPadding, "bad padding")
	}
	return data[:n], nil
}

// unpad checks PKCS#7 padding in constant time (for the last block) and
// returns the length of the plaintext. The pad length must be 1..16 and
// every pad byte must equal it.
func unpad(data []byte) (int, bool) {
	last := data[len(data)-aes.BlockSize:]
	p := int(last[aes.BlockSize-1])
	good := subtle.ConstantTimeLessOrEq(1, p) & subtle.ConstantTimeLessOrEq(p, aes.BlockSize)
	for i := 0; i < aes.BlockSize; i++ {
		// Byte i of the last block is padding when i+p >= 16.
		inPad := subtle.ConstantTimeLessOrEq(aes.BlockSize, i+p)
		same := subtle.ConstantTimeByteEq(last[i], byte(p))
		good &= subtle.ConstantTimeSelect(inPad, same, 1)
	}
	if good != 1 {
		return 0, false
	}
	return len(data) - p, true
}

// DecryptUserData decrypts encryptedData and checks that the plaintext is
// a JSON object whose watermark.appid is appID, so data made for another
// mini-program is refused.
func DecryptUserData(appID, sessionKey, encryptedData, iv string) (json.RawMessage, error) {
	plain, err := Decrypt(sessionKey, encryptedData, iv)
	if err != nil {
		return nil, err
	}
	if !isObject(plain) {
		return nil, decryptErr(ErrNotJSON, "plaintext is not a JSON object")
	}
	var v struct {
		Watermark *struct {
			AppID string `json:"appid"`
		} `json:"watermark"`
	}
	if err := json.Unmarshal(plain, &v); err != nil || v.Watermark == nil {
		return nil, decryptErr(ErrWatermark, "missing watermark")
	}
	if appID == "" || v.Watermark.AppID != appID {
		return nil, decryptErr(ErrWatermark, "watermark appid mismatch")
	}
	return json.RawMessage(plain), nil
}

// VerifyRawData reports whether signature is hex(sha1(rawData +
// sessionKey)), the signature wx.getUserInfo sends with rawData. Hex case
// does not matter; the comparison is constant-time.
func VerifyRawData(rawData, sessionKey, signature string) bool {
	if sessionKey == "" {
		return false // anyone could compute it
	}
	sum := sha1.Sum([]byte(rawData + sessionKey))
	want := hex.EncodeToString(sum[:])
	return subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(signature))) == 1
}

// LoginStateSignature is hex(HMAC-SHA256(key = the session_key's base64
// text, not its decoded bytes, message)), WeChat's user login-state
// signature; checksession signs the empty message.
func LoginStateSignature(sessionKey, message string) string {
	m := hmac.New(sha256.New, []byte(sessionKey))
	m.Write([]byte(message))
	return hex.EncodeToString(m.Sum(nil))
}

// Encrypt is the inverse of Decrypt with a random iv: AES-128-CBC with
// PKCS#7 padding, results in standard padded base64. The WeChat stand-in
// and tests use it.
func Encrypt(sessionKey string, plaintext []byte) (encryptedData, iv string, err error) {
	key, err := DecodeBase64(sessionKey)
	if err != nil || len(key) != aes.BlockSize {
		return "", "", errors.New("wechat: session_key must be base64 of 16 bytes")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return "", "", err
	}
	ivb := make([]byte, aes.BlockSize)
	if _, err := rand.Read(ivb); err != nil {
		return "", "", err
	}
	p := aes.BlockSize - len(plaintext)%aes.BlockSize
	data := append(bytes.Clone(plaintext), bytes.Repeat([]byte{byte(p)}, p)...)
	cipher.NewCBCEncrypter(block, ivb).CryptBlocks(data, data)
	return base64.StdEncoding.EncodeToString(data), base64.StdEncoding.EncodeToString(ivb), nil
}
