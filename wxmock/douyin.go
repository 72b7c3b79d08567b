package wxmock

import (
	"encoding/json"
	"net/http"
)

// douyinAPI stands in for Douyin's mini-program API (developer.toutiao.com):
// POST /api/apps/v2/jscode2session with a JSON body, answered with HTTP 200,
// err_no and err_tips, and the session in data.
type douyinAPI struct {
	sealedLikeWeChat
}

// douyinErr is an err_no of Douyin's with its err_tips.
type douyinErr struct {
	no   int
	tips string
}

// douyinRefusals are Douyin's err_no values for each refusal: 40014 for
// parameters, 40015 a bad appid, 40017 a bad secret, 40018 a bad code,
// 40019 a bad anonymous_code, -1 busy, and the open platform's common
// 28003018 for a request rate too high.
var douyinRefusals = map[refusal]douyinErr{
	noAppID:     {40014, "bad params"},
	noSecret:    {40014, "bad params"},
	noCode:      {40014, "bad params"},
	badParam:    {40014, "bad params"},
	wrongAppID:  {40015, "bad appid"},
	wrongSecret: {40017, "bad secret"},
	badCode:     {40018, "bad code"},
	usedCode:    {40018, "bad code"},
	badAnonCode: {40019, "bad anonymous_code"},
	busy:        {-1, "system error"},
	limited:     {28003018, "request too frequent"},
}

func (douyinAPI) traits() traits {
	return traits{loginPath: "/api/apps/v2/jscode2session", method: http.MethodPost, keySize: wechatKeySize, unionIDs: true, limits: true}
}

// douyinLogin is jscode2session's body.
type douyinLogin struct {
	AppID         string `json:"appid"`
	Secret        string `json:"secret"`
	Code          string `json:"code"`
	AnonymousCode string `json:"anonymous_code"`
}

func (douyinAPI) parse(r *http.Request) loginRequest {
	var b douyinLogin
	if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
		return loginRequest{wrong: "body"}
	}
	return loginRequest{appID: b.AppID, secret: b.Secret, code: b.Code, anonCode: b.AnonymousCode}
}

// douyinData is the session in jscode2session's answer; a refusal carries
// it empty.
type douyinData struct {
	SessionKey      string `json:"session_key"`
	OpenID          string `json:"openid"`
	AnonymousOpenID string `json:"anonymous_openid"`
	UnionID         string `json:"unionid"`
}

// douyinReply is jscode2session's answer.
type douyinReply struct {
	ErrNo   int        `json:"err_no"`
	ErrTips string     `json:"err_tips"`
	LogID   string     `json:"log_id"`
	Data    douyinData `json:"data"`
}

func (douyinAPI) refuse(w http.ResponseWriter, why refusal, _ loginRequest) {
	e := douyinRefusals[why]
	writeJSON(w, jsonType, http.StatusOK, douyinReply{ErrNo: e.no, ErrTips: e.tips, LogID: randomToken(12)})
}

// accept answers the user's openid, session_key and unionid for a code,
// the device's anonymous_openid for an anonymous_code.
func (douyinAPI) accept(w http.ResponseWriter, u, anon *user) {
	var d douyinData
	if u != nil {
		d.OpenID, d.SessionKey, d.UnionID = u.openID, u.sessionKey, u.unionID
	}
	if anon != nil {
		d.AnonymousOpenID = anon.openID
	}
	writeJSON(w, jsonType, http.StatusOK, douyinReply{ErrTips: "success", LogID: randomToken(12), Data: d})
}
