package platform

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/wxauth/caddy-wxauth/internal/apierr"
	"github.com/wxauth/caddy-wxauth/internal/login"
	wx "github.com/wxauth/caddy-wxauth/wechat"
)

const (
	testKey   = "tiihtNczf5v6AKRyjwEUhQ=="
	otherKey  = "HyVFkGl5F5OQWJZZaNzBBg=="
	testAppID = "tt0123456789abcdef"
)

func seal(t *testing.T, key, plain string) login.Encrypted {
	t.Helper()
	data, iv, err := wx.Encrypt(key, []byte(plain))
	if err != nil {
		t.Fatal(err)
	}
	return login.Encrypted{Data: data, IV: iv}
}

// refused asserts that err is the contract's error code.
func refused(t *testing.T, err error, code string) {
	t.Helper()
	var e *apierr.Error
	if !errors.As(err, &e) || e.Status != 400 || e.Code != code || e.Message == "" {
		t.Fatalf("got %v, want 400 %s", err, code)
	}
}

func TestOpenUserData(t *testing.T) {
	s := SealedData{AppID: testAppID}
	for _, plain := range []string{
		`{"openId":"o1","nickName":"n","watermark":{"appid":"` + testAppID + `","timestamp":1}}`,
		`{"openId":"o1","nickName":"n"}`,
	} {
		got, err := s.DecryptUserData(testKey, seal(t, testKey, plain))
		if err != nil || string(got) != plain {
			t.Fatalf("%s: %s %v", plain, got, err)
		}
	}
	in := seal(t, testKey, `{"openId":"o1","watermark":{"appid":"tt-another","timestamp":1}}`)
	_, err := s.DecryptUserData(testKey, in)
	refused(t, err, "decrypt_failed")
	_, err = s.DecryptUserData(testKey, seal(t, testKey, `{"watermark":{"timestamp":1}}`))
	refused(t, err, "decrypt_failed")
	_, err = s.DecryptUserData(otherKey, seal(t, testKey, `{"openId":"o1"}`))
	refused(t, err, "decrypt_failed")
	_, err = s.DecryptUserData(testKey, seal(t, testKey, `"just a string"`))
	refused(t, err, "decrypt_failed")

	bad := seal(t, testKey, `{}`)
	bad.IV = "AAAA"
	_, err = s.DecryptUserData(testKey, bad)
	refused(t, err, "decrypt_failed")
	bad = seal(t, testKey, `{}`)
	bad.Data = "AAAA"
	_, err = s.DecryptUserData(testKey, bad)
	refused(t, err, "decrypt_failed")
	_, err = s.DecryptUserData("c2hvcnQ=", seal(t, testKey, `{}`))
	refused(t, err, "decrypt_failed")
}

// The rawData signature is WeChat's: WeChat's documented example (rawData,
// session_key HyVFkGl5F5OQWJZZaNzBBg==, signature
// 75e81ceda165f4ffa64f4068af58c64b8f54b88c) is QQ's documented one too.
func TestSignature(t *testing.T) {
	raw := `{"nickName":"Band","gender":1,"language":"zh_CN","city":"Guangzhou","province":"Guangdong","country":"CN","avatarUrl":"http://wx.qlogo.cn/mmopen/vi_32/1vZvI39NWFQ9XM4LtQpFrQJ1xlgZxx3w7bQxKARol6503Iuswjjn6nIGBiaycAjAtpujxyzYsrztuuICqIM5ibXQ/0"}`
	in := seal(t, otherKey, `{"nickName":"Band"}`)
	in.RawData, in.Signature = raw, "75e81ceda165f4ffa64f4068af58c64b8f54b88c"
	s := SealedData{AppID: testAppID}
	if _, err := s.DecryptUserData(otherKey, in); err != nil {
		t.Fatal(err)
	}
	in.RawData += " "
	_, err := s.DecryptUserData(otherKey, in)
	refused(t, err, "invalid_signature")
}

func TestPhoneFrom(t *testing.T) {
	cases := map[string]string{
		`{"phoneNumber":"+86 13800138000","purePhoneNumber":"13800138000","countryCode":"86"}`: `{"phone_number":"+86 13800138000","pure_phone_number":"13800138000","country_code":"86"}`,
		`{"phoneNumber":"13800138000","purePhoneNumber":"13800138000","countryCode":852}`:      `{"phone_number":"13800138000","pure_phone_number":"13800138000","country_code":"852"}`,
		`{"phoneNumber":"13800138000"}`: `{"phone_number":"13800138000","pure_phone_number":"13800138000","country_code":"86"}`,
		`{"mobile":"15000000000"}`:      `{"phone_number":"15000000000","pure_phone_number":"15000000000","country_code":"86"}`,
	}
	for in, want := range cases {
		got, err := PhoneFrom(json.RawMessage(in))
		if err != nil || string(got) != want {
			t.Errorf("%s: %s %v, want %s", in, got, err, want)
		}
	}
	for _, in := range []string{`{"nickName":"n"}`, `{"phoneNumber":1}`} {
		_, err := PhoneFrom(json.RawMessage(in))
		refused(t, err, "decrypt_failed")
	}

	s := SealedData{AppID: testAppID}
	got, err := s.PhoneFromEncrypted(testKey, seal(t, testKey, `{"phoneNumber":"13800138000","purePhoneNumber":"13800138000","countryCode":"86","watermark":{"appid":"`+testAppID+`","timestamp":1}}`))
	if err != nil || string(got) != `{"phone_number":"13800138000","pure_phone_number":"13800138000","country_code":"86"}` {
		t.Fatalf("%s %v", got, err)
	}
	_, err = s.PhoneFromEncrypted(otherKey, seal(t, testKey, `{"phoneNumber":"1"}`))
	refused(t, err, "decrypt_failed")
}
