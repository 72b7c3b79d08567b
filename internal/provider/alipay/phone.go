package alipay

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/wxauth/caddy-wxauth/internal/apierr"
	"github.com/wxauth/caddy-wxauth/internal/strictjson"
	wx "github.com/wxauth/caddy-wxauth/wechat"
)

// zeroIV is Alipay's content encryption iv, 16 zero bytes, in base64.
var zeroIV = base64.StdEncoding.EncodeToString(make([]byte, 16))

// wrongAESKey says what to fix when Alipay's signed ciphertext does not
// open: the sign held, so the key is wrong.
const wrongAESKey = "aes_key does not open Alipay's phone number: set it to this app's AES content key (接口内容加密方式)"

// sealedFields are the members of my.getPhoneNumber's response text, as
// Alipay documents them; any other member is refused.
var sealedFields = []string{"response", "sign", "sign_type", "encrypt_type", "charset"}

// sealed is the text my.getPhoneNumber gives the mini-program (its
// res.response), posted unchanged.
type sealed struct {
	// Response is the ciphertext; Alipay sends the plain JSON text
	// instead when the app has no content key.
	Response string `json:"response"`
	// Sign is Alipay's RSA2 sign of the quoted ciphertext; absent when
	// the app has set up no signing (接口加签方式).
	Sign string `json:"sign"`
	// SignType, EncryptType and Charset default to RSA2, AES and UTF-8.
	SignType    string `json:"sign_type"`
	EncryptType string `json:"encrypt_type"`
	Charset     string `json:"charset"`
}

// phonePlain is the opened answer: {"code":"10000","msg":"Success",
// "mobile":"..."}, or a refusal with subCode and subMsg.
type phonePlain struct {
	Code    string `json:"code"`
	Mobile  string `json:"mobile"`
	SubCode string `json:"subCode"`
}

// phoneInfo is the contract's phone shape.
type phoneInfo struct {
	PhoneNumber     string `json:"phone_number"`
	PurePhoneNumber string `json:"pure_phone_number"`
	CountryCode     string `json:"country_code"`
}

// phoneRefusals says what an Alipay refusal of a phone number means, by
// subCode; another subCode is a refusal without advice.
var phoneRefusals = map[string]string{
	"isv.invalid-auth-relations": "the user has not allowed the mini-program their phone number: call my.getPhoneNumber in the onGetAuthorize " +
		`of a <button open-type="getAuthorize" scope="phoneNumber">`,
	"isv.insufficient-isv-permissions": "Alipay gives this mini-program no phone numbers: bind the 获取会员手机号 product and have its 用户信息申请 approved",
	"isv.missing-encrypt-key":          "Alipay has no content key for the app: set 接口内容加密方式 (AES) in the console and the same key as aes_key",
}

// OpenPhone opens the phone number in raw, the text my.getPhoneNumber gave
// the mini-program: its sign is verified over the quoted ciphertext with
// Alipay's public key, then the ciphertext is opened with aes_key
// (AES-128-CBC, zero iv, PKCS#7). It answers {"phone_number",
// "pure_phone_number", "country_code":"86"}.
//
// Alipay's sealed answer names no user: it proves that Alipay gave the
// number to this app, not to whom. Errors: 400 invalid_request for a body
// that is not that text, 400 invalid_signature when the sign does not
// verify, 403 phone_refused when Alipay refused the number (its subCode in
// errcode), 502 platform_config when the app is set up without aes_key or
// signing, 502 upstream_error when Alipay was busy.
func (p *Provider) OpenPhone(raw []byte) (json.RawMessage, error) {
	if p.aesKey == "" {
		return nil, apierr.PlatformConfig(Platform, "aes_key is not set: set it to the app's AES content key (接口内容加密方式) to open phone numbers")
	}
	var in sealed
	if err := strictjson.Decode(raw, &in, sealedFields...); err != nil {
		return nil, apierr.InvalidRequest("the body must be the text my.getPhoneNumber gave in res.response, posted unchanged: " + err.Error())
	}
	content, encrypted, err := sealedContent(in.Response)
	if err != nil {
		return nil, apierr.InvalidRequest(err.Error())
	}
	if in.SignType != "" && in.SignType != "RSA2" {
		return nil, apierr.PlatformConfig(Platform, "the phone number is signed with "+strictjson.Quote(in.SignType)+": set the app's 接口加签方式 to RSA2")
	}
	if in.EncryptType != "" && in.EncryptType != "AES" {
		return nil, apierr.PlatformConfig(Platform, "the phone number is sealed with "+strictjson.Quote(in.EncryptType)+": set the app's 接口内容加密方式 to AES")
	}
	if in.Sign == "" {
		return nil, apierr.PlatformConfig(Platform, "my.getPhoneNumber's answer has no sign: Alipay signs it only when the app has 接口加签方式 "+
			"set up; set it up in public key mode (RSA2) and alipay_public_key to its 支付宝公钥")
	}
	if !verifyRSA2(p.alipayKey, content, in.Sign) {
		return nil, apierr.New(http.StatusBadRequest, "invalid_signature", "the sign does not match the response and alipay_public_key: "+
			"post the text of my.getPhoneNumber unchanged; if every phone number fails so, check alipay_public_key")
	}
	plain := content
	if encrypted {
		// The same AES-128-CBC with strict PKCS#7 as WeChat's user data;
		// Alipay's iv is zero.
		if plain, err = wx.Decrypt(p.aesKey, in.Response, zeroIV); err != nil {
			if errors.Is(err, wx.ErrBadPadding) {
				return nil, apierr.PlatformConfig(Platform, wrongAESKey)
			}
			return nil, upstream("Alipay's sealed phone number is not whole AES blocks")
		}
	}
	var ans phonePlain
	if json.Unmarshal(plain, &ans) != nil {
		if encrypted {
			// A wrong key gives valid padding one time in 256, then garbage.
			return nil, apierr.PlatformConfig(Platform, wrongAESKey)
		}
		return nil, upstream("Alipay's phone answer is not JSON")
	}
	if !encrypted && ans.Code == "10000" {
		// With a content key Alipay seals every number; only a refusal
		// comes in the clear. A signed text in the clear that claims a
		// number is some other signed text, not a phone number.
		return nil, apierr.InvalidRequest("the phone number is not sealed: post the text my.getPhoneNumber gave, unchanged")
	}
	return phoneAnswer(&ans)
}

// sealedContent returns what Alipay signed of the response member: the
// ciphertext in quotes, or, when Alipay sent the answer unencrypted (its
// text then starts with '{'), that JSON text itself.
func sealedContent(resp string) (content []byte, encrypted bool, err error) {
	switch {
	case resp == "":
		return nil, false, errors.New(`"response" must be the non-empty text Alipay sealed`)
	case strings.HasPrefix(resp, "{"):
		return []byte(resp), false, nil
	}
	return []byte(`"` + resp + `"`), true, nil
}

// phoneAnswer maps the opened answer to the contract's phone shape or
// error.
func phoneAnswer(ans *phonePlain) (json.RawMessage, error) {
	code := ans.SubCode
	if code == "" {
		code = ans.Code
	}
	switch {
	case ans.Code == "10000" && ans.Mobile == "":
		return nil, apierr.New(http.StatusForbidden, "phone_refused", "the user's Alipay account has no phone number bound")
	case ans.Code == "10000" && !phoneDigits(ans.Mobile):
		return nil, upstream("Alipay's phone number is not digits")
	case ans.Code == "10000":
		return json.Marshal(phoneInfo{PhoneNumber: ans.Mobile, PurePhoneNumber: ans.Mobile, CountryCode: "86"})
	case ans.Code == "":
		return nil, upstream("Alipay's phone answer has no code")
	case strings.HasPrefix(ans.Code, "2"):
		// 20000: Alipay was busy, neither the user nor the app refused.
		return nil, upstream("Alipay could not give the phone number just now; ask the user to try again").WithErrCodeText(code)
	}
	msg, ok := phoneRefusals[ans.SubCode]
	if !ok {
		msg = "Alipay refused the phone number with " + code
	}
	return nil, apierr.New(http.StatusForbidden, "phone_refused", msg).WithErrCodeText(code)
}

// phoneDigits reports whether s is a phone number as Alipay gives it:
// digits only (mainland numbers carry no country code).
func phoneDigits(s string) bool {
	if len(s) > 20 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
