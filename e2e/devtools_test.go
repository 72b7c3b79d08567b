package e2e

import (
	"crypto/rand"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// devToolsCode is a code as WeChat DevTools' wx.login gives one with a
// tourist appid: 32 random letters and digits that wxmock never issued.
func devToolsCode() string {
	return rand.Text()[:26] + strings.ToLower(rand.Text()[:6])
}

// The demo's development mode for WeChat DevTools: with any_code, a code
// wxmock never issued logs in through Caddy as the configured user, once.
func TestDevToolsCodeLogsInWithAnyCode(t *testing.T) {
	cfg := configFor("wxdevtools0000001", "")
	const mockBlock = "\twxmock {\n"
	if !strings.Contains(cfg, mockBlock) {
		t.Fatal("the config has no wxmock block")
	}
	h := startConfig(t, strings.Replace(cfg, mockBlock, mockBlock+"\t\tany_code devtools\n", 1))

	code := devToolsCode()
	if len(code) != 32 {
		t.Fatalf("code %q is not 32 characters", code)
	}
	r := h.postJSON(appURL+"/wx/login", map[string]string{"code": code})
	if r.status != 200 || r.str("token") == "" || r.str("openid") == "" || r.str("unionid") == "" {
		t.Fatalf("login with a DevTools code: %d %s", r.status, r.body)
	}
	p := h.do(http.MethodGet, appURL+"/api/whoami", nil, bearer(r.str("token"))...)
	if p.status != 200 || p.str("openid") != r.str("openid") {
		t.Fatalf("protected call: %d %s", p.status, p.body)
	}

	// One stable openid: another DevTools code, and a code wxmock issued for
	// the same user name, log in the same user.
	again := h.postJSON(appURL+"/wx/login", map[string]string{"code": devToolsCode()})
	if again.status != 200 || again.str("openid") != r.str("openid") {
		t.Fatalf("second DevTools code: %d %s, want openid %s", again.status, again.body, r.str("openid"))
	}
	if issued := h.login("devtools"); issued.str("openid") != r.str("openid") {
		t.Fatalf("/wxmock/login?user=devtools: openid %s, want %s", issued.str("openid"), r.str("openid"))
	}
	// Codes wxmock issued keep their user.
	if alice := h.login("alice"); alice.str("openid") == r.str("openid") {
		t.Fatalf("alice logged in as the any_code user: %s", alice.body)
	}

	// A code works once, as at WeChat: wxauth refuses it again itself, and
	// wxmock answers 40163 when asked directly.
	reused := h.postJSON(appURL+"/wx/login", map[string]string{"code": code})
	expectError(t, reused, http.StatusUnauthorized, "invalid_code")
	direct := h.do(http.MethodGet, mockURL+"/sns/jscode2session?"+url.Values{
		"appid": {"wxdevtools0000001"}, "secret": {"test-secret"}, "js_code": {code}, "grant_type": {"authorization_code"},
	}.Encode(), nil)
	if e, _ := direct.json["errcode"].(float64); e != 40163 {
		t.Fatalf("reused code at wxmock: %s, want errcode 40163", direct.body)
	}
	// The special codes keep their meaning.
	invalid := h.postJSON(appURL+"/wx/login", map[string]string{"code": "invalid"})
	expectError(t, invalid, http.StatusUnauthorized, "invalid_code")
	if e, _ := invalid.json["errcode"].(float64); e != 40029 {
		t.Fatalf("code invalid: %s, want errcode 40029", invalid.body)
	}
}
