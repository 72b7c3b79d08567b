package platform

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/wxauth/caddy-wxauth/internal/apierr"
	"github.com/wxauth/caddy-wxauth/internal/login"
	wx "github.com/wxauth/caddy-wxauth/wechat"
)

// Reasons a client is told when its data does not decrypt; none echoes the
// data or a key.
const (
	// ReasonStale is the usual cause: the data was sealed with a session
	// key from before the user's latest login, or altered.
	ReasonStale = "the data does not decrypt with the user's newest session key; if it came before the latest login on the mini-program, fetch it again"
	// ReasonBadKey means the kept session key is not one the platform's
	// scheme can use.
	ReasonBadKey = "the kept session key is not usable; log in on the mini-program again"
	// ReasonWatermark means the data was made for another app.
	ReasonWatermark = "the data's watermark names another mini-program"
)

// DecryptFailed is the contract's decrypt_failed, saying why.
func DecryptFailed(reason string) *apierr.Error {
	return apierr.New(http.StatusBadRequest, "decrypt_failed", reason)
}

// CheckSignature checks in's rawData signature, when given: it must be
// hex(sha1(rawData + session key)), as QQ, Douyin and Kuaishou sign
// getUserInfo's rawData like WeChat.
func CheckSignature(sessionKey string, in login.Encrypted) error {
	if in.Signature != "" && !wx.VerifyRawData(in.RawData, sessionKey, in.Signature) {
		return apierr.New(http.StatusBadRequest, "invalid_signature", "signature does not match rawData and the session key; the data may be stale: log in on the mini-program again")
	}
	return nil
}

// OpenUserData checks in's signature when given and opens user data sealed
// as WeChat seals it (AES-128-CBC with the base64 session key and iv,
// PKCS#7 padding), as QQ, Douyin and Kuaishou do. The plaintext must be a
// JSON object whose watermark, when it carries one, names appID.
func OpenUserData(appID, sessionKey string, in login.Encrypted) (json.RawMessage, error) {
	if err := CheckSignature(sessionKey, in); err != nil {
		return nil, err
	}
	plain, err := wx.Decrypt(sessionKey, in.Data, in.IV)
	if err != nil {
		return nil, DecryptFailed(decryptReason(err))
	}
	return CheckUserData(appID, plain)
}

// decryptReason tells the client why wx.Decrypt refused its data.
func decryptReason(err error) string {
	switch {
	case errors.Is(err, wx.ErrBadIV):
		return `"iv" is not base64 of 16 bytes`
	case errors.Is(err, wx.ErrBadData):
		return `"encryptedData" is not base64 of whole 16-byte blocks`
	case errors.Is(err, wx.ErrBadKey):
		return ReasonBadKey
	}
	return ReasonStale
}

// CheckUserData checks a decrypted plaintext: a JSON object whose
// watermark, when present, names appID. Not every platform adds a
// watermark (Baidu proves the app with its AppKey instead), so only one
// that is there is checked.
func CheckUserData(appID string, plain []byte) (json.RawMessage, error) {
	var v struct {
		Watermark *struct {
			AppID *string `json:"appid"`
		} `json:"watermark"`
	}
	plain = bytes.TrimSpace(plain)
	if len(plain) == 0 || plain[0] != '{' || json.Unmarshal(plain, &v) != nil {
		return nil, DecryptFailed(ReasonStale)
	}
	if w := v.Watermark; w != nil && (w.AppID == nil || *w.AppID != appID) {
		return nil, DecryptFailed(ReasonWatermark)
	}
	return json.RawMessage(plain), nil
}

// SealedData is the user data half of a provider whose platform seals
// user data and phone numbers as WeChat does (QQ, Douyin, Kuaishou): the
// provider embeds it and so is a login.Decrypter and a
// login.EncryptedPhoner.
type SealedData struct {
	// AppID is the app a watermark in the data must name.
	AppID string
}

// DecryptUserData checks the raw data's signature, when given, and opens
// getUserInfo's encryptedData with sessionKey (see OpenUserData).
func (s SealedData) DecryptUserData(sessionKey string, in login.Encrypted) (json.RawMessage, error) {
	return OpenUserData(s.AppID, sessionKey, in)
}

// PhoneFromEncrypted opens the getPhoneNumber button's encryptedData (see
// OpenUserData) and answers the contract's phone shape (see PhoneFrom).
func (s SealedData) PhoneFromEncrypted(sessionKey string, in login.Encrypted) (json.RawMessage, error) {
	data, err := OpenUserData(s.AppID, sessionKey, in)
	if err != nil {
		return nil, err
	}
	return PhoneFrom(data)
}

// phoneShape is the contract's phone answer.
type phoneShape struct {
	PhoneNumber     string `json:"phone_number"`
	PurePhoneNumber string `json:"pure_phone_number"`
	CountryCode     string `json:"country_code"`
}

// PhoneFrom turns a decrypted getPhoneNumber plaintext into the contract's
// phone shape {"phone_number", "pure_phone_number", "country_code"}. It
// takes WeChat's shape (phoneNumber, purePhoneNumber, countryCode as a
// string or a number), as QQ, Douyin and Kuaishou answer, and Baidu's
// {"mobile"}. A missing country code is "86": these platforms give
// Chinese mainland numbers.
func PhoneFrom(plain json.RawMessage) (json.RawMessage, error) {
	var v struct {
		PhoneNumber     string          `json:"phoneNumber"`
		PurePhoneNumber string          `json:"purePhoneNumber"`
		CountryCode     json.RawMessage `json:"countryCode"`
		Mobile          string          `json:"mobile"`
	}
	if err := json.Unmarshal(plain, &v); err != nil {
		return nil, DecryptFailed("the data is not a phone number")
	}
	out := phoneShape{PhoneNumber: v.PhoneNumber, PurePhoneNumber: v.PurePhoneNumber, CountryCode: "86"}
	if out.PhoneNumber == "" {
		out.PhoneNumber = v.Mobile
	}
	if out.PurePhoneNumber == "" {
		out.PurePhoneNumber = out.PhoneNumber
	}
	if out.PhoneNumber == "" {
		return nil, DecryptFailed("the data holds no phone number")
	}
	var cc string
	var n json.Number
	switch {
	case len(v.CountryCode) == 0 || string(v.CountryCode) == "null":
	case json.Unmarshal(v.CountryCode, &cc) == nil && cc != "":
		out.CountryCode = cc
	case json.Unmarshal(v.CountryCode, &n) == nil:
		out.CountryCode = n.String()
	}
	return json.Marshal(out)
}
