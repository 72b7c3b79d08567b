package wxauth

import (
	"errors"

	"github.com/wxauth/caddy-wxauth/token"
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
