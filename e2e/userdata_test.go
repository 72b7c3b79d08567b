package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
)

// vectors are WeChat's official test vectors (a copy lives with the wechat package).
func vectors(t *testing.T) map[string]map[string]any {
	t.Helper()
	b, err := os.ReadFile(repoPath("wechat", "testdata", "wechat_vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestDecryptOfficialSample(t *testing.T) {
	v := vectors(t)["userinfo_official_aes_sample"]
	appID := v["appId"].(string)
	h := startConfig(t, configFor(appID, ""))
	tok := h.login("band", "&session_key="+url.QueryEscape(v["sessionKey"].(string))).str("token")
	r := h.postJSON(appURL+"/wx/decrypt", map[string]any{"encryptedData": v["encryptedData"], "iv": v["iv"]}, bearer(tok)...)
	if r.status != 200 {
		t.Fatalf("decrypt: %d %s", r.status, r.body)
	}
	var want map[string]any
	_ = json.Unmarshal([]byte(v["expectedPlaintext"].(string)), &want)
	if r.str("openId") != want["openId"] || r.str("unionId") != want["unionId"] || r.str("nickName") != "Band" {
		t.Fatalf("decrypted %s", r.body)
	}
	// The same sample in another app is a foreign watermark.
	h = start(t, "")
	tok = h.login("band", "&session_key="+url.QueryEscape(v["sessionKey"].(string))).str("token")
	r = h.postJSON(appURL+"/wx/decrypt", map[string]any{"encryptedData": v["encryptedData"], "iv": v["iv"]}, bearer(tok)...)
	expectError(t, r, 400, "decrypt_failed")
}

func TestDecryptErrors(t *testing.T) {
	h := start(t, "")
	tok := h.token("henry")
	data := h.mock(http.MethodGet, "/wxmock/userinfo?user=henry")
	body := func(mod func(m map[string]any)) map[string]any {
		m := map[string]any{"encryptedData": data.str("encryptedData"), "iv": data.str("iv"),
			"rawData": data.str("rawData"), "signature": data.str("signature")}
		mod(m)
		return m
	}
	dec := appURL + "/wx/decrypt"
	ok := h.postJSON(dec, body(func(map[string]any) {}), bearer(tok)...)
	if ok.status != 200 || ok.str("openId") == "" || ok.str("nickName") == "" {
		t.Fatalf("decrypt: %d %s", ok.status, ok.body)
	}
	if h.postJSON(dec, body(func(m map[string]any) { delete(m, "rawData"); delete(m, "signature") }), bearer(tok)...).status != 200 {
		t.Fatal("decrypt without rawData refused")
	}
	cases := []struct {
		name   string
		mod    func(m map[string]any)
		status int
		err    string
	}{
		{"short iv", func(m map[string]any) { m["iv"] = "AAAA" }, 400, "decrypt_failed"},
		{"wrong iv", func(m map[string]any) { m["iv"] = "r7BXXKkLb8qrSNn05n0qiA==" }, 400, "decrypt_failed"},
		{"bad base64", func(m map[string]any) { m["encryptedData"] = "%%%" }, 400, "decrypt_failed"},
		{"truncated", func(m map[string]any) { m["encryptedData"] = m["encryptedData"].(string)[:22] }, 400, "decrypt_failed"},
		{"bad signature", func(m map[string]any) { m["signature"] = strings.Repeat("0", 40) }, 400, "invalid_signature"},
		{"changed rawData", func(m map[string]any) { m["rawData"] = `{"nickName":"x"}` }, 400, "invalid_signature"},
		{"signature alone", func(m map[string]any) { delete(m, "rawData") }, 400, "invalid_request"},
		{"missing iv", func(m map[string]any) { delete(m, "iv") }, 400, "invalid_request"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			expectError(t, h.postJSON(dec, body(c.mod), bearer(tok)...), c.status, c.err)
		})
	}
	foreign := h.mock(http.MethodGet, "/wxmock/userinfo?user=henry&appid=wxother")
	expectError(t, h.postJSON(dec, map[string]any{"encryptedData": foreign.str("encryptedData"), "iv": foreign.str("iv")}, bearer(tok)...), 400, "decrypt_failed")
	expectError(t, h.do(http.MethodPost, dec, strings.NewReader("nope"), append(bearer(tok), "Content-Type", "application/json")...), 400, "invalid_request")
	expectError(t, h.postJSON(dec, body(func(map[string]any) {})), 401, "missing_token")
	expectError(t, h.do(http.MethodGet, dec, nil, bearer(tok)...), 405, "method_not_allowed")
}

func TestDecryptUsesNewestSessionKey(t *testing.T) {
	h := start(t, "")
	older := h.token("ivy")
	h.login("ivy") // a second wx.login replaces the session_key at WeChat
	data := h.mock(http.MethodGet, "/wxmock/userinfo?user=ivy")
	r := h.postJSON(appURL+"/wx/decrypt", map[string]any{"encryptedData": data.str("encryptedData"), "iv": data.str("iv"),
		"rawData": data.str("rawData"), "signature": data.str("signature")}, bearer(older)...)
	if r.status != 200 {
		t.Fatalf("older session could not decrypt data made after a newer login: %d %s", r.status, r.body)
	}
}

func TestPhoneNumber(t *testing.T) {
	// An app of its own, so no access_token is kept from other tests; a
	// phone_limit above the calls made here.
	const app = "wxphone000000001"
	h := startConfig(t, configFor(app, "phone_limit 20 10m"))
	tok := h.token("jack")
	phone := appURL + "/wx/phone"
	for i := 0; i < 5; i++ {
		cc := ""
		if i%2 == 1 {
			cc = "&cc=num"
		}
		code := h.mock(http.MethodGet, "/wxmock/phonecode?user=jack&phone=1380013800"+string(rune('0'+i))+cc).str("code")
		r := h.postJSON(phone, map[string]string{"code": code}, bearer(tok)...)
		if r.status != 200 || r.str("purePhoneNumber") != "1380013800"+string(rune('0'+i)) || r.json["countryCode"] == nil {
			t.Fatalf("phone %d: %d %s", i, r.status, r.body)
		}
	}
	if n := h.stats("stable_token"); n != 1 {
		t.Fatalf("five phone calls fetched %d access_tokens, want 1", n)
	}
	// An expired access_token is refreshed once and the call retried.
	h.mock(http.MethodPost, "/wxmock/expire_tokens")
	code := h.mock(http.MethodGet, "/wxmock/phonecode?user=jack").str("code")
	if r := h.postJSON(phone, map[string]string{"code": code}, bearer(tok)...); r.status != 200 {
		t.Fatalf("phone after expiry: %d %s", r.status, r.body)
	}
	if n := h.stats("stable_token"); n != 2 {
		t.Fatalf("stable_token calls after expiry = %d, want 2", n)
	}
	if n := h.stats("getuserphonenumber"); n != 7 {
		t.Fatalf("getuserphonenumber calls = %d, want 7 (5 + refused + retried)", n)
	}
	// A used or unknown code is WeChat's 40029.
	r := h.postJSON(phone, map[string]string{"code": code}, bearer(tok)...)
	expectError(t, r, 401, "invalid_code")
	if r.json["errcode"] != float64(40029) {
		t.Fatalf("errcode %v", r.json["errcode"])
	}
	expectError(t, h.postJSON(phone, map[string]string{}, bearer(tok)...), 400, "invalid_request")
	expectError(t, h.postJSON(phone, map[string]string{"code": "x"}), 401, "missing_token")

	// Concurrent calls share one access_token too.
	h.mock(http.MethodPost, "/wxmock/reset")
	h2 := startConfig(t, configFor(app, "phone_limit 20 10m")) // a reload
	var wg sync.WaitGroup
	codes := make([]string, 8)
	for i := range codes {
		codes[i] = h2.mock(http.MethodGet, "/wxmock/phonecode?user=jack").str("code")
	}
	for _, c := range codes {
		wg.Add(1)
		go func(c string) {
			defer wg.Done()
			b, _ := json.Marshal(map[string]string{"code": c})
			req, _ := http.NewRequest(http.MethodPost, phone, strings.NewReader(string(b)))
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("concurrent phone: %d", resp.StatusCode)
			}
		}(c)
	}
	wg.Wait()
	if n := h2.stats("stable_token"); n > 1 {
		t.Fatalf("concurrent phone calls fetched %d access_tokens", n)
	}
}

func TestSessionEndpoint(t *testing.T) {
	h := start(t, "")
	login := h.login("kate")
	tok := login.str("token")
	r := h.do(http.MethodGet, appURL+"/wx/session", nil, bearer(tok)...)
	if r.status != 200 || r.str("openid") != login.str("openid") || r.json["session_key_valid"] != true || r.json["expires_at"] == nil {
		t.Fatalf("session: %d %s", r.status, r.body)
	}
	if strings.Contains(string(r.body), "session_key\"") {
		t.Fatalf("session endpoint leaks the key: %s", r.body)
	}
	// A newer login through wxauth keeps the stored key the newest one.
	h.login("kate")
	if r := h.do(http.MethodGet, appURL+"/wx/session", nil, bearer(tok)...); r.json["session_key_valid"] != true {
		t.Fatalf("after a newer login: %s", r.body)
	}
	// A code exchanged elsewhere replaces the key at WeChat: ours is stale now,
	// which a session that has not asked within the minute is told (one that
	// has keeps WeChat's answer for 60 s).
	tok = h.token("kate")
	q := url.Values{"appid": {testApp}, "secret": {"test-secret"}, "js_code": {h.code("kate")}, "grant_type": {"authorization_code"}}
	if r := h.do(http.MethodGet, mockURL+"/sns/jscode2session?"+q.Encode(), nil); r.str("openid") == "" {
		t.Fatalf("direct code2Session: %s", r.body)
	}
	if r := h.do(http.MethodGet, appURL+"/wx/session", nil, bearer(tok)...); r.status != 200 || r.json["session_key_valid"] != false {
		t.Fatalf("stale session_key reported valid: %d %s", r.status, r.body)
	}
	r = h.do(http.MethodPost, appURL+"/wx/session", nil, bearer(tok)...)
	expectError(t, r, 405, "method_not_allowed")
	if r.header.Get("Allow") != "GET, HEAD" {
		t.Fatalf("Allow = %q", r.header.Get("Allow"))
	}
}
