package wxauth

import (
	"errors"

	"github.com/wxauth/caddy-wxauth/token"
	"github.com/wxauth/caddy-wxauth/wechat"
)

// tokenReason tells the client why its token was refused, from the kind
// of the verification error; it never echoes the token or a key.
func tokenReason(err error) string {
	switch {
	case errors.Is(err, token.ErrExpired):
		return "the token has expired"
	case errors.Is(err, token.ErrMalformed):
		return "the token is not valid: it is not a well-formed token"
	case errors.Is(err, token.ErrUnknownKey):
		return "the token is not valid: it is signed with a key this server does not hold; log in again"
	case errors.Is(err, token.ErrBadSignature):
		return "the token is not valid: bad signature"
	case errors.Is(err, token.ErrAudience):
		return "the token is not valid: it was issued for another app"
	case errors.Is(err, token.ErrClaims):
		return "the token is not valid: missing or bad claims"
	}
	return "the token is not valid"
}

// decryptReason tells the client why its encryptedData did not decrypt,
// from the kind of the decrypt error; it never echoes the data or a key.
func decryptReason(err error) string {
	const stale = "; if the data came before the latest wx.login, fetch it again"
	switch {
	case errors.Is(err, wechat.ErrBadIV):
		return `"iv" is not base64 of 16 bytes`
	case errors.Is(err, wechat.ErrBadData):
		return `"encryptedData" is not base64 of whole 16-byte blocks`
	case errors.Is(err, wechat.ErrBadPadding), errors.Is(err, wechat.ErrNotJSON):
		return "the data does not decrypt with the user's newest session_key" + stale
	case errors.Is(err, wechat.ErrWatermark):
		return "the data's watermark is missing or names another mini-program"
	case errors.Is(err, wechat.ErrBadKey):
		return "the kept session_key is not usable; call wx.login and log in again"
	}
	return "the data does not decrypt" + stale
}
