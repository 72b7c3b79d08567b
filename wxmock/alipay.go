package wxmock

import (
	"bytes"
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
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// The Alipay stand-in: the open platform gateway's alipay.system.oauth.token
// and two developer endpoints that play my.getAuthCode and
// my.getPhoneNumber, under /alipay/. Its crypto is written apart from
// wxauth's Alipay provider, so that the one checks the other.

const (
	alipayOAuthMethod = "alipay.system.oauth.token"
	alipayOAuthNode   = "alipay_system_oauth_token_response"
	alipayErrorNode   = "error_response"
	alipayTimeLayout  = "2006-01-02 15:04:05"
	// alipaySkew is how far a request's timestamp may be from the
	// stand-in's clock, so a client that sends UTC for Beijing time fails.
	alipaySkew = 15 * time.Minute
)

// beijingTime is the zone of the gateway's timestamps (+08:00, no DST).
var beijingTime = time.FixedZone("CST", 8*60*60)

// alipayRoute returns the handler of an Alipay stand-in path, or nil.
func (h *Handler) alipayRoute(path string) http.HandlerFunc {
	switch path {
	case "/alipay/gateway.do":
		return h.alipayGateway
	case "/alipay/wxmock/login":
		return h.alipayDevLogin
	case "/alipay/wxmock/phone":
		return h.alipayDevPhone
	}
	return nil
}

// alipayConfig is the Alipay platform block, resolved and parsed.
type alipayConfig struct {
	appID   string
	appKey  *rsa.PublicKey  // nil: request signs are not checked
	ownKey  *rsa.PrivateKey // nil: answers go unsigned
	aesKey  string          // base64; "": no phone numbers
	anyCode string          // the handler's any_code user
}

// alipayConfig reads the platform block on each call: the stand-in serves
// a handful of requests, and a key file changed on disk takes effect at
// once. Placeholders such as {file.*} are resolved here.
func (h *Handler) alipayConfig() (*alipayConfig, error) {
	c := &alipayConfig{anyCode: h.AnyCode}
	pc := h.Platforms["alipay"]
	if pc == nil {
		return c, nil
	}
	repl := caddy.NewReplacer()
	text := func(s string) string { return strings.TrimSpace(repl.ReplaceKnown(s, "")) }
	c.appID = text(pc.AppID)
	if s := text(pc.AppPublicKey); s != "" {
		key, _ := mockRSAKey(s).(*rsa.PublicKey)
		if key == nil {
			return nil, errors.New("platform alipay: app_public_key is not an RSA public key (PEM or bare base64)")
		}
		c.appKey = key
	}
	if s := text(pc.PlatformPrivateKey); s != "" {
		key, _ := mockRSAKey(s).(*rsa.PrivateKey)
		if key == nil {
			return nil, errors.New("platform alipay: platform_private_key is not an RSA private key (PEM or bare base64)")
		}
		c.ownKey = key
	}
	if s := text(pc.AESKey); s != "" {
		if !validSessionKey(s) {
			return nil, errors.New("platform alipay: aes_key is not base64 of 16 bytes")
		}
		c.aesKey = s
	}
	return c, nil
}

// mockRSAKey parses an RSA key given as PEM or bare base64 DER: PKCS#8 or
// PKCS#1 private, or PKIX public. Anything else is nil.
func mockRSAKey(text string) any {
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(text), ""))
	if block, _ := pem.Decode([]byte(text)); block != nil {
		der, err = block.Bytes, nil
	}
	if err != nil {
		return nil
	}
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		return k
	}
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k
	}
	if k, err := x509.ParsePKIXPublicKey(der); err == nil {
		return k
	}
	return nil
}

// mockRSA2 is the RSA2 sign (SHA256withRSA, base64) of data.
func mockRSA2(key *rsa.PrivateKey, data []byte) string {
	digest := sha256.Sum256(data)
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	if err != nil {
		return ""
	}
	return base64.StdEncoding.EncodeToString(sig)
}

// alipaySignContent is the text a request's sign covers: its parameters
// but sign, empty ones left out, as name=value sorted by name, joined by &.
func alipaySignContent(form url.Values) []byte {
	type pair struct{ name, value string }
	var pairs []pair
	for name := range form {
		if v := form.Get(name); name != "sign" && v != "" {
			pairs = append(pairs, pair{name, v})
		}
	}
	sort.Slice(pairs, func(i, j int) bool { return pairs[i].name < pairs[j].name })
	var b bytes.Buffer
	for i, p := range pairs {
		if i > 0 {
			b.WriteString("&")
		}
		b.WriteString(p.name + "=" + p.value)
	}
	return b.Bytes()
}

// alipayRefusal is a refusal as the gateway words it.
type alipayRefusal struct {
	Code    string `json:"code"`
	Msg     string `json:"msg"`
	SubCode string `json:"sub_code"`
	SubMsg  string `json:"sub_msg"`
}

// alipayCodeMsgs are the gateway's msg for each code.
var alipayCodeMsgs = map[string]string{
	"20000": "Service Currently Unavailable",
	"40001": "Missing Required Arguments",
	"40002": "Invalid Arguments",
	"40006": "Insufficient Permissions",
}

// alipaySubMsgs are the gateway's sub_msg for each sub_code it answers.
var alipaySubMsgs = map[string]string{
	"isv.missing-app-id":               "缺少appId参数",
	"isv.missing-method":               "缺少方法名参数",
	"isv.missing-signature":            "缺少签名参数",
	"isv.missing-signature-type":       "缺少签名类型参数",
	"isv.missing-timestamp":            "缺少时间戳参数",
	"isv.missing-version":              "缺少版本参数",
	"isv.invalid-app-id":               "无效的AppID参数",
	"isv.invalid-method":               "不存在的方法名",
	"isv.invalid-signature-type":       "无效的签名类型",
	"isv.invalid-timestamp":            "非法的时间戳参数",
	"isv.invalid-signature":            "验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配",
	"isv.invalid-parameter":            "参数无效",
	"isv.grant-type-invalid":           "grant_type参数不正确",
	"isv.code-invalid":                 "授权码code无效",
	"isv.insufficient-isv-permissions": "ISV权限不足",
	"isp.unknow-error":                 "服务暂不可用",
}

func newAlipayRefusal(code, subCode string) alipayRefusal {
	return alipayRefusal{Code: code, Msg: alipayCodeMsgs[code], SubCode: subCode, SubMsg: alipaySubMsgs[subCode]}
}

// alipayToken is alipay.system.oauth.token's result, its members in the
// order Alipay's documentation shows them, not sorted: a client that
// decodes and encodes the answer again before checking its sign gets
// other text, and fails here as it would at Alipay.
type alipayToken struct {
	UserID       string `json:"user_id,omitempty"`
	OpenID       string `json:"open_id,omitempty"`
	AccessToken  string `json:"access_token"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	ReExpiresIn  int    `json:"re_expires_in"`
	AuthStart    string `json:"auth_start"`
}

// alipayAnswer writes a gateway answer as Alipay lays it out: the member,
// then the sign of its exact text, when the stand-in has a key and sign
// is set. forge signs other text, as a tampered answer would carry.
func alipayAnswer(w http.ResponseWriter, c *alipayConfig, node string, v any, sign, forge bool) {
	member, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "wxmock: cannot encode answer", http.StatusInternalServerError)
		return
	}
	var b bytes.Buffer
	b.WriteString(`{"` + node + `":`)
	b.Write(member)
	if sign && c.ownKey != nil {
		signed := member
		if forge {
			signed = append(bytes.Clone(member), ' ')
		}
		b.WriteString(`,"sign":"` + mockRSA2(c.ownKey, signed) + `"`)
	}
	b.WriteString("}")
	w.Header().Set("Content-Type", jsonType)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b.Bytes())
}

// alipayCheck checks a gateway request as the gateway does before the
// method runs, and returns the refusal, "" when it passes, and whether
// the refusal can be signed (not for an app id it does not know).
func (h *Handler) alipayCheck(c *alipayConfig, form url.Values) (code, subCode string, signed bool) {
	for _, p := range []struct{ name, sub string }{
		{"app_id", "isv.missing-app-id"}, {"method", "isv.missing-method"}, {"sign_type", "isv.missing-signature-type"},
		{"sign", "isv.missing-signature"}, {"timestamp", "isv.missing-timestamp"}, {"version", "isv.missing-version"},
	} {
		if form.Get(p.name) == "" {
			return "40001", p.sub, true
		}
	}
	if c.appID != "" && form.Get("app_id") != c.appID {
		return "40002", "isv.invalid-app-id", false
	}
	if form.Get("method") != alipayOAuthMethod {
		return "40002", "isv.invalid-method", true
	}
	if form.Get("sign_type") != "RSA2" {
		return "40002", "isv.invalid-signature-type", true
	}
	at, err := time.ParseInLocation(alipayTimeLayout, form.Get("timestamp"), beijingTime)
	if d := h.state.now().Sub(at); err != nil || d > alipaySkew || d < -alipaySkew {
		return "40002", "isv.invalid-timestamp", true
	}
	if c.appKey != nil {
		sig, err := base64.StdEncoding.DecodeString(form.Get("sign"))
		digest := sha256.Sum256(alipaySignContent(form))
		if err != nil || rsa.VerifyPKCS1v15(c.appKey, crypto.SHA256, digest[:], sig) != nil {
			return "40002", "isv.invalid-signature", true
		}
	}
	return "", "", false
}

// alipayGateway serves /alipay/gateway.do: alipay.system.oauth.token with
// grant_type authorization_code, parameters in the query or the form
// body. Refusals come in error_response, as Alipay answers this method's.
func (h *Handler) alipayGateway(w http.ResponseWriter, r *http.Request) {
	c, err := h.alipayConfig()
	if err != nil {
		writeJSON(w, jsonType, http.StatusInternalServerError, devError{err.Error()})
		return
	}
	refuse := func(code, subCode string, signed bool) {
		h.logAlipay(subCode)
		alipayAnswer(w, c, alipayErrorNode, newAlipayRefusal(code, subCode), signed, false)
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		refuse("40002", "isv.invalid-parameter", true)
		return
	}
	if code, sub, signed := h.alipayCheck(c, r.Form); sub != "" {
		refuse(code, sub, signed)
		return
	}
	if r.Form.Get("grant_type") != "authorization_code" {
		refuse("40002", "isv.grant-type-invalid", true)
		return
	}
	appID := c.appID
	if appID == "" {
		appID = r.Form.Get("app_id")
	}
	forge := false
	var grant alipayGrant
	switch code := r.Form.Get("code"); code {
	case "", "invalid", "used":
		refuse("40002", "isv.code-invalid", true)
		return
	case "busy":
		refuse("20000", "isp.unknow-error", true)
		return
	case "noperm":
		refuse("40006", "isv.insufficient-isv-permissions", true)
		return
	case "html":
		h.logAlipay("html")
		failingGateway(w)
		return
	case "slow":
		stall(r)
		refuse("40002", "isv.code-invalid", true)
		return
	case "reset":
		h.logAlipay("reset")
		hangUp(w)
		return
	case "badsign":
		grant, forge = alipayGrant{user: "badsign"}, true
	default:
		var ok bool
		if grant, ok = alipayCodes.redeem(code, c.anyCode, h.state.now()); !ok {
			refuse("40002", "isv.code-invalid", true)
			return
		}
	}
	h.logAlipay("")
	tok := alipayToken{
		AccessToken: "authusrB" + randomToken(24), RefreshToken: "authusrB" + randomToken(24),
		AuthStart: h.state.now().In(beijingTime).Format(alipayTimeLayout), ExpiresIn: 1296000, ReExpiresIn: 2592000,
	}
	if grant.userID {
		tok.UserID = alipayUserID(grant.user)
	} else {
		tok.OpenID = alipayOpenID(appID, grant.user)
	}
	alipayAnswer(w, c, alipayOAuthNode, tok, true, forge)
}

// failingGateway answers as a failing proxy in front of the API would.
func failingGateway(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusBadGateway)
	_, _ = io.WriteString(w, badGatewayPage)
}

// stall waits slowDelay, or until the caller gives up.
func stall(r *http.Request) {
	t := time.NewTimer(slowDelay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
	}
}

// alipayOpenID derives a stable open_id for user in appID, 44 characters;
// Alipay's open_id is per app, like WeChat's openid.
func alipayOpenID(appID, user string) string {
	sum := sha256.Sum256([]byte("alipay open_id/" + appID + "/" + user))
	return "0" + base64.RawURLEncoding.EncodeToString(sum[:])
}

// alipayUserID derives a stable user_id for user, 16 digits starting 2088
// as Alipay's; it names the person, not the app.
func alipayUserID(user string) string {
	sum := sha256.Sum256([]byte("alipay user_id/" + user))
	var b strings.Builder
	b.WriteString("2088")
	for _, c := range sum[:12] {
		b.WriteByte('0' + c%10)
	}
	return b.String()
}

// logAlipay notes a gateway call at debug level: its sub_code ("" for a
// login), never codes, keys or tokens.
func (h *Handler) logAlipay(subCode string) {
	if ce := h.logger.Check(zapcore.DebugLevel, "alipay api call"); ce != nil {
		ce.Write(zap.String("api", alipayOAuthMethod), zap.String("sub_code", subCode))
	}
}

// alipayCodes are the auth codes the Alipay stand-in issued. They are
// shared by every handler (codes are random, so sharing costs nothing) and
// survive config reloads, like the WeChat state.
var alipayCodes alipayBook

// alipayBook keeps auth codes: each works once, for codeTTL (Alipay's live
// 3 minutes to 24 hours); expired ones are remembered in spent, so that
// any_code never takes them for new ones.
type alipayBook struct {
	mu    sync.Mutex
	codes map[string]*alipayGrant
	spent spentCodes
}

// alipayGrant is what an auth code stands for.
type alipayGrant struct {
	user    string
	userID  bool // the app still gets user_id instead of open_id
	expires time.Time
	used    bool
}

// issue makes a code for user.
func (b *alipayBook) issue(user string, userID bool, now time.Time) string {
	code := randomToken(24)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.keep(code, &alipayGrant{user: user, userID: userID, expires: now.Add(codeTTL)}, now)
	return code
}

// keep adds a grant after moving the expired ones to spent.
func (b *alipayBook) keep(code string, g *alipayGrant, now time.Time) {
	if b.codes == nil {
		b.codes = make(map[string]*alipayGrant)
	}
	for c, old := range b.codes {
		if now.After(old.expires) {
			delete(b.codes, c)
			b.spent.add(c)
		}
	}
	b.codes[code] = g
}

// redeem uses code once. With anyUser set, a code the book never held is
// a login of anyUser (any_code), once, like any other code.
func (b *alipayBook) redeem(code, anyUser string, now time.Time) (alipayGrant, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	g, ok := b.codes[code]
	if !ok && anyUser != "" && !b.spent.has(code) {
		g, ok = &alipayGrant{user: anyUser, expires: now.Add(codeTTL)}, true
		b.keep(code, g, now)
	}
	if !ok || g.used || now.After(g.expires) {
		return alipayGrant{}, false
	}
	g.used = true
	return *g, true
}

// alipayCodeReply is what my.getAuthCode hands the mini-program.
type alipayCodeReply struct {
	AuthCode string `json:"authCode"`
}

// alipayDevLogin serves /alipay/wxmock/login: an auth code, as
// my.getAuthCode gives one; id=user_id makes its login answer user_id (an
// app that still gets it) instead of open_id.
func (h *Handler) alipayDevLogin(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodGet, http.MethodPost) {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	name, id := param(r, "user", "demo"), param(r, "id", "open_id")
	switch {
	case !validUserName(name):
		writeJSON(w, jsonType, http.StatusBadRequest, devError{"user: letters, digits, '_', '-' and '.', at most 64"})
		return
	case id != "open_id" && id != "user_id":
		writeJSON(w, jsonType, http.StatusBadRequest, devError{"id: open_id or user_id"})
		return
	}
	code := alipayCodes.issue(name, id == "user_id", h.state.now())
	writeJSON(w, jsonType, http.StatusOK, alipayCodeReply{code})
}

// alipayPhoneRefusals are the opened answers of refuse=, as Alipay's
// documentation of my.getPhoneNumber shows them.
var alipayPhoneRefusals = map[string]string{
	"auth": `{"code":"40003","msg":"Insufficient Conditions","subCode":"isv.invalid-auth-relations","subMsg":"无效的授权关系"}`,
	"perm": `{"code":"40006","msg":"Insufficient Permissions","subCode":"isv.insufficient-isv-permissions","subMsg":"ISV权限不足"}`,
	"busy": `{"code":"20000","msg":"Service Currently Unavailable","subCode":"aop.unknow-error","subMsg":"系统繁忙"}`,
}

// alipayPhoneText is the text my.getPhoneNumber gives the mini-program.
type alipayPhoneText struct {
	Response    string `json:"response"`
	Sign        string `json:"sign,omitempty"`
	SignType    string `json:"sign_type"`
	EncryptType string `json:"encrypt_type"`
	Charset     string `json:"charset"`
}

// alipayDevPhone serves GET /alipay/wxmock/phone: the text my.getPhoneNumber
// gives, sealed with aes_key (AES-128-CBC, zero iv) and signed over the
// quoted ciphertext with platform_private_key. refuse=auth|perm|busy seals
// Alipay's refusal instead, nosign=1 leaves the sign out (an app without
// signing set up). user is taken and not used: the sealed number names no
// user.
func (h *Handler) alipayDevPhone(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodGet) {
		return
	}
	c, err := h.alipayConfig()
	if err != nil {
		writeJSON(w, jsonType, http.StatusInternalServerError, devError{err.Error()})
		return
	}
	nosign := r.FormValue("nosign") == "1"
	switch {
	case c.aesKey == "":
		writeJSON(w, jsonType, http.StatusInternalServerError, devError{"platform alipay has no aes_key to seal phone numbers with (the demo's is examples/keys/alipay-aes.key)"})
		return
	case c.ownKey == nil && !nosign:
		writeJSON(w, jsonType, http.StatusInternalServerError, devError{"platform alipay has no platform_private_key to sign with (the demo's is examples/keys/alipay-platform-private.pem)"})
		return
	}
	phone := param(r, "phone", "13800138000")
	plain, ok := alipayPhoneRefusals[r.FormValue("refuse")]
	switch {
	case r.FormValue("refuse") != "" && !ok:
		writeJSON(w, jsonType, http.StatusBadRequest, devError{"refuse: auth, perm or busy"})
		return
	case !ok && (len(phone) > 20 || strings.Trim(phone, "0123456789") != ""):
		writeJSON(w, jsonType, http.StatusBadRequest, devError{"phone: digits only"})
		return
	case !ok:
		plain = `{"code":"10000","msg":"Success","mobile":"` + phone + `"}`
	}
	sealed, _, err := encryptIV(c.aesKey, make([]byte, 16), []byte(plain))
	if err != nil {
		writeJSON(w, jsonType, http.StatusInternalServerError, devError{"cannot seal the phone number"})
		return
	}
	text := alipayPhoneText{Response: sealed, SignType: "RSA2", EncryptType: "AES", Charset: "UTF-8"}
	if !nosign {
		text.Sign = mockRSA2(c.ownKey, []byte(`"`+sealed+`"`))
	}
	writeJSON(w, jsonType, http.StatusOK, text)
}
