package wxmock

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// decrypt is a strict AES-128-CBC PKCS#7 decryption, written apart from the
// mock's encrypt so that the test checks it.
func decrypt(sessionKey, encryptedData, iv string) ([]byte, bool) {
	key, err1 := base64.StdEncoding.DecodeString(sessionKey)
	data, err2 := base64.StdEncoding.DecodeString(encryptedData)
	ivb, err3 := base64.StdEncoding.DecodeString(iv)
	if err1 != nil || err2 != nil || err3 != nil || len(ivb) != aes.BlockSize ||
		len(data) == 0 || len(data)%aes.BlockSize != 0 {
		return nil, false
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, false
	}
	cipher.NewCBCDecrypter(block, ivb).CryptBlocks(data, data)
	pad := int(data[len(data)-1])
	if pad < 1 || pad > aes.BlockSize {
		return nil, false
	}
	for _, b := range data[len(data)-pad:] {
		if int(b) != pad {
			return nil, false
		}
	}
	return data[:len(data)-pad], true
}

func TestUserInfo(t *testing.T) {
	h := newHandler(t, "wxuser", testSecret)
	if rec := serve(t, h, "GET", "/wxmock/userinfo?user=alice", ""); rec.Code != http.StatusNotFound ||
		!strings.Contains(rec.Body.String(), `"error"`) {
		t.Fatalf("user who never logged in: %d %s", rec.Code, rec.Body)
	}
	old := exchange(t, h, login(t, h, "user=alice"))["session_key"].(string)
	cur := exchange(t, h, login(t, h, "user=alice"))["session_key"].(string)

	rec := serve(t, h, "GET", "/wxmock/userinfo?user=alice", "")
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q", ct)
	}
	m := object(t, rec)
	enc, iv := m["encryptedData"].(string), m["iv"].(string)
	if _, ok := decrypt(old, enc, iv); ok {
		t.Error("user data decrypts with the replaced session_key")
	}
	plain, ok := decrypt(cur, enc, iv)
	if !ok {
		t.Fatal("user data does not decrypt with the current session_key")
	}
	var info map[string]any
	if err := json.Unmarshal(plain, &info); err != nil {
		t.Fatalf("plaintext is not JSON: %v", err)
	}
	wm, _ := info["watermark"].(map[string]any)
	if info["openId"] != openID("wxuser", "alice") || info["unionId"] != unionID("alice") ||
		info["nickName"] != "alice" || wm["appid"] != "wxuser" || wm["timestamp"] == nil {
		t.Errorf("plaintext: %s", plain)
	}

	raw := m["rawData"].(string)
	var rawObj map[string]any
	if err := json.Unmarshal([]byte(raw), &rawObj); err != nil {
		t.Fatalf("rawData is not JSON: %v", err)
	}
	for _, k := range []string{"openId", "unionId", "watermark"} {
		if _, ok := rawObj[k]; ok {
			t.Errorf("rawData carries %s", k)
		}
	}
	for k, v := range rawObj {
		if info[k] != v {
			t.Errorf("rawData %s = %v, encrypted data has %v", k, v, info[k])
		}
	}
	if m["signature"] != rawDataSignature(raw, cur) || len(m["signature"].(string)) != 40 {
		t.Errorf("signature %v does not match rawData and the current session_key", m["signature"])
	}

	// appid sets a foreign watermark; unionid=0 logins carry no unionId.
	exchange(t, h, login(t, h, "user=bob&unionid=0"))
	bobKey, _ := h.state.userByName("bob")
	m = object(t, serve(t, h, "GET", "/wxmock/userinfo?user=bob&appid=wxforeign", ""))
	plain, ok = decrypt(bobKey.sessionKey, m["encryptedData"].(string), m["iv"].(string))
	if !ok {
		t.Fatal("bob's data does not decrypt")
	}
	info = nil
	_ = json.Unmarshal(plain, &info)
	if info["watermark"].(map[string]any)["appid"] != "wxforeign" {
		t.Errorf("watermark: %s", plain)
	}
	if _, ok := info["unionId"]; ok {
		t.Errorf("unionId present for a unionid=0 login: %s", plain)
	}
}

func TestDevEndpointErrors(t *testing.T) {
	h := newHandler(t, "wxdev", "")
	tests := []struct {
		method, target string
		status         int
		allow          string
	}{
		{"GET", "/wxmock/reset", http.StatusMethodNotAllowed, "POST"},
		{"GET", "/wxmock/expire_tokens", http.StatusMethodNotAllowed, "POST"},
		{"POST", "/wxmock/stats", http.StatusMethodNotAllowed, "GET"},
		{"DELETE", "/wxmock/login", http.StatusMethodNotAllowed, "GET, POST"},
		{"GET", "/wxmock/login?session_key=" + url.QueryEscape("c2hvcnQ="), http.StatusBadRequest, ""},
		{"GET", "/wxmock/login?session_key=not-base64", http.StatusBadRequest, ""},
	}
	for _, tt := range tests {
		rec := serve(t, h, tt.method, tt.target, "")
		if rec.Code != tt.status || rec.Header().Get("Allow") != tt.allow ||
			!strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
			t.Errorf("%s %s: %d Allow=%q %s", tt.method, tt.target, rec.Code, rec.Header().Get("Allow"), rec.Body)
		}
	}
	// POST form works for login.
	rec := serve(t, h, "POST", "/wxmock/login", "")
	if rec.Code != http.StatusOK {
		t.Errorf("POST /wxmock/login: %d", rec.Code)
	}
}
