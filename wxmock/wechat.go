package wxmock

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"
)

const (
	// WeChat answers code2Session as text/plain, which clients must cope with.
	textPlain = "text/plain"
	jsonType  = "application/json; charset=utf-8"
	// slowDelay is how long js_code "slow" keeps the caller waiting.
	slowDelay = 10 * time.Second
	// maxBody bounds request bodies; WeChat's are tiny.
	maxBody = 64 << 10
)

// code2SessionReply is code2Session's success answer.
type code2SessionReply struct {
	OpenID     string `json:"openid"`
	SessionKey string `json:"session_key"`
	UnionID    string `json:"unionid,omitempty"`
}

// code2Session serves GET /sns/jscode2session.
func (h *Handler) code2Session(w http.ResponseWriter, r *http.Request) {
	h.state.count(func(c *counters) { c.Code2Session++ })
	q := r.URL.Query()
	appID, code := q.Get("appid"), q.Get("js_code")
	fail := func(errcode int) {
		h.logCall("jscode2session", errcode)
		writeJSON(w, textPlain, http.StatusOK, newWxError(errcode))
	}
	if errcode := h.checkApp(appID, q.Get("secret")); errcode != 0 {
		fail(errcode)
		return
	}
	switch {
	case code == "":
		fail(errCodeMissing)
		return
	case q.Get("grant_type") != "authorization_code":
		fail(errInvalidGrantType)
		return
	}
	if h.appID != "" {
		appID = h.appID
	}

	var u user
	switch code {
	case "invalid":
		fail(errInvalidCode)
		return
	case "used":
		fail(errCodeUsed)
		return
	case "risky":
		fail(errRiskyUser)
		return
	case "busy":
		fail(errSystem)
		return
	case "limit":
		fail(errQuota)
		return
	case "html":
		h.logCall("jscode2session", http.StatusBadGateway)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = io.WriteString(w, badGatewayPage)
		return
	case "slow":
		t := time.NewTimer(slowDelay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
		}
		fail(errInvalidCode)
		return
	case "reset":
		h.logCall("jscode2session", 0)
		hangUp(w)
		return
	case "busyonce":
		var busy bool
		if u, busy = h.state.busyOnce(appID); busy {
			fail(errSystem)
			return
		}
	default:
		var errcode int
		if u, errcode = h.state.exchange(code, appID, h.AnyCode); errcode != 0 {
			fail(errcode)
			return
		}
	}
	h.logCall("jscode2session", 0)
	writeJSON(w, textPlain, http.StatusOK, code2SessionReply{OpenID: u.openID, SessionKey: u.sessionKey, UnionID: u.unionID})
}

const badGatewayPage = `<html>
<head><title>502 Bad Gateway</title></head>
<body>
<center><h1>502 Bad Gateway</h1></center>
<hr><center>wxmock</center>
</body>
</html>
`

// hangUp closes the connection without answering. Where the connection cannot
// be taken over (HTTP/2, recorders) it aborts the response instead.
func hangUp(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}

// checkApp checks an appid and secret as WeChat does: missing ones first,
// then the configured ones.
func (h *Handler) checkApp(appID, secret string) int {
	switch {
	case appID == "":
		return errAppIDMissing
	case secret == "":
		return errSecretMissing
	case h.appID != "" && appID != h.appID:
		return errInvalidAppID
	case h.appSecret != "" && !equal(secret, h.appSecret):
		return errInvalidAppSecret
	}
	return 0
}

// stableTokenRequest is stable_token's request body.
type stableTokenRequest struct {
	GrantType    string `json:"grant_type"`
	AppID        string `json:"appid"`
	Secret       string `json:"secret"`
	ForceRefresh bool   `json:"force_refresh"`
}

// stableTokenReply is stable_token's success answer.
type stableTokenReply struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int    `json:"expires_in"`
}

// stableToken serves POST /cgi-bin/stable_token. Without force_refresh the
// current token comes back with its remaining lifetime; with it a new token
// is issued and the previous one stays valid for 30s more.
func (h *Handler) stableToken(w http.ResponseWriter, r *http.Request) {
	h.state.count(func(c *counters) { c.StableToken++ })
	var req stableTokenRequest
	errcode := h.decodePOST(r, &req)
	if errcode == 0 {
		errcode = h.checkApp(req.AppID, req.Secret)
	}
	if errcode == 0 && req.GrantType != "client_credential" {
		errcode = errInvalidGrantType
	}
	h.logCall("stable_token", errcode)
	if errcode != 0 {
		writeJSON(w, jsonType, http.StatusOK, newWxError(errcode))
		return
	}
	appID := req.AppID
	if h.appID != "" {
		appID = h.appID
	}
	tok, left := h.state.stableToken(appID, req.ForceRefresh, time.Duration(h.AccessTokenTTL))
	writeJSON(w, jsonType, http.StatusOK, stableTokenReply{AccessToken: tok, ExpiresIn: int(left / time.Second)})
}

// decodePOST reads a JSON body of a POST request into v.
func (h *Handler) decodePOST(r *http.Request, v any) int {
	if r.Method != http.MethodPost {
		return errRequirePOST
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, maxBody)).Decode(v); err != nil {
		return errDataFormat
	}
	return 0
}

// phoneRequest is getuserphonenumber's request body.
type phoneRequest struct {
	Code   string `json:"code"`
	OpenID string `json:"openid,omitempty"`
}

// phoneReply is getuserphonenumber's success answer.
type phoneReply struct {
	ErrCode   int       `json:"errcode"`
	ErrMsg    string    `json:"errmsg"`
	PhoneInfo phoneInfo `json:"phone_info"`
}

type phoneInfo struct {
	PhoneNumber     string    `json:"phoneNumber"`
	PurePhoneNumber string    `json:"purePhoneNumber"`
	CountryCode     any       `json:"countryCode"` // "86", or 86 for cc=num
	Watermark       watermark `json:"watermark"`
}

type watermark struct {
	Timestamp int64  `json:"timestamp"`
	AppID     string `json:"appid"`
}

// phoneNumber serves POST /wxa/business/getuserphonenumber.
func (h *Handler) phoneNumber(w http.ResponseWriter, r *http.Request) {
	h.state.count(func(c *counters) { c.PhoneNumber++ })
	appID, errcode := h.state.checkToken(r.URL.Query().Get("access_token"))
	var req phoneRequest
	if errcode == 0 {
		errcode = h.decodePOST(r, &req)
	}
	var pc phoneCode
	if errcode == 0 {
		var ok bool
		if pc, ok = h.state.usePhoneCode(req.Code, req.OpenID); !ok {
			errcode = errInvalidCode
		}
	}
	h.logCall("getuserphonenumber", errcode)
	if errcode != 0 {
		writeJSON(w, jsonType, http.StatusOK, newWxError(errcode))
		return
	}
	var cc any = "86"
	if pc.numberCC {
		cc = 86
	}
	writeJSON(w, jsonType, http.StatusOK, phoneReply{
		ErrMsg: "ok",
		PhoneInfo: phoneInfo{
			PhoneNumber:     pc.phone,
			PurePhoneNumber: pc.phone,
			CountryCode:     cc,
			Watermark:       watermark{Timestamp: h.state.now().Unix(), AppID: appID},
		},
	})
}

// checkSession serves GET /wxa/checksession: the signature must be the login
// state signature of the empty message with the user's current session_key.
func (h *Handler) checkSession(w http.ResponseWriter, r *http.Request) {
	h.state.count(func(c *counters) { c.CheckSession++ })
	q := r.URL.Query()
	_, errcode := h.state.checkToken(q.Get("access_token"))
	if errcode == 0 {
		key, ok := h.state.sessionKeyOf(q.Get("openid"))
		if !ok || q.Get("sig_method") != "hmac_sha256" ||
			!equal(strings.ToLower(q.Get("signature")), loginSignature(key, "")) {
			errcode = errInvalidSignature
		}
	}
	h.logCall("checksession", errcode)
	if errcode != 0 {
		writeJSON(w, jsonType, http.StatusOK, newWxError(errcode))
		return
	}
	writeJSON(w, jsonType, http.StatusOK, wxError{ErrCode: 0, ErrMsg: "ok"})
}

// subscribeRequest is subscribe/send's request body (page, miniprogram_state
// and lang are taken and ignored).
type subscribeRequest struct {
	ToUser     string         `json:"touser"`
	TemplateID string         `json:"template_id"`
	Data       map[string]any `json:"data"`
}

// subscribeSend serves POST /cgi-bin/message/subscribe/send: the
// access_token must be valid (40001 for one superseded by force_refresh,
// 42001 for an expired one), touser a user of the app who logged in
// (40003) and template_id given (40037). Nothing is delivered.
func (h *Handler) subscribeSend(w http.ResponseWriter, r *http.Request) {
	h.state.count(func(c *counters) { c.SubscribeSend++ })
	appID, errcode := h.state.checkToken(r.URL.Query().Get("access_token"))
	var req subscribeRequest
	if errcode == 0 {
		errcode = h.decodePOST(r, &req)
	}
	switch {
	case errcode != 0:
	case req.ToUser == "" || !h.state.knownOpenID(appID, req.ToUser):
		errcode = errInvalidOpenID
	case req.TemplateID == "":
		errcode = errInvalidTemplateID
	}
	h.logCall("subscribe_send", errcode)
	if errcode != 0 {
		writeJSON(w, jsonType, http.StatusOK, newWxError(errcode))
		return
	}
	writeJSON(w, jsonType, http.StatusOK, wxError{ErrCode: 0, ErrMsg: "ok"})
}
