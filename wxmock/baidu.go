package wxmock

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// baiduAPI stands in for Baidu's smart program API (spapi.baidu.com): POST
// /oauth/jscode2sessionkey with the form code, client_id (the AppKey) and
// sk. A bad parameter is answered, as Baidu documents, with HTTP 200 and
// {errno: 10010100, error, error_description}; a wrong app or code in
// Baidu OAuth's form, HTTP 400 and {error, error_description}. Baidu's
// session keys are 24 bytes (AES-192) and its login gives no unionid.
type baiduAPI struct{}

// baiduKeySize is the length of Baidu's session keys.
const baiduKeySize = 24

func (baiduAPI) traits() traits {
	return traits{loginPath: "/oauth/jscode2sessionkey", method: http.MethodPost, keySize: baiduKeySize, limits: true}
}

// parse reads jscode2sessionkey's form (or query: Baidu takes both).
func (baiduAPI) parse(r *http.Request) loginRequest {
	return loginRequest{appID: r.FormValue("client_id"), secret: r.FormValue("sk"), code: r.FormValue("code")}
}

// baiduError is Baidu's refusal; Errno is absent in the OAuth form.
type baiduError struct {
	Errno            int    `json:"errno,omitempty"`
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

// baiduMissing is Baidu's documented refusal of a missing parameter.
func baiduMissing(field string) baiduError {
	return baiduError{Errno: 10010100, Error: "parameter is invalid",
		ErrorDescription: fmt.Sprintf("Key: 'Code2SessionKeyParam.%s' Error:Field validation for '%[1]s' failed on the 'required' tag", field)}
}

func (baiduAPI) refuse(w http.ResponseWriter, why refusal, req loginRequest) {
	status, e := http.StatusOK, baiduError{}
	switch why {
	case noAppID:
		e = baiduMissing("ClientID")
	case noSecret:
		e = baiduMissing("Sk")
	case noCode:
		e = baiduMissing("Code")
	case wrongAppID:
		status, e = http.StatusBadRequest, baiduError{Error: "invalid_client", ErrorDescription: "unknown client id"}
	case wrongSecret:
		status, e = http.StatusBadRequest, baiduError{Error: "invalid_client", ErrorDescription: "Client authentication failed"}
	case badCode, usedCode:
		// Baidu quotes the code, which a client must keep out of its logs.
		status, e = http.StatusBadRequest, baiduError{Error: "invalid_grant", ErrorDescription: "Invalid authorization code: " + req.code}
	case limited:
		e = baiduError{Errno: 5010003, Error: "访问量超过接口最大 QPS"}
	default:
		e = baiduError{Errno: 5010004, Error: "服务异常，请稍后再试"}
	}
	writeJSON(w, jsonType, status, e)
}

// baiduSession is jscode2sessionkey's success answer.
type baiduSession struct {
	OpenID     string `json:"openid"`
	SessionKey string `json:"session_key"`
}

func (baiduAPI) accept(w http.ResponseWriter, u, _ *user) {
	writeJSON(w, jsonType, http.StatusOK, baiduSession{OpenID: u.openID, SessionKey: u.sessionKey})
}

// baiduProfile is swan.getUserInfo's public userInfo.
type baiduProfile struct {
	NickName  string `json:"nickName"`
	AvatarURL string `json:"avatarUrl"`
	Gender    int    `json:"gender"`
}

// baiduUserInfo is swan.getUserInfo's answer: Baidu calls the sealed data
// "data"; encryptedData carries the same, under the name wxauth's decrypt
// endpoint takes.
type baiduUserInfo struct {
	UserInfo      baiduProfile `json:"userInfo"`
	Data          string       `json:"data"`
	EncryptedData string       `json:"encryptedData"`
	IV            string       `json:"iv"`
}

// userInfo seals the plaintext of Baidu's published sample's shape
// (openid, nickname, headimgurl, sex) for appID.
func (baiduAPI) userInfo(u user, name, appID string, _ time.Time) (any, error) {
	avatar := "https://wxmock.invalid/avatar/" + url.PathEscape(name) + ".png"
	plain, err := json.Marshal(map[string]any{"openid": u.openID, "nickname": name, "headimgurl": avatar, "sex": 1})
	if err != nil {
		return nil, err
	}
	enc, iv, err := sealBaidu(u.sessionKey, appID, plain)
	return baiduUserInfo{UserInfo: baiduProfile{NickName: name, AvatarURL: avatar, Gender: 1}, Data: enc, EncryptedData: enc, IV: iv}, err
}

// phone seals {"mobile"}, Baidu's phone number plaintext, for appID.
func (baiduAPI) phone(u user, phone, appID string, _ time.Time) (any, error) {
	plain, err := json.Marshal(map[string]string{"mobile": phone})
	if err != nil {
		return nil, err
	}
	enc, iv, err := sealBaidu(u.sessionKey, appID, plain)
	return sealedPhone{EncryptedData: enc, IV: iv}, err
}

// sealBaidu seals data as Baidu does: 16 random bytes, the data's length
// (4 bytes, big-endian), the data and the AppKey, padded to 32-byte blocks
// with bytes holding the pad's length, then AES-192-CBC with the base64
// session key and a random iv. Written apart from wxauth's reading of it,
// so the mock does not test the client with the client's own code.
func sealBaidu(sessionKey, appKey string, data []byte) (encryptedData, iv string, err error) {
	key, err := base64.StdEncoding.DecodeString(sessionKey)
	if err != nil || len(key) != baiduKeySize {
		return "", "", fmt.Errorf("session_key is not base64 of %d bytes", baiduKeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return "", "", err
	}
	buf := make([]byte, 20, 20+len(data)+len(appKey)+32)
	_, _ = rand.Read(buf[:16])
	binary.BigEndian.PutUint32(buf[16:], uint32(len(data)))
	buf = append(append(buf, data...), appKey...)
	pad := 32 - len(buf)%32
	buf = append(buf, bytes.Repeat([]byte{byte(pad)}, pad)...)
	ivb := make([]byte, aes.BlockSize)
	_, _ = rand.Read(ivb)
	cipher.NewCBCEncrypter(block, ivb).CryptBlocks(buf, buf)
	return base64.StdEncoding.EncodeToString(buf), base64.StdEncoding.EncodeToString(ivb), nil
}
