package wxmock

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// devError is the body of a failed developer endpoint call.
type devError struct {
	Error string `json:"error"`
}

// allow answers 405 unless r uses one of methods.
func allow(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	writeJSON(w, jsonType, http.StatusMethodNotAllowed, devError{"method not allowed"})
	return false
}

// param returns a query or form value, or def when it is empty.
func param(r *http.Request, name, def string) string {
	if v := r.FormValue(name); v != "" {
		return v
	}
	return def
}

// codeReply carries a one-time code.
type codeReply struct {
	Code string `json:"code"`
}

// devLogin serves /wxmock/login: a one-time code, as wx.login gives one.
func (h *Handler) devLogin(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodGet, http.MethodPost) {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	key := param(r, "session_key", "")
	if key != "" && !validSessionKey(key) {
		writeJSON(w, jsonType, http.StatusBadRequest, devError{"session_key must be base64 of 16 bytes"})
		return
	}
	code := h.state.newLoginCode(param(r, "user", "demo"), key, param(r, "unionid", "1") != "0")
	writeJSON(w, jsonType, http.StatusOK, codeReply{code})
}

// profile is the public part of wx.getUserInfo's data: its rawData.
type profile struct {
	NickName  string `json:"nickName"`
	Gender    int    `json:"gender"`
	Language  string `json:"language"`
	City      string `json:"city"`
	Province  string `json:"province"`
	Country   string `json:"country"`
	AvatarURL string `json:"avatarUrl"`
}

// userInfo is the plaintext of wx.getUserInfo's encryptedData.
type userInfo struct {
	OpenID string `json:"openId"`
	profile
	UnionID   string    `json:"unionId,omitempty"`
	Watermark watermark `json:"watermark"`
}

// userInfoReply is what wx.getUserInfo hands a mini-program.
type userInfoReply struct {
	EncryptedData string `json:"encryptedData"`
	IV            string `json:"iv"`
	RawData       string `json:"rawData"`
	Signature     string `json:"signature"`
}

// devUserInfo serves GET /wxmock/userinfo: the user's profile encrypted with
// the current session_key, as wx.getUserInfo gives it.
func (h *Handler) devUserInfo(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodGet) {
		return
	}
	name := param(r, "user", "demo")
	u, ok := h.state.userByName(name)
	if !ok {
		writeJSON(w, jsonType, http.StatusNotFound, devError{fmt.Sprintf("user %q has not logged in", name)})
		return
	}
	reply, err := sealedUserInfo(u, name, param(r, "appid", u.appID), h.state.now())
	if err != nil {
		writeJSON(w, jsonType, http.StatusInternalServerError, devError{"cannot seal user info"})
		return
	}
	writeJSON(w, jsonType, http.StatusOK, reply)
}

// demoProfile is the profile wxmock gives the user name: the public part
// of getUserInfo's data, its rawData.
func demoProfile(name string) profile {
	return profile{
		NickName:  name,
		Gender:    1,
		Language:  "zh_CN",
		City:      "Guangzhou",
		Province:  "Guangdong",
		Country:   "CN",
		AvatarURL: "https://wxmock.invalid/avatar/" + url.PathEscape(name) + ".png",
	}
}

// sealedUserInfo is what getUserInfo gives a mini-program on a platform
// that seals user data as WeChat does (WeChat, QQ, Douyin, Kuaishou): the
// profile of u, who is name, as rawData with its signature, and as
// encryptedData with the openid, unionid and a watermark naming appID,
// sealed with u's session key.
func sealedUserInfo(u user, name, appID string, now time.Time) (userInfoReply, error) {
	p := demoProfile(name)
	info := userInfo{
		OpenID:    u.openID,
		profile:   p,
		UnionID:   u.unionID,
		Watermark: watermark{Timestamp: now.Unix(), AppID: appID},
	}
	raw, err := json.Marshal(p)
	if err != nil {
		return userInfoReply{}, err
	}
	plain, err := json.Marshal(info)
	if err != nil {
		return userInfoReply{}, err
	}
	enc, iv, err := encrypt(u.sessionKey, plain)
	if err != nil {
		return userInfoReply{}, err
	}
	return userInfoReply{
		EncryptedData: enc,
		IV:            iv,
		RawData:       string(raw),
		Signature:     rawDataSignature(string(raw), u.sessionKey),
	}, nil
}

// devPhoneCode serves GET /wxmock/phonecode: a one-time code, as the
// getPhoneNumber button gives one; with user=<name>, the code belongs to
// that user, so a call naming another openid is refused.
func (h *Handler) devPhoneCode(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodGet) {
		return
	}
	var openID string
	if name := r.URL.Query().Get("user"); name != "" {
		u, ok := h.state.userByName(name)
		if !ok {
			writeJSON(w, jsonType, http.StatusNotFound, map[string]string{"error": "no such user; log in first"})
			return
		}
		openID = u.openID
	}
	code := h.state.newPhoneCode(param(r, "phone", "13800138000"), param(r, "cc", "") == "num", openID)
	writeJSON(w, jsonType, http.StatusOK, codeReply{code})
}

// devExpireTokens serves POST /wxmock/expire_tokens.
func (h *Handler) devExpireTokens(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodPost) {
		return
	}
	h.state.expireTokens()
	w.WriteHeader(http.StatusNoContent)
}

// devStats serves GET /wxmock/stats.
func (h *Handler) devStats(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodGet) {
		return
	}
	writeJSON(w, jsonType, http.StatusOK, h.state.snapshot())
}

// devReset serves POST /wxmock/reset.
func (h *Handler) devReset(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodPost) {
		return
	}
	h.state.reset()
	w.WriteHeader(http.StatusNoContent)
}
