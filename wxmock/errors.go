package wxmock

// WeChat errcodes the mock answers, with WeChat's errmsg texts.
const (
	errSystem            = -1
	errInvalidCredential = 40001
	errInvalidOpenID     = 40003
	errInvalidGrantType  = 40002
	errInvalidAppID      = 40013
	errInvalidTemplateID = 40037
	errInvalidCode       = 40029
	errInvalidAppSecret  = 40125
	errCodeUsed          = 40163
	errRiskyUser         = 40226
	errAppIDMissing      = 41002
	errSecretMissing     = 41004
	errCodeMissing       = 41008
	errTokenExpired      = 42001
	errRequirePOST       = 43002
	errQuota             = 45011
	errDataFormat        = 47001
	errInvalidSignature  = 87009
)

var errMsgs = map[int]string{
	errSystem:            "system error",
	errInvalidCredential: "invalid credential, access_token is invalid or not latest",
	errInvalidOpenID:     "invalid openid",
	errInvalidGrantType:  "invalid grant_type",
	errInvalidAppID:      "invalid appid",
	errInvalidTemplateID: "invalid template_id",
	errInvalidCode:       "invalid code",
	errInvalidAppSecret:  "invalid appsecret",
	errCodeUsed:          "code been used",
	errRiskyUser:         "high risk user",
	errAppIDMissing:      "appid missing",
	errSecretMissing:     "appsecret missing",
	errCodeMissing:       "missing code",
	errTokenExpired:      "access_token expired",
	errRequirePOST:       "require POST method",
	errQuota:             "api minute-quota reach limit",
	errDataFormat:        "data format error",
	errInvalidSignature:  "invalid signature",
}

// wxError is WeChat's error body.
type wxError struct {
	ErrCode int    `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
}

func newWxError(code int) wxError {
	return wxError{ErrCode: code, ErrMsg: errMsgs[code]}
}
