package wxmock

import "net/http"

// kuaishouAPI stands in for Kuaishou's mini-program API (open.kuaishou.com):
// POST /oauth2/mp/code2session with a form, answered with HTTP 200 and a
// result, 1 for success, else the open platform's OAuth codes. Kuaishou
// documents no rate-limit refusal for it, so "limit" is an ordinary bad
// code here; its login gives no unionid.
type kuaishouAPI struct {
	sealedLikeWeChat
}

// kuaishouErr is a result code of Kuaishou's with its error_msg.
type kuaishouErr struct {
	Result   int    `json:"result"`
	ErrorMsg string `json:"error_msg"`
}

// kuaishouRefusals are Kuaishou's result codes for each refusal.
var kuaishouRefusals = map[refusal]kuaishouErr{
	noAppID:     {100200100, "请求缺少参数或参数类型错误"},
	noSecret:    {100200100, "请求缺少参数或参数类型错误"},
	noCode:      {100200100, "请求缺少参数或参数类型错误"},
	wrongAppID:  {100200101, "无效的client"},
	wrongSecret: {100200101, "无效的client"},
	badCode:     {100200105, "请求的 code 错误"},
	usedCode:    {100200105, "请求的 code 错误"},
	busy:        {100200500, "服务内部错误"},
}

// kuaishouType is how Kuaishou labels its JSON.
const kuaishouType = "application/json;charset=UTF-8"

func (kuaishouAPI) traits() traits {
	return traits{loginPath: "/oauth2/mp/code2session", method: http.MethodPost, keySize: wechatKeySize}
}

// parse reads code2session's form (or query).
func (kuaishouAPI) parse(r *http.Request) loginRequest {
	return loginRequest{appID: r.FormValue("app_id"), secret: r.FormValue("app_secret"), code: r.FormValue("js_code")}
}

func (kuaishouAPI) refuse(w http.ResponseWriter, why refusal, _ loginRequest) {
	writeJSON(w, kuaishouType, http.StatusOK, kuaishouRefusals[why])
}

// kuaishouSession is code2session's success answer.
type kuaishouSession struct {
	Result     int    `json:"result"`
	SessionKey string `json:"session_key"`
	OpenID     string `json:"open_id"`
}

func (kuaishouAPI) accept(w http.ResponseWriter, u, _ *user) {
	writeJSON(w, kuaishouType, http.StatusOK, kuaishouSession{Result: 1, SessionKey: u.sessionKey, OpenID: u.openID})
}
