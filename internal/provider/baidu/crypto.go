package baidu

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"encoding/json"

	"github.com/wxauth/caddy-wxauth/internal/login"
	"github.com/wxauth/caddy-wxauth/internal/provider/platform"
	wx "github.com/wxauth/caddy-wxauth/wechat"
)

const (
	// keySize is the session key's length: AES-192.
	keySize = 24
	// randomPrefix is the random bytes before the length field.
	randomPrefix = 16
	// lengthField is the big-endian length of the user data.
	lengthField = 4
	// maxPad is the longest padding: Baidu pads to 32-byte blocks, as
	// its published sample shows (28 bytes of padding there).
	maxPad = 32
)

// DecryptUserData checks the raw data's signature, when given (sha1 of
// rawData and the session key, as the other platforms sign it), and opens
// swan.getUserInfo's data with sessionKey; it must carry this app's
// AppKey.
func (p *Provider) DecryptUserData(sessionKey string, in login.Encrypted) (json.RawMessage, error) {
	if err := platform.CheckSignature(sessionKey, in); err != nil {
		return nil, err
	}
	plain, err := open(p.c.AppID, sessionKey, in.Data, in.IV)
	if err != nil {
		return nil, err
	}
	return platform.CheckUserData(p.c.AppID, plain)
}

// PhoneFromEncrypted opens the getPhoneNumber button's encryptedData as
// DecryptUserData does; its {"mobile"} becomes the contract's phone shape.
func (p *Provider) PhoneFromEncrypted(sessionKey string, in login.Encrypted) (json.RawMessage, error) {
	data, err := p.DecryptUserData(sessionKey, in)
	if err != nil {
		return nil, err
	}
	return platform.PhoneFrom(data)
}

// open decrypts data sealed by Baidu: AES-192-CBC with the base64 session
// key and iv, padded PKCS#7-style up to 32 bytes; the plaintext is 16
// random bytes, the user data's length (4 bytes, big-endian), the user data
// and appKey. It returns the user data.
//
// The iv only changes the 16 random leading bytes (CBC: a block's iv
// touches that block alone), so a wrong iv goes unnoticed; a wrong key or
// damaged data fails the padding, the length or the AppKey. Errors are
// decrypt_failed.
func open(appKey, sessionKey, data, iv string) ([]byte, error) {
	key, err := wx.DecodeBase64(sessionKey)
	if err != nil || len(key) != keySize {
		return nil, platform.DecryptFailed(platform.ReasonBadKey)
	}
	ivb, err := wx.DecodeBase64(iv)
	if err != nil || len(ivb) != aes.BlockSize {
		return nil, platform.DecryptFailed(`"iv" is not base64 of 16 bytes`)
	}
	buf, err := wx.DecodeBase64(data)
	if err != nil || len(buf) == 0 || len(buf)%aes.BlockSize != 0 {
		return nil, platform.DecryptFailed(`"encryptedData" is not base64 of whole 16-byte blocks`)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, platform.DecryptFailed(platform.ReasonBadKey)
	}
	cipher.NewCBCDecrypter(block, ivb).CryptBlocks(buf, buf)
	plain, ok := unpad(buf)
	if !ok || len(plain) < randomPrefix+lengthField+len(appKey) {
		return nil, platform.DecryptFailed(platform.ReasonStale)
	}
	n := binary.BigEndian.Uint32(plain[randomPrefix:])
	body := plain[randomPrefix+lengthField:]
	if uint64(n)+uint64(len(appKey)) != uint64(len(body)) {
		return nil, platform.DecryptFailed(platform.ReasonStale)
	}
	if string(body[n:]) != appKey {
		return nil, platform.DecryptFailed("the data was sealed for another smart program (its AppKey is not app_id)")
	}
	return body[:n], nil
}

// unpad strips padding of 1 to 32 bytes, each holding the pad length, and
// reports whether it was well-formed. The pad bytes are all compared
// whatever their values, so the time taken does not tell where a check
// failed.
func unpad(buf []byte) ([]byte, bool) {
	p := int(buf[len(buf)-1])
	if p < 1 || p > maxPad || p > len(buf) {
		return nil, false
	}
	good := 1
	for _, b := range buf[len(buf)-p:] {
		good &= subtle.ConstantTimeByteEq(b, byte(p))
	}
	return buf[:len(buf)-p], good == 1
}
