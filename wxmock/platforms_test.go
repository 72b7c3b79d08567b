package wxmock

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

const platformSecret = "platform-secret"

// newPlatformHandler provisions a handler whose platform blocks name
// per-test app ids (hence their own state): <platform>-<test name>.
func newPlatformHandler(t *testing.T, anyCode string) *Handler {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	h := &Handler{AppID: "wx" + t.Name(), AnyCode: anyCode, Platforms: map[string]*Platform{}}
	for _, p := range []string{"qq", "douyin", "baidu", "kuaishou"} {
		h.Platforms[p] = &Platform{AppID: appIDOf(t, p), AppSecret: platformSecret}
	}
	if err := h.Provision(ctx); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	if err := h.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	t.Cleanup(func() {
		if err := h.Cleanup(); err != nil {
			t.Errorf("Cleanup: %v", err)
		}
	})
	return h
}

func appIDOf(t *testing.T, platform string) string { return platform + "-" + t.Name() }

// platformLogin sends platform's login call as wxauth's provider sends it.
func platformLogin(t *testing.T, h *Handler, platform, appID, secret, code, anonCode string) *httptest.ResponseRecorder {
	t.Helper()
	var req *http.Request
	switch platform {
	case "qq":
		q := url.Values{"appid": {appID}, "secret": {secret}, "js_code": {code}, "grant_type": {"authorization_code"}}
		req = httptest.NewRequest(http.MethodGet, "/qq/sns/jscode2session?"+q.Encode(), nil)
	case "douyin":
		body, _ := json.Marshal(map[string]string{"appid": appID, "secret": secret, "code": code, "anonymous_code": anonCode})
		req = httptest.NewRequest(http.MethodPost, "/douyin/api/apps/v2/jscode2session", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
	case "baidu":
		f := url.Values{"client_id": {appID}, "sk": {secret}, "code": {code}}
		req = httptest.NewRequest(http.MethodPost, "/baidu/oauth/jscode2sessionkey", strings.NewReader(f.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	case "kuaishou":
		f := url.Values{"app_id": {appID}, "app_secret": {secret}, "js_code": {code}}
		req = httptest.NewRequest(http.MethodPost, "/kuaishou/oauth2/mp/code2session", strings.NewReader(f.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	rec := httptest.NewRecorder()
	if err := h.ServeHTTP(rec, req, next); err != nil {
		t.Fatalf("%s login: %v", platform, err)
	}
	return rec
}

// answer decodes a JSON object answer of any status.
func answer(t *testing.T, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(strings.NewReader(rec.Body.String()))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("answer %d %q is not a JSON object: %v", rec.Code, rec.Body, err)
	}
	return m
}

// outcome is what a platform's answer says, in one word: "ok", or the
// platform's code (QQ's errcode, Douyin's err_no, Baidu's errno or error,
// Kuaishou's result), with the HTTP status when it is not 200.
func outcome(t *testing.T, platform string, rec *httptest.ResponseRecorder) string {
	t.Helper()
	m := answer(t, rec)
	s := ""
	switch platform {
	case "qq":
		if m["errcode"] != nil {
			s = fmt.Sprint(m["errcode"])
		}
	case "douyin":
		if fmt.Sprint(m["err_no"]) != "0" {
			s = fmt.Sprint(m["err_no"])
		}
	case "baidu":
		switch {
		case m["errno"] != nil:
			s = fmt.Sprint(m["errno"])
		case m["error"] != nil:
			s = fmt.Sprint(m["error"])
		}
	case "kuaishou":
		if fmt.Sprint(m["result"]) != "1" {
			s = fmt.Sprint(m["result"])
		}
	}
	if s == "" {
		s = "ok"
	}
	if rec.Code != http.StatusOK {
		s = fmt.Sprintf("%d %s", rec.Code, s)
	}
	return s
}

// devCode gets a login code from /<platform>/wxmock/login.
func devCode(t *testing.T, h *Handler, platform, query string) string {
	t.Helper()
	m := object(t, serve(t, h, "GET", "/"+platform+"/wxmock/login?"+query, ""))
	if c, _ := m["code"].(string); c != "" {
		return c
	}
	return m["anonymous_code"].(string)
}

func TestPlatformLoginAnswers(t *testing.T) {
	// The platform's code for: a login, a used code, invalid, busy, limit,
	// a wrong secret, a wrong app id, no code.
	want := map[string][8]string{
		"qq":       {"ok", "40029", "40029", "-1", "45011", "40125", "40013", "41008"},
		"douyin":   {"ok", "40018", "40018", "-1", "28003018", "40017", "40015", "40014"},
		"baidu":    {"ok", "400 invalid_grant", "400 invalid_grant", "5010004", "5010003", "400 invalid_client", "400 invalid_client", "10010100"},
		"kuaishou": {"ok", "100200105", "100200105", "100200500", "100200105", "100200101", "100200101", "100200100"},
	}
	h := newPlatformHandler(t, "")
	for platform, w := range want {
		id := appIDOf(t, platform)
		code := devCode(t, h, platform, "user=alice")
		got := [8]string{
			outcome(t, platform, platformLogin(t, h, platform, id, platformSecret, code, "")),
			outcome(t, platform, platformLogin(t, h, platform, id, platformSecret, code, "")),
			outcome(t, platform, platformLogin(t, h, platform, id, platformSecret, "invalid", "")),
			outcome(t, platform, platformLogin(t, h, platform, id, platformSecret, "busy", "")),
			outcome(t, platform, platformLogin(t, h, platform, id, platformSecret, "limit", "")),
			outcome(t, platform, platformLogin(t, h, platform, id, "wrong", devCode(t, h, platform, ""), "")),
			outcome(t, platform, platformLogin(t, h, platform, "wrong", platformSecret, devCode(t, h, platform, ""), "")),
			outcome(t, platform, platformLogin(t, h, platform, id, platformSecret, "", "")),
		}
		if got != w {
			t.Errorf("%s:\n got %q\nwant %q", platform, got, w)
		}
		rec := platformLogin(t, h, platform, id, platformSecret, "html", "")
		if rec.Code != http.StatusBadGateway || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
			t.Errorf("%s html: %d %s", platform, rec.Code, rec.Header().Get("Content-Type"))
		}
	}
}

func TestPlatformSessions(t *testing.T) {
	h := newPlatformHandler(t, "")
	for _, c := range []struct {
		platform, openID, sessionKey, unionID string
		keySize                               int
		contentType                           string
	}{
		{"qq", "openid", "session_key", "unionid", 16, "text/plain"},
		{"douyin", "data.openid", "data.session_key", "data.unionid", 16, "application/json; charset=utf-8"},
		{"baidu", "openid", "session_key", "", 24, "application/json; charset=utf-8"},
		{"kuaishou", "open_id", "session_key", "", 16, "application/json;charset=UTF-8"},
	} {
		id := appIDOf(t, c.platform)
		login := func(user string) map[string]any {
			rec := platformLogin(t, h, c.platform, id, platformSecret, devCode(t, h, c.platform, "user="+user), "")
			if rec.Code != 200 || rec.Header().Get("Content-Type") != c.contentType {
				t.Fatalf("%s: %d %s %s", c.platform, rec.Code, rec.Header().Get("Content-Type"), rec.Body)
			}
			return answer(t, rec)
		}
		a1, a2, b := login("alice"), login("alice"), login("bob")
		if field(a1, c.openID) != openID(id, "alice") || field(a2, c.openID) != field(a1, c.openID) || field(b, c.openID) == field(a1, c.openID) {
			t.Errorf("%s: openids %v %v %v", c.platform, a1, a2, b)
		}
		if !validKey(field(a1, c.sessionKey), c.keySize) || field(a1, c.sessionKey) == field(a2, c.sessionKey) {
			t.Errorf("%s: session keys %v %v", c.platform, a1, a2)
		}
		// One person has one unionid everywhere: WeChat's.
		if c.unionID != "" && field(a1, c.unionID) != unionID("alice") {
			t.Errorf("%s: unionid %v", c.platform, a1)
		}
		if c.unionID == "" && (a1["unionid"] != nil || a1["union_id"] != nil) {
			t.Errorf("%s gives no unionid: %v", c.platform, a1)
		}
	}
}

// field returns a dotted field of m as a string ("" when absent).
func field(m map[string]any, path string) string {
	var v any = m
	for _, k := range strings.Split(path, ".") {
		o, _ := v.(map[string]any)
		v = o[k]
	}
	s, _ := v.(string)
	return s
}

func TestDouyinAnonymousCodes(t *testing.T) {
	h := newPlatformHandler(t, "")
	id := appIDOf(t, "douyin")
	anon := devCode(t, h, "douyin", "user=guest&anonymous=1")
	m := answer(t, platformLogin(t, h, "douyin", id, platformSecret, "", anon))
	d := m["data"].(map[string]any)
	if d["anonymous_openid"] == "" || d["openid"] != "" || d["session_key"] != "" || d["unionid"] != "" {
		t.Fatalf("anonymous login: %v", m)
	}
	if d["anonymous_openid"] == openID(id, "guest") {
		t.Fatal("the device's anonymous openid is its user's openid")
	}
	if got := outcome(t, "douyin", platformLogin(t, h, "douyin", id, platformSecret, "", anon)); got != "40019" {
		t.Fatalf("anonymous code twice: %s", got)
	}
	// A login code is not an anonymous code, nor the other way round.
	if got := outcome(t, "douyin", platformLogin(t, h, "douyin", id, platformSecret, "", devCode(t, h, "douyin", "user=guest"))); got != "40019" {
		t.Fatalf("login code as anonymous_code: %s", got)
	}
	if got := outcome(t, "douyin", platformLogin(t, h, "douyin", id, platformSecret, devCode(t, h, "douyin", "user=guest&anonymous=1"), "")); got != "40018" {
		t.Fatalf("anonymous code as code: %s", got)
	}
	// Both: the user's openid, and the device's anonymous openid beside it.
	m = answer(t, platformLogin(t, h, "douyin", id, platformSecret, devCode(t, h, "douyin", "user=guest"), devCode(t, h, "douyin", "user=guest&anonymous=1")))
	d = m["data"].(map[string]any)
	if d["openid"] != openID(id, "guest") || d["anonymous_openid"] == "" || d["session_key"] == "" || d["unionid"] != unionID("guest") {
		t.Fatalf("both codes: %v", m)
	}
}

func TestPlatformAnyCode(t *testing.T) {
	h := newPlatformHandler(t, "devtools")
	for _, platform := range []string{"qq", "douyin", "baidu", "kuaishou"} {
		id := appIDOf(t, platform)
		const code = "0a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P"
		rec := platformLogin(t, h, platform, id, platformSecret, code, "")
		if got := outcome(t, platform, rec); got != "ok" || !strings.Contains(rec.Body.String(), openID(id, "devtools")) {
			t.Errorf("%s: any code: %s %s", platform, got, rec.Body)
		}
		if got := outcome(t, platform, platformLogin(t, h, platform, id, platformSecret, code, "")); got == "ok" {
			t.Errorf("%s: an any_code code worked twice", platform)
		}
		if got := outcome(t, platform, platformLogin(t, h, platform, id, platformSecret, "invalid", "")); got == "ok" {
			t.Errorf("%s: the special codes keep their meaning", platform)
		}
	}
	m := answer(t, platformLogin(t, h, "douyin", appIDOf(t, "douyin"), platformSecret, "", "devtools-anonymous-code"))
	if d := m["data"].(map[string]any); d["anonymous_openid"] != openID(appIDOf(t, "douyin"), anonymousPrefix+"devtools") {
		t.Fatalf("any_code anonymous login: %v", m)
	}
}

// An unconfigured platform is served too, accepting any app id and
// secret; the openid follows the app id it is asked for.
func TestUnconfiguredPlatform(t *testing.T) {
	h := newHandler(t, "wx"+t.Name(), "")
	code := devCode(t, h, "kuaishou", "user=carol")
	m := answer(t, platformLogin(t, h, "kuaishou", "ks-any", "any-secret", code, ""))
	if m["open_id"] != openID("ks-any", "carol") {
		t.Fatalf("%v", m)
	}
}

func TestPlatformRoutes(t *testing.T) {
	h := newPlatformHandler(t, "")
	for _, p := range []string{"/qq", "/qq/", "/qq/other", "/douyin/sns/jscode2session", "/baidu/wxmock", "/kuaishou/wxmock/phonecode", "/alipay/other", "/tiktok/x"} {
		req := httptest.NewRequest(http.MethodGet, p, nil)
		if err := h.ServeHTTP(httptest.NewRecorder(), req, next); !errors.Is(err, errNext) {
			t.Errorf("%s: got %v, want the next handler", p, err)
		}
	}
	for _, p := range []string{"/douyin/api/apps/v2/jscode2session", "/baidu/oauth/jscode2sessionkey", "/kuaishou/oauth2/mp/code2session"} {
		if rec := serve(t, h, "GET", p, ""); rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "POST" {
			t.Errorf("GET %s: %d %v", p, rec.Code, rec.Header())
		}
	}
}

func TestPlatformDevEndpoints(t *testing.T) {
	h := newPlatformHandler(t, "")
	if rec := serve(t, h, "GET", "/qq/wxmock/userinfo?user=nobody", ""); rec.Code != http.StatusNotFound {
		t.Fatalf("user who never logged in: %d", rec.Code)
	}
	if rec := serve(t, h, "GET", "/baidu/wxmock/login?session_key=tiihtNczf5v6AKRyjwEUhQ==", ""); rec.Code != http.StatusBadRequest ||
		!strings.Contains(rec.Body.String(), "24 bytes") {
		t.Fatalf("a 16-byte key for Baidu: %d %s", rec.Code, rec.Body)
	}
	if rec := serve(t, h, "DELETE", "/qq/wxmock/login", ""); rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("DELETE: %d", rec.Code)
	}
	// A chosen session key; no unionid when asked.
	const key = "HyVFkGl5F5OQWJZZaNzBBg=="
	code := devCode(t, h, "qq", "user=dave&session_key="+url.QueryEscape(key)+"&unionid=0")
	m := answer(t, platformLogin(t, h, "qq", appIDOf(t, "qq"), platformSecret, code, ""))
	if m["session_key"] != key || m["unionid"] != nil {
		t.Fatalf("%v", m)
	}
	for _, platform := range []string{"qq", "douyin", "kuaishou"} {
		id := appIDOf(t, platform)
		m := answer(t, platformLogin(t, h, platform, id, platformSecret, devCode(t, h, platform, "user=erin"), ""))
		key := field(m, "session_key") + field(m, "data.session_key")
		info := object(t, serve(t, h, "GET", "/"+platform+"/wxmock/userinfo?user=erin", ""))
		plain, ok := decrypt(key, info["encryptedData"].(string), info["iv"].(string))
		if !ok || !strings.Contains(string(plain), `"appid":"`+id+`"`) || !strings.Contains(string(plain), openID(id, "erin")) {
			t.Errorf("%s userinfo: %s", platform, plain)
		}
		if info["signature"] != rawDataSignature(info["rawData"].(string), key) {
			t.Errorf("%s: rawData signature", platform)
		}
		ph := object(t, serve(t, h, "GET", "/"+platform+"/wxmock/phone?user=erin&phone=13900001111", ""))
		plain, ok = decrypt(key, ph["encryptedData"].(string), ph["iv"].(string))
		if !ok || !strings.Contains(string(plain), `"purePhoneNumber":"13900001111"`) || !strings.Contains(string(plain), `"appid":"`+id+`"`) {
			t.Errorf("%s phone: %s", platform, plain)
		}
	}
	id := appIDOf(t, "baidu")
	m = answer(t, platformLogin(t, h, "baidu", id, platformSecret, devCode(t, h, "baidu", "user=erin"), ""))
	info := object(t, serve(t, h, "GET", "/baidu/wxmock/userinfo?user=erin", ""))
	plain, ok := openBaidu(m["session_key"].(string), info["data"].(string), info["iv"].(string), id)
	if !ok || info["encryptedData"] != info["data"] || !strings.Contains(string(plain), openID(id, "erin")) {
		t.Fatalf("baidu userinfo: %s %v", plain, info)
	}
	ph := object(t, serve(t, h, "GET", "/baidu/wxmock/phone?user=erin&phone=13900001111", ""))
	plain, ok = openBaidu(m["session_key"].(string), ph["encryptedData"].(string), ph["iv"].(string), id)
	if !ok || string(plain) != `{"mobile":"13900001111"}` {
		t.Fatalf("baidu phone: %s", plain)
	}
}

// openBaidu opens Baidu's sealing the way Baidu's published sample code
// does, apart from the mock's and wxauth's code.
func openBaidu(sessionKey, data, iv, appKey string) ([]byte, bool) {
	key, err1 := base64.StdEncoding.DecodeString(sessionKey)
	buf, err2 := base64.StdEncoding.DecodeString(data)
	ivb, err3 := base64.StdEncoding.DecodeString(iv)
	if err1 != nil || err2 != nil || err3 != nil || len(key) != 24 || len(buf)%32 != 0 {
		return nil, false
	}
	block, _ := aes.NewCipher(key)
	cipher.NewCBCDecrypter(block, ivb).CryptBlocks(buf, buf)
	pad := int(buf[len(buf)-1])
	if pad < 1 || pad > 32 {
		return nil, false
	}
	buf = buf[16 : len(buf)-pad]
	n := binary.BigEndian.Uint32(buf)
	return buf[4 : 4+n], string(buf[4+n:]) == appKey
}

// A platform block's fields take placeholders, as the WeChat ones do.
func TestPlatformBlockPlaceholders(t *testing.T) {
	t.Setenv("WXMOCK_TEST_QQ_SECRET", "from-the-environment")
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	h := &Handler{Platforms: map[string]*Platform{"qq": {AppID: "qq-" + t.Name(), AppSecret: "{env.WXMOCK_TEST_QQ_SECRET}"}}}
	if err := h.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	defer h.Cleanup()
	code := devCode(t, h, "qq", "user=hal")
	if got := outcome(t, "qq", platformLogin(t, h, "qq", "qq-"+t.Name(), "{env.WXMOCK_TEST_QQ_SECRET}", code, "")); got != "40125" {
		t.Fatalf("the placeholder itself as the secret: %s", got)
	}
	if got := outcome(t, "qq", platformLogin(t, h, "qq", "qq-"+t.Name(), "from-the-environment", code, "")); got != "ok" {
		t.Fatalf("the resolved secret: %s", got)
	}
	if h.Platforms["qq"].AppSecret != "{env.WXMOCK_TEST_QQ_SECRET}" {
		t.Fatal("provisioning changed the config")
	}
}
