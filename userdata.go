package wxauth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/wxauth/caddy-wxauth/internal/apierr"
	"github.com/wxauth/caddy-wxauth/internal/guard"
	"github.com/wxauth/caddy-wxauth/internal/hook"

	"github.com/wxauth/caddy-wxauth/internal/login"

	"github.com/wxauth/caddy-wxauth/session"
)

// sessionKey returns the newest session_key of the caller's openid.
func (h *Handler) sessionKey(ctx context.Context, id *guard.Identity) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	key, err := h.sessions.SessionKey(ctx, id.OpenID())
	if errors.Is(err, session.ErrNotFound) {
		return "", apierr.InvalidToken("no session_key is kept for this user any more; call wx.login and log in again")
	}
	if err != nil {
		return "", apierr.StoreUnavailable
	}
	return key, nil
}

// decryptRequest is the body of the decrypt endpoint.
type decryptRequest struct {
	EncryptedData string `json:"encryptedData"`
	IV            string `json:"iv"`
	RawData       string `json:"rawData"`
	Signature     string `json:"signature"`
}

// serveDecrypt decrypts encryptedData with the user's newest session_key.
func (h *Handler) serveDecrypt(w http.ResponseWriter, r *http.Request, id *guard.Identity) error {
	var req decryptRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.EncryptedData == "" || req.IV == "" {
		return apierr.InvalidRequest(`"encryptedData" and "iv" are required`)
	}
	if (req.RawData == "") != (req.Signature == "") {
		return apierr.InvalidRequest(`"rawData" and "signature" go together`)
	}
	dec, ok := h.provider.(login.Decrypter)
	if !ok {
		return apierr.Internal // a platform without it serves no decrypt endpoint
	}
	key, err := h.sessionKey(r.Context(), id)
	if err != nil {
		return err
	}
	data, err := dec.DecryptUserData(key, login.Encrypted{Data: req.EncryptedData, IV: req.IV, RawData: req.RawData, Signature: req.Signature})
	if err != nil {
		return err
	}
	if h.AppHook.wants(hookDecrypt) {
		s, err := h.eventSession(r.Context(), id)
		if err != nil {
			return err
		}
		ev := h.newHookEvent(hookDecrypt, s, s.Claims)
		ev.Data = decryptedData(data)
		change, err := h.askApp(r.Context(), h.requestLogger(r), ev)
		if err != nil {
			return err
		}
		if err := h.afterHook(r.Context(), s, change); err != nil {
			return err
		}
	}
	return writeRaw(w, data)
}

// servePhone resolves a getPhoneNumber code with the managed access_token,
// naming the caller's openid so WeChat refuses another user's code. With
// the app hook's phone event, the number reaches the app before the client.
func (h *Handler) servePhone(w http.ResponseWriter, r *http.Request, id *guard.Identity) error {
	f, err := readFields(r, "code")
	if err != nil {
		return err
	}
	code := f[0]
	if !validCode(code) {
		return apierr.InvalidRequest(`"code" from the getPhoneNumber button is missing or malformed`)
	}
	phones, ok := h.provider.(login.PhoneNumberer)
	if !ok {
		return apierr.Internal // a platform without it serves no phone endpoint
	}
	log := h.requestLogger(r)
	wantsEvent := h.AppHook.wants(hookPhone)
	var rec *phoneRecord
	if wantsEvent {
		sctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
		rec = h.keptPhone(sctx, code, id.OpenID())
		cancel()
	}
	if rec == nil {
		// Only a call that goes to WeChat counts; a kept answer does not.
		refund, err := h.reservePhone(r.Context(), id.OpenID())
		if err != nil {
			return err
		}
		info, asked, err := phones.PhoneNumber(r.Context(), log, code, id.OpenID())
		if !asked {
			refund() // WeChat was not asked (no access_token)
		}
		if err != nil {
			return err
		}
		if !wantsEvent {
			return writeRaw(w, info)
		}
		rec = &phoneRecord{OpenID: id.OpenID(), EventID: hook.NewEventID(), Info: info}
		// Kept until the app took it: the code is single-use and billed.
		if b, err := json.Marshal(rec); err == nil {
			sctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
			_ = h.store.Set(sctx, h.phoneKey(code), b, phoneRetryWindow)
			cancel()
		}
	}
	s, err := h.eventSession(r.Context(), id)
	if err != nil {
		return err
	}
	var phone phoneEventData
	_ = json.Unmarshal(rec.Info, &phone)
	ev := h.newHookEvent(hookPhone, s, s.Claims)
	ev.ID, ev.Phone = rec.EventID, phone
	change, err := h.askApp(r.Context(), log, ev)
	if err != nil && !isRefusal(err) {
		return err // kept for a retry with the same code
	}
	// Taken or refused: the app has decided, nothing is kept for a retry.
	sctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	_ = h.store.Delete(sctx, h.phoneKey(code))
	cancel()
	if err != nil {
		return err
	}
	if err := h.afterHook(r.Context(), s, change); err != nil {
		return err
	}
	return writeRaw(w, rec.Info)
}

// eventSession reads the caller's session for an event.
func (h *Handler) eventSession(ctx context.Context, id *guard.Identity) (*session.Session, error) {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	return h.callerSession(ctx, id)
}

// sessionReply is the answer of the session endpoint.
type sessionReply struct {
	OpenID          string `json:"openid"`
	UnionID         string `json:"unionid,omitempty"`
	ExpiresAt       int64  `json:"expires_at"`
	SessionKeyValid bool   `json:"session_key_valid"`
}

// serveSession tells the mini-program about its session and whether WeChat
// still holds its session_key (else wx.login is due before decrypting).
func (h *Handler) serveSession(w http.ResponseWriter, r *http.Request, id *guard.Identity) error {
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	s, err := h.callerSession(ctx, id)
	if err != nil {
		return err
	}
	// A platform that cannot be asked leaves session_key_valid false, so
	// the client logs in again before it decrypts.
	checker, canCheck := h.provider.(login.SessionChecker)
	reply := sessionReply{OpenID: s.OpenID, UnionID: s.UnionID, ExpiresAt: s.Expires.Unix()}
	key, err := h.sessions.SessionKey(ctx, s.OpenID)
	switch {
	case errors.Is(err, session.ErrNotFound):
	case err != nil:
		return apierr.StoreUnavailable
	case canCheck:
		valid, err := h.sessionKeyValid(r.Context(), s, key, func() (bool, error) {
			return checker.CheckSessionKey(r.Context(), s.OpenID, key)
		})
		if err != nil {
			return err
		}
		reply.SessionKeyValid = valid
	}
	return apierr.WriteJSON(w, http.StatusOK, reply)
}

// serveJWKS publishes the public EdDSA keys for upstream verification.
func (h *Handler) serveJWKS(w http.ResponseWriter, _ *http.Request, _ *guard.Identity) error {
	t, err := h.signer()
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "max-age=300")
	_, err = w.Write(t.Keyring().JWKS())
	return err
}

func writeRaw(w http.ResponseWriter, body []byte) error {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, err := w.Write(body)
	return err
}
