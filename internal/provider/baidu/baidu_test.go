package baidu

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/wxauth/caddy-wxauth/internal/apierr"
	"github.com/wxauth/caddy-wxauth/internal/login"
)

// Baidu's published decryption sample (smart program docs, 用户数据的签名验证和
// 加解密, "解密示例代码"): with this AppKey and session_key, the ciphertext
// decrypts to the plaintext below. Its iv is the key's first 16 bytes.
const (
	docAppKey     = "y2dTfnWfkx2OXttMEMWlGHoB1KzMogm7"
	docSessionKey = "1df09d0a1677dd72b8325aec59576e0c"
	docIV         = "1df09d0a1677dd72b8325Q=="
	docCiphertext = "OpCoJgs7RrVgaMNDixIvaCIyV2SFDBNLivgkVqtzq2GC10egsn+PKmQ/+5q+chT8xzldLUog2haTItyIkKyvzvmXonBQLIMeq54axAu9c3KG8IhpFD6+ymHocmx07ZKi7eED3t0KyIxJgRNSDkFk5RV1ZP2mSWa7ZgCXXcAbP0RsiUcvhcJfrSwlpsm0E1YJzKpYy429xrEEGvK+gfL+Cw=="
	docPlaintext  = `{"openid":"open_id","nickname":"baidu_user","headimgurl":"url of image","sex":1}`
)

// A phone number sealed by an independent encryptor (the openssl command
// line, aes-192-cbc -nopad): 16 bytes of 0x42, the length, {"mobile":...}
// and the AppKey, padded with 20 bytes of 20.
const (
	sslKey        = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcY"
	sslIV         = "ZGVmZ2hpamtsbW5vcHFycw=="
	sslCiphertext = "iaJOgTLMAQDXfFw4U+dz3anvTHWSa/XtckUJ7vEN+8c67YmCDJ0x/GprFKY5d4hHrWZLEi41LOI5jr/juQeFxyvjuE8QiuD0c4BaMox2wr+lruk9xgcgrDi2apgFWCUP"
)

func provider(t *testing.T, appKey, base string) (*Provider, *[]string) {
	t.Helper()
	var counted []string
	p, err := New(login.PlatformConfig{AppID: appKey, AppSecret: "baidu-sk-value", APIBase: base,
		ConfigError: func(code string) { counted = append(counted, code) }})
	if err != nil {
		t.Fatal(err)
	}
	return p, &counted
}

func failed(t *testing.T, err error, say string) {
	t.Helper()
	var e *apierr.Error
	if !errors.As(err, &e) || e.Status != 400 || e.Code != "decrypt_failed" || !strings.Contains(e.Message, say) {
		t.Fatalf("got %v, want decrypt_failed saying %q", err, say)
	}
}

func TestBaiduPublishedSample(t *testing.T) {
	p, _ := provider(t, docAppKey, "")
	got, err := p.DecryptUserData(docSessionKey, login.Encrypted{Data: docCiphertext, IV: docIV})
	if err != nil || string(got) != docPlaintext {
		t.Fatalf("%s %v", got, err)
	}
	// Another iv changes only the 16 random leading bytes: it cannot be
	// told from the right one.
	got, err = p.DecryptUserData(docSessionKey, login.Encrypted{Data: docCiphertext, IV: "AAAAAAAAAAAAAAAAAAAAAA=="})
	if err != nil || string(got) != docPlaintext {
		t.Fatalf("another iv: %s %v", got, err)
	}
}

func TestBaiduRefusesWhatItCannotTrust(t *testing.T) {
	p, _ := provider(t, docAppKey, "")
	in := login.Encrypted{Data: docCiphertext, IV: docIV}

	// Another 24-byte key garbles everything: padding, length or AppKey.
	_, err := p.DecryptUserData(sslKey, in)
	failed(t, err, "newest session key")

	// Another app's data: everything holds but the AppKey.
	other, _ := provider(t, "another-app-key-of-32-characters", "")
	_, err = other.DecryptUserData(docSessionKey, in)
	failed(t, err, "another smart program")

	// Damage to the first ciphertext block flips the length field.
	buf, _ := base64.StdEncoding.DecodeString(docCiphertext)
	buf[1] ^= 0x01
	_, err = p.DecryptUserData(docSessionKey, login.Encrypted{Data: base64.StdEncoding.EncodeToString(buf), IV: docIV})
	failed(t, err, "newest session key")

	// A block short: the padding is gone.
	buf, _ = base64.StdEncoding.DecodeString(docCiphertext)
	_, err = p.DecryptUserData(docSessionKey, login.Encrypted{Data: base64.StdEncoding.EncodeToString(buf[:len(buf)-16]), IV: docIV})
	failed(t, err, "newest session key")

	_, err = p.DecryptUserData("tiihtNczf5v6AKRyjwEUhQ==", in) // a 16-byte key: WeChat's kind
	failed(t, err, "session key is not usable")
	_, err = p.DecryptUserData(docSessionKey, login.Encrypted{Data: docCiphertext, IV: "AAAA"})
	failed(t, err, `"iv"`)
	_, err = p.DecryptUserData(docSessionKey, login.Encrypted{Data: "AAAA", IV: docIV})
	failed(t, err, `"encryptedData"`)
	_, err = p.DecryptUserData(docSessionKey, login.Encrypted{Data: "not base64!", IV: docIV})
	failed(t, err, `"encryptedData"`)

	in.RawData, in.Signature = "{}", "0000000000000000000000000000000000000000"
	if _, err := p.DecryptUserData(docSessionKey, in); apierr.As(err).Code != "invalid_signature" {
		t.Fatalf("bad signature: %v", err)
	}
}

func TestBaiduPhone(t *testing.T) {
	p, _ := provider(t, docAppKey, "")
	got, err := p.PhoneFromEncrypted(sslKey, login.Encrypted{Data: sslCiphertext, IV: sslIV})
	if err != nil || string(got) != `{"phone_number":"15000000000","pure_phone_number":"15000000000","country_code":"86"}` {
		t.Fatalf("%s %v", got, err)
	}
	_, err = p.PhoneFromEncrypted(docSessionKey, login.Encrypted{Data: docCiphertext, IV: docIV})
	failed(t, err, "no phone number")
}

func serve(t *testing.T, status int, body string) (*Provider, *[]string) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/oauth/jscode2sessionkey" || r.URL.RawQuery != "" ||
			r.PostFormValue("code") != "the-code" || r.PostFormValue("client_id") != docAppKey || r.PostFormValue("sk") != "baidu-sk-value" {
			t.Errorf("request %s %s %v", r.Method, r.URL, r.PostForm)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return provider(t, docAppKey, srv.URL)
}

func TestExchange(t *testing.T) {
	p, _ := serve(t, 200, `{"openid":"l214zFqNrEuIEnp6m7Y01sw8yj","session_key":"981ce8b151c0599acf7ad1a673c6ff5e"}`)
	id, err := p.Exchange(context.Background(), zap.NewNop(), login.Code{Code: "the-code"})
	if err != nil {
		t.Fatal(err)
	}
	if id.Platform != "baidu" || id.Surface != "mp" || id.AppID != docAppKey || id.OpenID != "l214zFqNrEuIEnp6m7Y01sw8yj" ||
		id.UnionID != "" || id.SessionKey != "981ce8b151c0599acf7ad1a673c6ff5e" {
		t.Fatalf("identity %+v", id)
	}
	if _, err := p.Exchange(context.Background(), zap.NewNop(), login.Code{}); apierr.As(err).Code != "invalid_request" {
		t.Fatalf("no code: %v", err)
	}
}

func TestExchangeErrors(t *testing.T) {
	cases := []struct {
		status  int
		body    string
		want    string
		errcode any
		config  bool
	}{
		// Baidu's documented example of a refusal.
		{200, `{"errno":10010100,"error":"parameter is invalid","error_description":"Key: 'Code2SessionKeyParam.ClientID' Error:Field validation for 'ClientID' failed on the 'required' tag"}`, "platform_config", 10010100, true},
		{200, `{"errno":10010100,"error":"parameter is invalid","error_description":"Key: 'Code2SessionKeyParam.Sk' Error:Field validation for 'Sk' failed on the 'required' tag"}`, "platform_config", 10010100, true},
		{200, `{"errno":10010100,"error":"parameter is invalid","error_description":"Key: 'Code2SessionKeyParam.Code' Error:Field validation for 'Code' failed on the 'required' tag"}`, "invalid_code", 10010100, false},
		// Baidu OAuth's refusals, which carry no errno: the error text is the code.
		{400, `{"error":"invalid_grant","error_description":"Invalid authorization code: the-code"}`, "invalid_code", "invalid_grant", false},
		{400, `{"error":"invalid_client","error_description":"unknown client id"}`, "platform_config", "invalid_client", true},
		{401, `{"error":"unauthorized_client","error_description":"The client is not authorized"}`, "platform_config", "unauthorized_client", true},
		{200, `{"errno":5010003,"error":"访问量超过接口最大 QPS"}`, "rate_limited", 5010003, false},
		{200, `{"errno":4010001,"error":"系统异常"}`, "upstream_error", 4010001, false},
		{400, `{"error":"invalid_request","error_description":"?"}`, "upstream_error", "invalid_request", false},
		{200, `{"openid":"o"}`, "upstream_error", nil, false},
		{500, `{"errno":1}`, "upstream_error", nil, false},
	}
	for _, c := range cases {
		p, counted := serve(t, c.status, c.body)
		_, err := p.Exchange(context.Background(), zap.NewNop(), login.Code{Code: "the-code"})
		var e *apierr.Error
		if !errors.As(err, &e) || e.Code != c.want || e.ErrCode != c.errcode {
			t.Errorf("%s: got %v (errcode %v), want %s %v", c.body, err, errcode(e), c.want, c.errcode)
			continue
		}
		if c.config != (len(*counted) == 1) || c.config && (e.Platform != "baidu" || !strings.Contains(e.Message, "baidu block")) {
			t.Errorf("%s: counted %v, platform %q, message %q", c.body, *counted, e.Platform, e.Message)
		}
		if strings.Contains(e.Message, "the-code") || strings.Contains(e.Message, "baidu-sk-value") {
			t.Errorf("%s: the message names the code or the secret", c.body)
		}
	}
}

func errcode(e *apierr.Error) any {
	if e == nil {
		return nil
	}
	return e.ErrCode
}
