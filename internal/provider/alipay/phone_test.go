package alipay

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
)

const testAES = "aa4BtZ4tspm2wnXLb1ThQA=="

// seal seals plain as Alipay does for my.getPhoneNumber: AES-128-CBC with
// the content key and a zero iv, PKCS#7, base64.
func seal(t testing.TB, aesKey, plain string) string {
	t.Helper()
	key, _ := base64.StdEncoding.DecodeString(aesKey)
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	n := aes.BlockSize - len(plain)%aes.BlockSize
	buf := append([]byte(plain), bytes.Repeat([]byte{byte(n)}, n)...)
	cipher.NewCBCEncrypter(block, make([]byte, aes.BlockSize)).CryptBlocks(buf, buf)
	return base64.StdEncoding.EncodeToString(buf)
}

// phoneText is the text my.getPhoneNumber gives: the sealed plain, signed
// over the quoted ciphertext with signKey ("" for no sign).
func phoneText(t testing.TB, signKey, aesKey, plain string) string {
	t.Helper()
	resp := seal(t, aesKey, plain)
	m := map[string]string{"response": resp, "sign_type": "RSA2", "encrypt_type": "AES", "charset": "UTF-8"}
	if signKey != "" {
		key, err := parsePrivateKey(signKey)
		if err != nil {
			t.Fatal(err)
		}
		m["sign"], _ = signRSA2(key, `"`+resp+`"`)
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func newPhoneProvider(t *testing.T) *Provider {
	t.Helper()
	p, err := New(validConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestOpenPhone(t *testing.T) {
	p := newPhoneProvider(t)
	got, err := p.OpenPhone([]byte(phoneText(t, platformKey(t), testAES, `{"code":"10000","msg":"Success","mobile":"13800138000"}`)))
	want := `{"phone_number":"13800138000","pure_phone_number":"13800138000","country_code":"86"}`
	if err != nil || string(got) != want {
		t.Fatalf("got %s, %v", got, err)
	}
	// Only response is required beside the sign; the rest default.
	resp := seal(t, testAES, `{"code":"10000","msg":"Success","mobile":"1597671905"}`)
	key, _ := parsePrivateKey(platformKey(t))
	sign, _ := signRSA2(key, `"`+resp+`"`)
	if got, err := p.OpenPhone([]byte(`{"response":"` + resp + `","sign":"` + sign + `"}`)); err != nil || !strings.Contains(string(got), `"1597671905"`) {
		t.Fatalf("got %s, %v", got, err)
	}
}

// Unencrypted answers (an app without a content key) are signed as they
// are, without quotes, as Alipay's documentation says.
func TestOpenPhoneUnencrypted(t *testing.T) {
	p := newPhoneProvider(t)
	key, _ := parsePrivateKey(platformKey(t))
	plain := `{"code":"40001","msg":"Missing Required Arguments","subCode":"isv.missing-encrypt-key","subMsg":"缺少加密配置"}`
	sign, _ := signRSA2(key, plain)
	body, _ := json.Marshal(map[string]string{"response": plain, "sign": sign})
	_, err := p.OpenPhone(body)
	e := apiError(t, err)
	if e.Status != 403 || e.Code != "phone_refused" || e.ErrCodeString() != "isv.missing-encrypt-key" || !strings.Contains(e.Message, "aes_key") {
		t.Errorf("%s: got %+v", body, e)
	}
	// The same text quoted, as if it were ciphertext, does not verify.
	body, _ = json.Marshal(map[string]string{"response": " " + plain, "sign": sign})
	if _, err := p.OpenPhone(body); apiError(t, err).Code != "invalid_signature" {
		t.Errorf("got %v", err)
	}
	// A signed text in the clear that claims a number is not one: with a
	// content key Alipay seals every number.
	number := `{"code":"10000","msg":"Success","mobile":"13900000000"}`
	sign, _ = signRSA2(key, number)
	body, _ = json.Marshal(map[string]string{"response": number, "sign": sign, "sign_type": "RSA2", "encrypt_type": "AES"})
	if info, err := p.OpenPhone(body); err == nil || apiError(t, err).Code != "invalid_request" {
		t.Errorf("a number in the clear: %s, %v", info, err)
	}
}

func TestOpenPhoneErrors(t *testing.T) {
	p := newPhoneProvider(t)
	pk := platformKey(t)
	ok := `{"code":"10000","msg":"Success","mobile":"13800138000"}`
	good := phoneText(t, pk, testAES, ok)
	var m map[string]string
	json.Unmarshal([]byte(good), &m)
	with := func(name, value string) string {
		c := map[string]string{}
		for k, v := range m {
			c[k] = v
		}
		c[name] = value
		b, _ := json.Marshal(c)
		return string(b)
	}
	cases := []struct {
		name    string
		body    string
		status  int
		code    string
		errcode string
	}{
		{"user did not allow", phoneText(t, pk, testAES, `{"code":"40003","msg":"Insufficient Conditions","subCode":"isv.invalid-auth-relations","subMsg":"无效的授权关系"}`),
			403, "phone_refused", "isv.invalid-auth-relations"},
		{"app has no permission", phoneText(t, pk, testAES, `{"code":"40006","msg":"Insufficient Permissions","subCode":"isv.insufficient-isv-permissions"}`),
			403, "phone_refused", "isv.insufficient-isv-permissions"},
		{"other refusal", phoneText(t, pk, testAES, `{"code":"40004","msg":"Business Failed","subCode":"some.new-code"}`), 403, "phone_refused", "some.new-code"},
		{"refusal without subCode", phoneText(t, pk, testAES, `{"code":"40004","msg":"Business Failed"}`), 403, "phone_refused", "40004"},
		{"busy", phoneText(t, pk, testAES, `{"code":"20000","msg":"Service Currently Unavailable","subCode":"aop.unknow-error"}`), 502, "upstream_error", "aop.unknow-error"},
		{"no phone bound", phoneText(t, pk, testAES, `{"code":"10000","msg":"Success","mobile":""}`), 403, "phone_refused", ""},
		{"mobile not digits", phoneText(t, pk, testAES, `{"code":"10000","mobile":"138\r\n00"}`), 502, "upstream_error", ""},
		{"no code", phoneText(t, pk, testAES, `{"mobile":"13800138000"}`), 502, "upstream_error", ""},
		{"no sign", phoneText(t, "", testAES, ok), 502, "platform_config", ""},
		{"empty sign", with("sign", ""), 502, "platform_config", ""},
		{"signed by another key", phoneText(t, readKey(t, "app-private-key.pem"), testAES, ok), 400, "invalid_signature", ""},
		{"response changed", with("response", seal(t, testAES, `{"code":"10000","msg":"Success","mobile":"13900139000"}`)), 400, "invalid_signature", ""},
		{"sign not base64", with("sign", "%%%"), 400, "invalid_signature", ""},
		{"sealed with another key", phoneText(t, pk, "AAAAAAAAAAAAAAAAAAAAAA==", ok), 502, "platform_config", ""},
		{"RSA1 sign", with("sign_type", "RSA"), 502, "platform_config", ""},
		{"another cipher", with("encrypt_type", "SM4"), 502, "platform_config", ""},
		{"unknown field", with("signature", "x"), 400, "invalid_request", ""},
		{"field in another case", strings.Replace(good, `"sign"`, `"Sign"`, 1), 400, "invalid_request", ""},
		{"field twice", strings.Replace(good, `{`, `{"sign":"x",`, 1), 400, "invalid_request", ""},
		{"no response", `{"sign":"x"}`, 400, "invalid_request", ""},
		{"empty response", with("response", ""), 400, "invalid_request", ""},
		{"response a number", `{"response":1,"sign":"x"}`, 400, "invalid_request", ""},
		{"field of the wrong type", `{"response":"x","sign":1}`, 400, "invalid_request", ""},
		{"not JSON", `response=x&sign=y`, 400, "invalid_request", ""},
		{"the whole success object", `{"response":` + good + `}`, 400, "invalid_request", ""},
		{"empty", ``, 400, "invalid_request", ""},
		{"two objects", good + good, 400, "invalid_request", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := p.OpenPhone([]byte(c.body))
			e := apiError(t, err)
			if e.Status != c.status || e.Code != c.code || e.ErrCodeString() != c.errcode || e.Message == "" {
				t.Fatalf("got %d %s %q (%s), want %d %s %q", e.Status, e.Code, e.ErrCodeString(), e.Message, c.status, c.code, c.errcode)
			}
			if c.code == "platform_config" && e.Platform != "alipay" {
				t.Errorf("platform %q", e.Platform)
			}
			if strings.Contains(e.Message, testAES) || strings.Contains(e.Message, "13800138000") {
				t.Errorf("message quotes a secret or the number: %s", e.Message)
			}
		})
	}
}

// Without aes_key there are no phone numbers, whatever the body.
func TestOpenPhoneWithoutAESKey(t *testing.T) {
	cfg := validConfig(t)
	cfg.AESKey = ""
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.OpenPhone([]byte(phoneText(t, platformKey(t), testAES, `{"code":"10000","mobile":"13800138000"}`)))
	if e := apiError(t, err); e.Status != 502 || e.Code != "platform_config" || !strings.Contains(e.Message, "aes_key") {
		t.Fatalf("got %+v", e)
	}
}

// Whatever the body, OpenPhone answers an *apierr.Error and never panics.
func TestOpenPhoneNeverPanics(t *testing.T) {
	p := newPhoneProvider(t)
	good := []byte(phoneText(t, platformKey(t), testAES, `{"code":"10000","mobile":"13800138000"}`))
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		b := bytes.Clone(good)
		for range 1 + r.IntN(4) {
			if len(b) == 0 {
				break
			}
			switch i := r.IntN(len(b)); r.IntN(3) {
			case 0:
				b[i] = byte(r.IntN(256))
			case 1:
				b = append(b[:i], b[i+1:]...)
			default:
				b = b[:i]
			}
		}
		if _, err := p.OpenPhone(b); err != nil {
			apiError(t, err)
		}
	}
}

func FuzzOpenPhone(f *testing.F) {
	p, err := New(validConfig(f))
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(phoneText(f, platformKey(f), testAES, `{"code":"10000","mobile":"13800138000"}`)))
	f.Add([]byte(`{"response":{"code":"10000"},"sign":"AAAA"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		if _, err := p.OpenPhone(raw); err != nil {
			apiError(t, err)
		}
	})
}
