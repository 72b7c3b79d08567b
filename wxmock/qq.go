package wxmock

import "net/http"

// qqAPI stands in for QQ's mini-program API (api.q.qq.com), which has
// WeChat's shape: GET /sns/jscode2session answered with an errcode. QQ
// documents -1, 40029 and 45011; for the rest it answers with WeChat's
// codes, as here.
type qqAPI struct {
	sealedLikeWeChat
}

// qqRefusals are QQ's errcodes for each refusal. A used code is 40029 too:
// QQ documents no code of its own for it.
var qqRefusals = map[refusal]int{
	noAppID:     errAppIDMissing,
	noSecret:    errSecretMissing,
	noCode:      errCodeMissing,
	badParam:    errInvalidGrantType,
	wrongAppID:  errInvalidAppID,
	wrongSecret: errInvalidAppSecret,
	badCode:     errInvalidCode,
	usedCode:    errInvalidCode,
	busy:        errSystem,
	limited:     errQuota,
}

func (qqAPI) traits() traits {
	return traits{loginPath: "/sns/jscode2session", keySize: wechatKeySize, unionIDs: true, limits: true}
}

// parse reads jscode2session's query.
func (qqAPI) parse(r *http.Request) loginRequest {
	q := r.URL.Query()
	req := loginRequest{appID: q.Get("appid"), secret: q.Get("secret"), code: q.Get("js_code")}
	if q.Get("grant_type") != "authorization_code" {
		req.wrong = "grant_type"
	}
	return req
}

// refuse answers an errcode with HTTP 200, labelled text/plain as WeChat
// labels code2Session.
func (qqAPI) refuse(w http.ResponseWriter, why refusal, _ loginRequest) {
	writeJSON(w, textPlain, http.StatusOK, newWxError(qqRefusals[why]))
}

func (qqAPI) accept(w http.ResponseWriter, u, _ *user) {
	writeJSON(w, textPlain, http.StatusOK, code2SessionReply{OpenID: u.openID, SessionKey: u.sessionKey, UnionID: u.unionID})
}
