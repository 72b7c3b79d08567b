package wechat

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
)

// vectors mirrors testdata/wechat_vectors.json (a copy of the project's
// official WeChat test vectors).
type vectors struct {
	AES struct {
		AppID             string `json:"appId"`
		EncryptedData     string `json:"encryptedData"`
		ExpectedPlaintext string `json:"expectedPlaintext"`
		IV                string `json:"iv"`
		SessionKey        string `json:"sessionKey"`
	} `json:"userinfo_official_aes_sample"`
	RawData struct {
		RawData    string `json:"rawData"`
		SessionKey string `json:"sessionKey"`
		Signature  string `json:"signature"`
	} `json:"rawData_signature"`
	HMAC struct {
		Key       string `json:"key"`
		Message   string `json:"message"`
		Signature string `json:"signature"`
	} `json:"login_state_hmac_official"`
	Negative struct {
		EncryptedData string `json:"encryptedData"`
		IV            string `json:"iv"`
		SessionKey    string `json:"sessionKey"`
	} `json:"negative_wxjava_7MG7"`
}

func loadVectors(tb testing.TB) vectors {
	tb.Helper()
	data, err := os.ReadFile("testdata/wechat_vectors.json")
	if err != nil {
		tb.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(data, &v); err != nil {
		tb.Fatal(err)
	}
	if v.AES.EncryptedData == "" || v.RawData.Signature == "" || v.HMAC.Signature == "" || v.Negative.EncryptedData == "" {
		tb.Fatal("vectors file is missing entries")
	}
	return v
}

func TestVectorAESSample(t *testing.T) {
	v := loadVectors(t).AES
	plain, err := Decrypt(v.SessionKey, v.EncryptedData, v.IV)
	if err != nil {
		t.Fatalf("Decrypt: %v", err)
	}
	if string(plain) != v.ExpectedPlaintext {
		t.Fatalf("plaintext = %q, want %q", plain, v.ExpectedPlaintext)
	}
	got, err := DecryptUserData(v.AppID, v.SessionKey, v.EncryptedData, v.IV)
	if err != nil {
		t.Fatalf("DecryptUserData: %v", err)
	}
	if string(got) != v.ExpectedPlaintext {
		t.Fatalf("user data = %s", got)
	}
	_, err = DecryptUserData("wx0000000000000000", v.SessionKey, v.EncryptedData, v.IV)
	if !errors.Is(err, ErrWatermark) || !strings.Contains(err.Error(), "watermark appid mismatch") {
		t.Fatalf("other appid: err = %v", err)
	}
	if _, err := DecryptUserData("", v.SessionKey, v.EncryptedData, v.IV); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("empty appid: err = %v", err)
	}
}

func TestVectorBase64Leniency(t *testing.T) {
	v := loadVectors(t).AES
	tests := []struct {
		name          string
		key, data, iv string
		ok            bool
	}{
		{"unpadded", strings.TrimRight(v.SessionKey, "="), strings.TrimRight(v.EncryptedData, "="), strings.TrimRight(v.IV, "="), true},
		{"plus as space", strings.ReplaceAll(v.SessionKey, "+", " "), strings.ReplaceAll(v.EncryptedData, "+", " "), strings.ReplaceAll(v.IV, "+", " "), true},
		{"newline", v.SessionKey, v.EncryptedData[:40] + "\n" + v.EncryptedData[40:], v.IV, false},
		{"url alphabet", v.SessionKey, strings.NewReplacer("+", "-", "/", "_").Replace(v.EncryptedData), v.IV, false},
		{"half padding", v.SessionKey, v.EncryptedData, strings.TrimSuffix(v.IV, "="), false},
		{"trailing junk", v.SessionKey, v.EncryptedData + "!", v.IV, false},
		{"non-canonical trailing bits", "tiihtNczf5v6AKRyjwEUhR==", v.EncryptedData, v.IV, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "plus as space" && !strings.Contains(v.EncryptedData, "+") {
				t.Fatal("vector has no '+' to test with")
			}
			plain, err := Decrypt(tt.key, tt.data, tt.iv)
			if tt.ok {
				if err != nil || string(plain) != v.ExpectedPlaintext {
					t.Fatalf("got %q, %v", plain, err)
				}
				return
			}
			if !errors.Is(err, ErrDecrypt) {
				t.Fatalf("err = %v, want ErrDecrypt", err)
			}
		})
	}
}

func TestVectorRawDataSignature(t *testing.T) {
	v := loadVectors(t).RawData
	if !VerifyRawData(v.RawData, v.SessionKey, v.Signature) {
		t.Fatal("official signature does not verify")
	}
	if !VerifyRawData(v.RawData, v.SessionKey, strings.ToUpper(v.Signature)) {
		t.Fatal("upper-case hex does not verify")
	}
	bad := []struct{ name, raw, key, sig string }{
		{"changed rawData", strings.Replace(v.RawData, "Band", "Bond", 1), v.SessionKey, v.Signature},
		{"changed signature", v.RawData, v.SessionKey, "85" + v.Signature[2:]},
		{"other key", v.RawData, "tiihtNczf5v6AKRyjwEUhQ==", v.Signature},
		{"truncated signature", v.RawData, v.SessionKey, v.Signature[:39]},
		{"empty signature", v.RawData, v.SessionKey, ""},
		{"empty key", v.RawData, "", v.Signature},
	}
	for _, b := range bad {
		if VerifyRawData(b.raw, b.key, b.sig) {
			t.Errorf("%s: verified", b.name)
		}
	}
}

func TestVectorLoginStateHMAC(t *testing.T) {
	v := loadVectors(t).HMAC
	if got := LoginStateSignature(v.Key, v.Message); got != v.Signature {
		t.Fatalf("signature = %s, want %s", got, v.Signature)
	}
	if LoginStateSignature(v.Key, "") == v.Signature {
		t.Fatal("signature ignores the message")
	}
}

func TestVectorWrongKeyFails(t *testing.T) {
	v := loadVectors(t).Negative
	plain, err := Decrypt(v.SessionKey, v.EncryptedData, v.IV)
	if !errors.Is(err, ErrDecrypt) || plain != nil {
		t.Fatalf("got %d bytes, err %v; want a decrypt error", len(plain), err)
	}
	if _, err := DecryptUserData("wx4f4bc4dec97d474b", v.SessionKey, v.EncryptedData, v.IV); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("DecryptUserData err = %v", err)
	}
}

var (
	testKey = base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))
	testIV  = base64.StdEncoding.EncodeToString([]byte("fedcba9876543210"))
)

// rawCBC encrypts blocks without adding padding, to build bad paddings.
func rawCBC(plain []byte) string {
	block, _ := aes.NewCipher([]byte("0123456789abcdef"))
	out := bytes.Clone(plain)
	cipher.NewCBCEncrypter(block, []byte("fedcba9876543210")).CryptBlocks(out, out)
	return base64.StdEncoding.EncodeToString(out)
}

func TestDecryptErrors(t *testing.T) {
	b64 := func(n int) string { return base64.StdEncoding.EncodeToString(make([]byte, n)) }
	block := func(tail ...byte) []byte {
		b := bytes.Repeat([]byte{'x'}, 32-len(tail))
		return append(b, tail...)
	}
	tests := []struct {
		name, key, data, iv, reason string
		kind                        error
	}{
		{"bad base64 key", "!!!!", b64(16), testIV, "session_key is not base64", ErrBadKey},
		{"short key", b64(8), b64(16), testIV, "session_key is not 16 bytes", ErrBadKey},
		{"long key", b64(24), b64(16), testIV, "session_key is not 16 bytes", ErrBadKey},
		{"empty key", "", b64(16), testIV, "session_key is not 16 bytes", ErrBadKey},
		{"bad base64 iv", testKey, b64(16), "%%%%", "iv is not base64", ErrBadIV},
		{"short iv", testKey, b64(16), b64(8), "iv is not 16 bytes", ErrBadIV},
		{"long iv", testKey, b64(16), b64(32), "iv is not 16 bytes", ErrBadIV},
		{"empty iv", testKey, b64(16), "", "iv is not 16 bytes", ErrBadIV},
		{"bad base64 data", testKey, "a*bc", testIV, "encryptedData is not base64", ErrBadData},
		{"empty data", testKey, "", testIV, "not a whole number of blocks", ErrBadData},
		{"not a multiple of 16", testKey, b64(17), testIV, "not a whole number of blocks", ErrBadData},
		{"pad 0", testKey, rawCBC(block(0)), testIV, "bad padding", ErrBadPadding},
		{"pad 17", testKey, rawCBC(block(17)), testIV, "bad padding", ErrBadPadding},
		{"pad 255", testKey, rawCBC(block(255)), testIV, "bad padding", ErrBadPadding},
		{"inconsistent pad", testKey, rawCBC(block(3, 2, 3)), testIV, "bad padding", ErrBadPadding},
		{"pad 16 with one wrong byte", testKey, rawCBC(block(append([]byte{15}, bytes.Repeat([]byte{16}, 15)...)...)), testIV, "bad padding", ErrBadPadding},
		{"pad longer than data", testKey, rawCBC(bytes.Repeat([]byte{0x20}, 32)), testIV, "bad padding", ErrBadPadding},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plain, err := Decrypt(tt.key, tt.data, tt.iv)
			if !errors.Is(err, ErrDecrypt) || plain != nil {
				t.Fatalf("got %q, %v; want ErrDecrypt", plain, err)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("err = %q, want reason %q", err, tt.reason)
			}
			checkKind(t, err, tt.kind)
		})
	}
}

// decryptKinds are the kinds of decrypt errors: each error wraps exactly one.
var decryptKinds = []error{ErrBadKey, ErrBadIV, ErrBadData, ErrBadPadding, ErrNotJSON, ErrWatermark}

// checkKind fails unless err wraps ErrDecrypt and exactly one kind, want
// (any one when want is nil).
func checkKind(t testing.TB, err, want error) {
	t.Helper()
	n := 0
	for _, k := range decryptKinds {
		if errors.Is(err, k) {
			n++
		}
	}
	if !errors.Is(err, ErrDecrypt) || n != 1 || want != nil && !errors.Is(err, want) {
		t.Fatalf("error %q wraps %d kinds, want ErrDecrypt and just %v", err, n, want)
	}
}

func TestDecryptGoodPaddings(t *testing.T) {
	for p := 1; p <= 16; p++ {
		plain := append(bytes.Repeat([]byte{'y'}, 32-p), bytes.Repeat([]byte{byte(p)}, p)...)
		got, err := Decrypt(testKey, rawCBC(plain), testIV)
		if err != nil || len(got) != 32-p {
			t.Errorf("pad %d: got %d bytes, %v", p, len(got), err)
		}
	}
}

func TestDecryptUserDataErrors(t *testing.T) {
	const appID = "wxtest0000000001"
	tests := []struct {
		name, plain, reason string
		kind                error
	}{
		{"not JSON", "hello, world", "not a JSON object", ErrNotJSON},
		{"JSON array", `[{"watermark":{"appid":"wxtest0000000001"}}]`, "not a JSON object", ErrNotJSON},
		{"JSON string", `"x"`, "not a JSON object", ErrNotJSON},
		{"truncated JSON", `{"watermark":{"appid":"wxtest0000000001"}`, "not a JSON object", ErrNotJSON},
		{"missing watermark", `{"openId":"o1"}`, "missing watermark", ErrWatermark},
		{"null watermark", `{"watermark":null}`, "missing watermark", ErrWatermark},
		{"watermark not an object", `{"watermark":"wxtest0000000001"}`, "missing watermark", ErrWatermark},
		{"watermark mismatch", `{"watermark":{"appid":"wxother"}}`, "watermark appid mismatch", ErrWatermark},
		{"watermark without appid", `{"watermark":{"timestamp":1}}`, "watermark appid mismatch", ErrWatermark},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, iv, err := Encrypt(testKey, []byte(tt.plain))
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecryptUserData(appID, testKey, data, iv)
			if !errors.Is(err, ErrDecrypt) || got != nil {
				t.Fatalf("got %s, %v; want ErrDecrypt", got, err)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("err = %q, want reason %q", err, tt.reason)
			}
			checkKind(t, err, tt.kind)
		})
	}
	good := `{"phoneNumber":"1","watermark":{"appid":"wxtest0000000001","timestamp":1}}`
	data, iv, _ := Encrypt(testKey, []byte(good))
	if got, err := DecryptUserData(appID, testKey, data, iv); err != nil || string(got) != good {
		t.Fatalf("good data: %s, %v", got, err)
	}
}

func TestEncryptRoundTrip(t *testing.T) {
	for n := 0; n <= 48; n++ {
		plain := bytes.Repeat([]byte{byte(n)}, n)
		data, iv, err := Encrypt(testKey, plain)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := base64.StdEncoding.DecodeString(data)
		if len(raw) != (n/16+1)*16 {
			t.Fatalf("n=%d: ciphertext %d bytes", n, len(raw))
		}
		got, err := Decrypt(testKey, data, iv)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("n=%d: got %v, %v", n, got, err)
		}
	}
	_, iv1, _ := Encrypt(testKey, []byte("x"))
	_, iv2, _ := Encrypt(testKey, []byte("x"))
	if iv1 == iv2 {
		t.Fatal("iv is not random")
	}
	for _, key := range []string{"", "short", base64.StdEncoding.EncodeToString(make([]byte, 32))} {
		if _, _, err := Encrypt(key, []byte("x")); err == nil {
			t.Errorf("Encrypt with key %q: no error", key)
		}
	}
}

// checkPadding independently decrypts and reports whether the plaintext
// had valid PKCS#7 padding and Decrypt's result is its unpadded prefix.
func checkPadding(t *testing.T, key, data, iv string, got []byte) {
	t.Helper()
	k, err1 := DecodeBase64(key)
	c, err2 := DecodeBase64(data)
	i, err3 := DecodeBase64(iv)
	if err1 != nil || err2 != nil || err3 != nil || len(k) != 16 || len(i) != 16 || len(c) == 0 || len(c)%16 != 0 {
		t.Fatalf("success on invalid input (key %d, iv %d, data %d bytes)", len(k), len(i), len(c))
	}
	block, _ := aes.NewCipher(k)
	cipher.NewCBCDecrypter(block, i).CryptBlocks(c, c)
	p := int(c[len(c)-1])
	if p < 1 || p > 16 {
		t.Fatalf("success with pad byte %d", p)
	}
	for _, b := range c[len(c)-p:] {
		if int(b) != p {
			t.Fatalf("success with inconsistent padding % x", c[len(c)-16:])
		}
	}
	if !bytes.Equal(got, c[:len(c)-p]) {
		t.Fatal("result is not the unpadded plaintext")
	}
}

func FuzzDecrypt(f *testing.F) {
	v := loadVectors(f)
	f.Add(v.AES.SessionKey, v.AES.EncryptedData, v.AES.IV)
	f.Add(v.Negative.SessionKey, v.Negative.EncryptedData, v.Negative.IV)
	f.Add(testKey, rawCBC(bytes.Repeat([]byte{16}, 16)), testIV)
	f.Add("", "", "")
	f.Fuzz(func(t *testing.T, key, data, iv string) {
		got, err := Decrypt(key, data, iv)
		if err != nil {
			if !errors.Is(err, ErrDecrypt) || got != nil {
				t.Fatalf("error %v with %d bytes", err, len(got))
			}
			checkKind(t, err, nil)
			return
		}
		checkPadding(t, key, data, iv, got)
	})
}

func FuzzDecryptUserData(f *testing.F) {
	v := loadVectors(f)
	f.Add(v.AES.AppID, v.AES.SessionKey, v.AES.EncryptedData, v.AES.IV)
	f.Add("wx0000000000000000", v.AES.SessionKey, v.AES.EncryptedData, v.AES.IV)
	f.Add(v.AES.AppID, v.Negative.SessionKey, v.Negative.EncryptedData, v.Negative.IV)
	f.Fuzz(func(t *testing.T, appID, key, data, iv string) {
		got, err := DecryptUserData(appID, key, data, iv)
		if err != nil {
			if !errors.Is(err, ErrDecrypt) || got != nil {
				t.Fatalf("error %v with %d bytes", err, len(got))
			}
			checkKind(t, err, nil)
			return
		}
		checkPadding(t, key, data, iv, got)
		var w struct {
			Watermark struct {
				AppID string `json:"appid"`
			} `json:"watermark"`
		}
		if !isObject(got) || json.Unmarshal(got, &w) != nil || appID == "" || w.Watermark.AppID != appID {
			t.Fatalf("accepted %q for appid %q", got, appID)
		}
	})
}
