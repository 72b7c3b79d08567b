package wxmock

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/wxauth/caddy-wxauth/internal/apierr"
	wxlogin "github.com/wxauth/caddy-wxauth/internal/login"
	"github.com/wxauth/caddy-wxauth/internal/provider/alipay"
)

const alipayApp = "2021000000000042"

// demoKey is the demo key file of examples/keys with that name.
func demoKey(name string) string { return "../examples/keys/" + name }

func readDemoKey(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(demoKey(name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// demoPlatform is the demo's Alipay block of wxmock, its keys read through
// {file.*} placeholders as the demo Caddyfile reads them.
func demoPlatform() *Platform {
	return &Platform{
		AppID:              alipayApp,
		AppPublicKey:       "{file." + demoKey("alipay-app-public.pem") + "}",
		PlatformPrivateKey: "{file." + demoKey("alipay-platform-private.pem") + "}",
		AESKey:             "{file." + demoKey("alipay-aes.key") + "}",
	}
}

// newAlipayMock is a wxmock with the Alipay block p (nil for none) behind
// an HTTP server; it returns the gateway's URL.
func newAlipayMock(t *testing.T, p *Platform, anyCode string) (*Handler, string) {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	h := &Handler{AppID: "wx" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "_")), AnyCode: anyCode}
	if p != nil {
		h.Platforms = map[string]*Platform{"alipay": p}
	}
	if err := h.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.Validate(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Cleanup() })
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h.ServeHTTP(w, r, next); err != nil {
			http.Error(w, err.Error(), http.StatusTeapot)
		}
	}))
	t.Cleanup(srv.Close)
	return h, srv.URL
}

// demoProvider is wxauth's Alipay provider with the demo's keys, against
// the stand-in at base; edit changes its config first.
func demoProvider(t *testing.T, base string, edit ...func(*wxlogin.PlatformConfig)) *alipay.Provider {
	t.Helper()
	cfg := wxlogin.PlatformConfig{
		AppID:             alipayApp,
		PrivateKey:        readDemoKey(t, "alipay-app-private.pem"),
		PlatformPublicKey: readDemoKey(t, "alipay-platform-public.pem"),
		AESKey:            readDemoKey(t, "alipay-aes.key"),
		APIBase:           base + "/alipay/gateway.do",
		Timeout:           5 * time.Second,
	}
	for _, e := range edit {
		e(&cfg)
	}
	p, err := alipay.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// authCode gets a code from /alipay/wxmock/login with query.
func authCode(t *testing.T, base, query string) string {
	t.Helper()
	resp, err := http.Get(base + "/alipay/wxmock/login?" + query)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != 200 || m["authCode"] == "" {
		t.Fatalf("login: %d %v %v", resp.StatusCode, m, err)
	}
	return m["authCode"]
}

func apiErr(t *testing.T, err error) *apierr.Error {
	t.Helper()
	var e *apierr.Error
	if !errors.As(err, &e) {
		t.Fatalf("%v is not an *apierr.Error", err)
	}
	return e
}

func exchangeAlipay(p *alipay.Provider, code string) (*wxlogin.Identity, error) {
	return p.Exchange(context.Background(), zap.NewNop(), wxlogin.Code{Code: code})
}

// wxauth's provider logs in through the stand-in, with the demo's keys.
func TestAlipayLoginRoundTrip(t *testing.T) {
	_, base := newAlipayMock(t, demoPlatform(), "")
	p := demoProvider(t, base)

	code := authCode(t, base, "user=alice")
	id, err := exchangeAlipay(p, code)
	if err != nil || id.OpenID != alipayOpenID(alipayApp, "alice") || id.Platform != "alipay" || id.AppID != alipayApp || id.SessionKey != "" {
		t.Fatalf("got %+v, %v", id, err)
	}
	if again, err := exchangeAlipay(p, authCode(t, base, "user=alice")); err != nil || again.OpenID != id.OpenID {
		t.Fatalf("a second login of alice: %+v, %v", again, err)
	}
	if bob, _ := exchangeAlipay(p, authCode(t, base, "user=bob")); bob == nil || bob.OpenID == id.OpenID {
		t.Fatalf("bob: %+v", bob)
	}
	// A code works once.
	if _, err := exchangeAlipay(p, code); apiErr(t, err).Code != "invalid_code" || apiErr(t, err).ErrCodeString() != "isv.code-invalid" {
		t.Fatalf("a used code: %v", err)
	}
	// Apps that still get user_id.
	if id, err := exchangeAlipay(p, authCode(t, base, "user=alice&id=user_id")); err != nil || id.OpenID != alipayUserID("alice") || len(id.OpenID) != 16 || !strings.HasPrefix(id.OpenID, "2088") {
		t.Fatalf("user_id login: %+v, %v", id, err)
	}
	// Codes expire after codeTTL.
	expired := alipayCodes.issue("carol", false, time.Now().Add(-codeTTL-time.Second))
	if _, err := exchangeAlipay(p, expired); apiErr(t, err).Code != "invalid_code" {
		t.Fatalf("an expired code: %v", err)
	}
}

// The special codes fail as documented, and each maps onto the contract.
func TestAlipaySpecialCodes(t *testing.T) {
	_, base := newAlipayMock(t, demoPlatform(), "")
	p := demoProvider(t, base)
	for code, want := range map[string][2]string{
		"invalid": {"invalid_code", "isv.code-invalid"},
		"used":    {"invalid_code", "isv.code-invalid"},
		"busy":    {"upstream_error", "isp.unknow-error"},
		"noperm":  {"platform_config", "isv.insufficient-isv-permissions"},
		"badsign": {"upstream_error", ""},
		"html":    {"upstream_error", ""},
		"reset":   {"upstream_error", ""},
		"unknown": {"invalid_code", "isv.code-invalid"},
	} {
		_, err := exchangeAlipay(p, code)
		if e := apiErr(t, err); e.Code != want[0] || e.ErrCodeString() != want[1] {
			t.Errorf("%s: got %s %q, want %s %q", code, e.Code, e.ErrCodeString(), want[0], want[1])
		}
	}
	// slow keeps the caller until it gives up.
	impatient := demoProvider(t, base, func(c *wxlogin.PlatformConfig) { c.Timeout = 100 * time.Millisecond })
	start := time.Now()
	_, err := exchangeAlipay(impatient, "slow")
	if e := apiErr(t, err); e.Code != "upstream_error" || !strings.Contains(e.Message, "in time") || time.Since(start) > 5*time.Second {
		t.Fatalf("slow: %+v after %v", e, time.Since(start))
	}
}

// A misconfigured wxauth gets Alipay's own refusals from the stand-in.
func TestAlipayWrongKeys(t *testing.T) {
	_, base := newAlipayMock(t, demoPlatform(), "")
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	otherPEM := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(other)}))
	otherPub, _ := x509.MarshalPKIXPublicKey(&other.PublicKey)
	cases := []struct {
		name    string
		edit    func(*wxlogin.PlatformConfig)
		code    string
		errcode string
	}{
		{"private_key not the app's", func(c *wxlogin.PlatformConfig) { c.PrivateKey = otherPEM }, "platform_config", "isv.invalid-signature"},
		{"alipay_public_key not Alipay's", func(c *wxlogin.PlatformConfig) { c.PlatformPublicKey = base64.StdEncoding.EncodeToString(otherPub) }, "upstream_error", ""},
		{"app_id of another app", func(c *wxlogin.PlatformConfig) { c.AppID = "2021000000000099" }, "platform_config", "isv.invalid-app-id"},
	}
	for _, c := range cases {
		p := demoProvider(t, base, c.edit)
		_, err := exchangeAlipay(p, authCode(t, base, "user=alice"))
		if e := apiErr(t, err); e.Code != c.code || e.ErrCodeString() != c.errcode {
			t.Errorf("%s: got %s %q (%s), want %s %q", c.name, e.Code, e.ErrCodeString(), e.Message, c.code, c.errcode)
		}
	}
}

func TestAlipayAnyCode(t *testing.T) {
	_, base := newAlipayMock(t, demoPlatform(), "devtools")
	p := demoProvider(t, base)
	code := devToolsCode(t)
	id, err := exchangeAlipay(p, code)
	if err != nil || id.OpenID != alipayOpenID(alipayApp, "devtools") {
		t.Fatalf("an IDE's code: %+v, %v", id, err)
	}
	if _, err := exchangeAlipay(p, code); apiErr(t, err).Code != "invalid_code" {
		t.Fatalf("an IDE's code twice: %v", err)
	}
	// Issued codes and special codes keep their meaning.
	if id, err := exchangeAlipay(p, authCode(t, base, "user=alice")); err != nil || id.OpenID != alipayOpenID(alipayApp, "alice") {
		t.Fatalf("an issued code: %+v, %v", id, err)
	}
	if _, err := exchangeAlipay(p, "invalid"); apiErr(t, err).Code != "invalid_code" {
		t.Fatalf("invalid: %v", err)
	}
	// An expired code is never taken for a new one.
	expired := alipayCodes.issue("carol", false, time.Now().Add(-codeTTL-time.Second))
	alipayCodes.issue("dave", false, time.Now()) // moves the expired code to spent
	if _, err := exchangeAlipay(p, expired); apiErr(t, err).Code != "invalid_code" {
		t.Fatalf("an expired code under any_code: %v", err)
	}
}

// phoneText gets the text of my.getPhoneNumber from the stand-in.
func phoneText(t *testing.T, base, query string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(base + "/alipay/wxmock/phone?" + query)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

func TestAlipayPhoneRoundTrip(t *testing.T) {
	_, base := newAlipayMock(t, demoPlatform(), "")
	p := demoProvider(t, base)
	status, text := phoneText(t, base, "user=alice&phone=13900139000")
	var fields map[string]string
	if status != 200 || json.Unmarshal(text, &fields) != nil || fields["sign_type"] != "RSA2" || fields["encrypt_type"] != "AES" || fields["charset"] != "UTF-8" {
		t.Fatalf("%d %s", status, text)
	}
	got, err := p.OpenPhone(text)
	if want := `{"phone_number":"13900139000","pure_phone_number":"13900139000","country_code":"86"}`; err != nil || string(got) != want {
		t.Fatalf("got %s, %v", got, err)
	}

	for query, want := range map[string][3]string{
		"refuse=auth": {"403", "phone_refused", "isv.invalid-auth-relations"},
		"refuse=perm": {"403", "phone_refused", "isv.insufficient-isv-permissions"},
		"refuse=busy": {"502", "upstream_error", "aop.unknow-error"},
		"nosign=1":    {"502", "platform_config", ""},
	} {
		_, text := phoneText(t, base, query)
		_, err := p.OpenPhone(text)
		e := apiErr(t, err)
		if got := [3]string{strconv.Itoa(e.Status), e.Code, e.ErrCodeString()}; got != want {
			t.Errorf("%s: got %v, want %v", query, got, want)
		}
	}

	// wxauth with another AES key, or another Alipay public key.
	_, text = phoneText(t, base, "phone=13900139000")
	wrongAES := demoProvider(t, base, func(c *wxlogin.PlatformConfig) { c.AESKey = "AAAAAAAAAAAAAAAAAAAAAA==" })
	if _, err := wrongAES.OpenPhone(text); apiErr(t, err).Code != "platform_config" {
		t.Errorf("another aes_key: %v", err)
	}
	wrongPub := demoProvider(t, base, func(c *wxlogin.PlatformConfig) {
		c.PrivateKey, c.PlatformPublicKey = readDemoKey(t, "alipay-platform-private.pem"), readDemoKey(t, "alipay-app-public.pem")
	})
	if _, err := wrongPub.OpenPhone(text); apiErr(t, err).Code != "invalid_signature" {
		t.Errorf("another alipay_public_key: %v", err)
	}
}

// gatewayCall sends form to the gateway, signed with key when given.
func gatewayCall(t *testing.T, base string, form url.Values, key *rsa.PrivateKey) map[string]json.RawMessage {
	t.Helper()
	if key != nil {
		digest := sha256.Sum256(alipaySignContent(form))
		sig, _ := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
		form.Set("sign", base64.StdEncoding.EncodeToString(sig))
	}
	resp, err := http.PostForm(base+"/alipay/gateway.do", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %v", resp.StatusCode, err)
	}
	return m
}

// The gateway checks requests as Alipay's does, and signs its answers with
// platform_private_key over the member's exact text.
func TestAlipayGatewayChecks(t *testing.T) {
	_, base := newAlipayMock(t, demoPlatform(), "")
	appKey := mockRSAKey(readDemoKey(t, "alipay-app-private.pem")).(*rsa.PrivateKey)
	platformPub := mockRSAKey(readDemoKey(t, "alipay-platform-public.pem")).(*rsa.PublicKey)
	valid := func() url.Values {
		return url.Values{
			"app_id": {alipayApp}, "method": {"alipay.system.oauth.token"}, "format": {"JSON"}, "charset": {"utf-8"},
			"sign_type": {"RSA2"}, "timestamp": {time.Now().In(beijingTime).Format(alipayTimeLayout)}, "version": {"1.0"},
			"grant_type": {"authorization_code"}, "code": {authCode(t, base, "user=erin")},
		}
	}
	cases := []struct {
		name   string
		edit   func(url.Values)
		key    *rsa.PrivateKey
		node   string
		sub    string
		signed bool
	}{
		{"valid", func(url.Values) {}, appKey, alipayOAuthNode, "", true},
		{"no app_id", func(v url.Values) { v.Del("app_id") }, appKey, alipayErrorNode, "isv.missing-app-id", true},
		{"no sign", func(url.Values) {}, nil, alipayErrorNode, "isv.missing-signature", true},
		{"no timestamp", func(v url.Values) { v.Del("timestamp") }, appKey, alipayErrorNode, "isv.missing-timestamp", true},
		{"app id of another app", func(v url.Values) { v.Set("app_id", "2021000000000099") }, appKey, alipayErrorNode, "isv.invalid-app-id", false},
		{"another method", func(v url.Values) { v.Set("method", "alipay.user.info.share") }, appKey, alipayErrorNode, "isv.invalid-method", true},
		{"RSA1", func(v url.Values) { v.Set("sign_type", "RSA") }, appKey, alipayErrorNode, "isv.invalid-signature-type", true},
		{"UTC for Beijing time", func(v url.Values) { v.Set("timestamp", time.Now().UTC().Format(alipayTimeLayout)) }, appKey, alipayErrorNode, "isv.invalid-timestamp", true},
		{"bad timestamp", func(v url.Values) { v.Set("timestamp", "2026-12-01T08:00:00Z") }, appKey, alipayErrorNode, "isv.invalid-timestamp", true},
		{"signed by another key", func(url.Values) {}, mockRSAKey(readDemoKey(t, "alipay-platform-private.pem")).(*rsa.PrivateKey), alipayErrorNode, "isv.invalid-signature", true},
		{"grant_type", func(v url.Values) { v.Set("grant_type", "refresh_token") }, appKey, alipayErrorNode, "isv.grant-type-invalid", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			form := valid()
			c.edit(form)
			m := gatewayCall(t, base, form, c.key)
			member, ok := m[c.node]
			if !ok || len(m) != map[bool]int{true: 2, false: 1}[c.signed] {
				t.Fatalf("answer members %v, want %s (signed %v)", keys(m), c.node, c.signed)
			}
			var ans struct {
				Code    string `json:"code"`
				SubCode string `json:"sub_code"`
				OpenID  string `json:"open_id"`
			}
			json.Unmarshal(member, &ans)
			if ans.SubCode != c.sub || c.sub == "" && ans.OpenID != alipayOpenID(alipayApp, "erin") {
				t.Fatalf("member %s", member)
			}
			if c.signed {
				var sign string
				json.Unmarshal(m["sign"], &sign)
				sig, _ := base64.StdEncoding.DecodeString(sign)
				digest := sha256.Sum256(member)
				if rsa.VerifyPKCS1v15(platformPub, crypto.SHA256, digest[:], sig) != nil {
					t.Fatal("the answer's sign does not verify over the member's text")
				}
			}
		})
	}
}

func keys(m map[string]json.RawMessage) []string {
	var s []string
	for k := range m {
		s = append(s, k)
	}
	return s
}

// Without keys the stand-in still answers, unsigned, which wxauth refuses;
// the phone endpoint says which demo files to use.
func TestAlipayWithoutKeys(t *testing.T) {
	_, base := newAlipayMock(t, nil, "")
	p := demoProvider(t, base)
	if _, err := exchangeAlipay(p, authCode(t, base, "user=alice")); apiErr(t, err).Code != "upstream_error" {
		t.Fatalf("an unsigned login: %v", err)
	}
	if _, err := exchangeAlipay(p, "invalid"); apiErr(t, err).Code != "invalid_code" {
		t.Fatalf("an unsigned refusal: %v", err)
	}
	status, body := phoneText(t, base, "")
	if status != 500 || !strings.Contains(string(body), "examples/keys/alipay-aes.key") {
		t.Fatalf("%d %s", status, body)
	}
}

func TestAlipayDevEndpointErrors(t *testing.T) {
	_, base := newAlipayMock(t, demoPlatform(), "")
	for _, c := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/alipay/wxmock/login?user=a%20b", 400},
		{"GET", "/alipay/wxmock/login?id=uid", 400},
		{"DELETE", "/alipay/wxmock/login", 405},
		{"POST", "/alipay/wxmock/phone", 405},
		{"GET", "/alipay/wxmock/phone?phone=138-0013", 400},
		{"GET", "/alipay/wxmock/phone?refuse=maybe", 400},
		{"GET", "/alipay/other", http.StatusTeapot}, // the next handler
	} {
		req, _ := http.NewRequest(c.method, base+c.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, resp.StatusCode, c.status)
		}
	}
	// POST login works too, with the form in the body.
	resp, err := http.PostForm(base+"/alipay/wxmock/login", url.Values{"user": {"frank"}})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("POST login: %v %v", resp, err)
	}
	resp.Body.Close()
}

// Validate refuses keys that do not parse.
func TestAlipayValidate(t *testing.T) {
	for name, p := range map[string]*Platform{
		"app_public_key":       {AppPublicKey: "not a key"},
		"platform_private_key": {PlatformPrivateKey: readDemoKey(t, "alipay-app-public.pem")},
		"aes_key":              {AESKey: "c2hvcnQ="},
	} {
		h := Handler{AccessTokenTTL: caddy.Duration(time.Minute), Platforms: map[string]*Platform{"alipay": p}}
		if err := h.Validate(); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v", name, err)
		}
	}
	h := Handler{AccessTokenTTL: caddy.Duration(time.Minute), Platforms: map[string]*Platform{"alipay": demoPlatform()}}
	if err := h.Validate(); err != nil {
		t.Fatalf("the demo's keys: %v", err)
	}
}
