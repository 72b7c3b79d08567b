package wxmock

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// refusal is why a stand-in refuses a login call, in wxmock's terms; each
// platform answers it in its own shape.
type refusal int

// The refusals; 0 is none.
const (
	noAppID     refusal = iota + 1 // the app id is missing
	noSecret                       // the secret is missing
	noCode                         // the login code is missing
	badParam                       // another parameter is wrong (grant_type, the body)
	wrongAppID                     // not the platform block's app_id
	wrongSecret                    // not the platform block's app_secret
	badCode                        // a code wxmock did not issue, or one that expired
	usedCode                       // a code already exchanged
	badAnonCode                    // Douyin's anonymous_code is not good
	busy                           // the platform is busy
	limited                        // the platform's rate limit
)

// refusalNames name the refusals in the log.
var refusalNames = [...]string{"", "no app id", "no secret", "no code", "bad parameter", "wrong app id",
	"wrong secret", "bad code", "used code", "bad anonymous code", "busy", "rate limited"}

// String names the refusal; "" is none.
func (why refusal) String() string { return refusalNames[why] }

// loginRequest is what a login call carried.
type loginRequest struct {
	appID, secret, code string
	// anonCode is Douyin's anonymous_code.
	anonCode string
	// wrong names a parameter that is wrong (a grant_type, a body that is
	// not JSON); empty when none is.
	wrong string
}

// traits are a platform's fixed properties.
type traits struct {
	// loginPath is the login API's path on the platform.
	loginPath string
	// method is the login API's only method; empty takes any.
	method string
	// keySize is the length of its session keys.
	keySize int
	// unionIDs tells whether its login answers give unionids.
	unionIDs bool
	// limits tells whether it documents a rate-limit refusal, so that the
	// code "limit" means one.
	limits bool
}

// standIn is a platform's API as its stand-in answers it. Each platform's
// file (qq.go, douyin.go, baidu.go, kuaishou.go) has one.
type standIn interface {
	// traits returns the platform's fixed properties.
	traits() traits
	// parse reads a login call.
	parse(r *http.Request) loginRequest
	// refuse answers a refused login call in the platform's shape.
	refuse(w http.ResponseWriter, why refusal, req loginRequest)
	// accept answers a login: u logged in with the code, anon with
	// Douyin's anonymous_code; either may be nil.
	accept(w http.ResponseWriter, u, anon *user)
	// userInfo is getUserInfo's answer for u, who is name, in appID.
	userInfo(u user, name, appID string, now time.Time) (any, error)
	// phone is getPhoneNumber's answer carrying phone for u in appID.
	phone(u user, phone, appID string, now time.Time) (any, error)
}

// anonymousPrefix starts the name behind an anonymous_code, so that a
// device's anonymous openid is not its user's openid.
const anonymousPrefix = "anonymous/"

// serveLogin answers a platform's login call the way every stand-in does:
// the parameters and the app first, then the special codes, then the
// exchange of wxmock's own codes (or, with any_code, of any other).
func (h *Handler) serveLogin(w http.ResponseWriter, r *http.Request, s *site) {
	t := s.api.traits()
	if t.method != "" && !allow(w, r, t.method) {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	req := s.api.parse(r)
	why := s.check(req)
	if why == 0 {
		var done bool
		if why, done = h.special(w, r, s, req); done {
			return
		}
	}
	var u, anon *user
	if why == 0 && req.code != "" {
		u, why = redeem(s.state, req.code, req.appID, h.AnyCode, badCode)
	}
	if why == 0 && req.anonCode != "" && s.anon != nil {
		anyUser := ""
		if h.AnyCode != "" {
			anyUser = anonymousPrefix + h.AnyCode
		}
		anon, why = redeem(s.anon, req.anonCode, req.appID, anyUser, badAnonCode)
	}
	h.logPlatformCall(s.name, why)
	if why != 0 {
		s.api.refuse(w, why, req)
		return
	}
	s.api.accept(w, u, anon)
}

// check checks a login call's parameters and app as the platforms do:
// missing ones first, then the configured ones.
func (s *site) check(req loginRequest) refusal {
	switch {
	case req.appID == "":
		return noAppID
	case req.secret == "":
		return noSecret
	case req.code == "" && req.anonCode == "":
		return noCode
	case req.wrong != "":
		return badParam
	case s.cfg.AppID != "" && req.appID != s.cfg.AppID:
		return wrongAppID
	case s.cfg.AppSecret != "" && !equal(req.secret, s.cfg.AppSecret):
		return wrongSecret
	}
	return 0
}

// special answers the codes that fail on purpose, which mean the same on
// every platform (see the package doc): it returns the refusal they mean,
// or done when it answered itself.
func (h *Handler) special(w http.ResponseWriter, r *http.Request, s *site, req loginRequest) (why refusal, done bool) {
	code, bad, used := req.code, badCode, usedCode
	if code == "" {
		code, bad, used = req.anonCode, badAnonCode, badAnonCode
	}
	switch code {
	case "invalid":
		return bad, false
	case "used":
		return used, false
	case "busy":
		return busy, false
	case "limit":
		if s.api.traits().limits {
			return limited, false
		}
	case "html":
		h.logPlatformCall(s.name, busy)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = io.WriteString(w, badGatewayPage)
		return 0, true
	case "slow":
		t := time.NewTimer(slowDelay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
		}
		return bad, false
	case "reset":
		hangUp(w)
		return 0, true
	}
	return 0, false
}

// redeem exchanges a code with st; a code it does not take is bad.
func redeem(st *state, code, appID, anyUser string, bad refusal) (*user, refusal) {
	u, errcode := st.exchange(code, appID, anyUser)
	switch {
	case errcode == 0:
		return &u, 0
	case errcode == errCodeUsed && bad == badCode:
		return nil, usedCode
	}
	return nil, bad
}

// logPlatformCall notes a platform API call at debug level: which platform
// and how it ended, never codes, secrets or keys.
func (h *Handler) logPlatformCall(platform string, why refusal) {
	if ce := h.logger.Check(zapcore.DebugLevel, "platform api call"); ce != nil {
		ce.Write(zap.String("platform", platform), zap.Stringer("refusal", why))
	}
}

// anonymousCodeReply carries Douyin's anonymous_code.
type anonymousCodeReply struct {
	AnonymousCode string `json:"anonymous_code"`
}

// devPlatformLogin serves /<platform>/wxmock/login: a one-time code, as the
// platform's login gives one (Douyin, with anonymous=1: an
// anonymous_code).
func (h *Handler) devPlatformLogin(w http.ResponseWriter, r *http.Request, s *site) {
	if !allow(w, r, http.MethodGet, http.MethodPost) {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	t := s.api.traits()
	key := param(r, "session_key", "")
	if key != "" && !validKey(key, t.keySize) {
		writeJSON(w, jsonType, http.StatusBadRequest, devError{fmt.Sprintf("session_key must be base64 of %d bytes", t.keySize)})
		return
	}
	name := param(r, "user", "demo")
	if s.anon != nil && param(r, "anonymous", "0") == "1" {
		writeJSON(w, jsonType, http.StatusOK, anonymousCodeReply{s.anon.newLoginCode(anonymousPrefix+name, "", false)})
		return
	}
	withUnionID := t.unionIDs && param(r, "unionid", "1") != "0"
	writeJSON(w, jsonType, http.StatusOK, codeReply{s.state.newLoginCode(name, key, withUnionID)})
}

// devPlatformSealed serves /<platform>/wxmock/userinfo and
// /<platform>/wxmock/phone: the user's profile, or a phone number, sealed
// with the user's current session key as the platform's getUserInfo and
// getPhoneNumber give them.
func (h *Handler) devPlatformSealed(w http.ResponseWriter, r *http.Request, s *site, phone bool) {
	if !allow(w, r, http.MethodGet) {
		return
	}
	name := param(r, "user", "demo")
	u, ok := s.state.userByName(name)
	if !ok {
		writeJSON(w, jsonType, http.StatusNotFound, devError{fmt.Sprintf("user %q has not logged in on %s", name, s.name)})
		return
	}
	appID, now := param(r, "appid", u.appID), s.state.now()
	var reply any
	var err error
	if phone {
		reply, err = s.api.phone(u, param(r, "phone", "13800138000"), appID, now)
	} else {
		reply, err = s.api.userInfo(u, name, appID, now)
	}
	if err != nil {
		writeJSON(w, jsonType, http.StatusInternalServerError, devError{"cannot seal the data: " + err.Error()})
		return
	}
	writeJSON(w, jsonType, http.StatusOK, reply)
}

// sealedLikeWeChat gives the getUserInfo and getPhoneNumber answers of a
// platform that seals them as WeChat does (QQ, Douyin, Kuaishou): a
// platform's stand-in embeds it.
type sealedLikeWeChat struct{}

// userInfo is WeChat's getUserInfo answer (see sealedUserInfo).
func (sealedLikeWeChat) userInfo(u user, name, appID string, now time.Time) (any, error) {
	return sealedUserInfo(u, name, appID, now)
}

// sealedPhone is a getPhoneNumber answer: encryptedData and its iv.
type sealedPhone struct {
	EncryptedData string `json:"encryptedData"`
	IV            string `json:"iv"`
}

// phone is the getPhoneNumber answer that WeChat's encryptedData way
// gives: phoneNumber, purePhoneNumber, countryCode and a watermark naming
// appID, sealed with u's session key.
func (sealedLikeWeChat) phone(u user, phone, appID string, now time.Time) (any, error) {
	plain, err := json.Marshal(phoneInfo{
		PhoneNumber: phone, PurePhoneNumber: phone, CountryCode: "86",
		Watermark: watermark{Timestamp: now.Unix(), AppID: appID},
	})
	if err != nil {
		return nil, err
	}
	enc, iv, err := encrypt(u.sessionKey, plain)
	return sealedPhone{EncryptedData: enc, IV: iv}, err
}
