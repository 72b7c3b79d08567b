package wxauth

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/wxauth/caddy-wxauth/internal/apierr"
	"github.com/wxauth/caddy-wxauth/internal/guard"
	"github.com/wxauth/caddy-wxauth/internal/hook"
	"github.com/wxauth/caddy-wxauth/internal/strictjson"
	"go.uber.org/zap"

	"github.com/wxauth/caddy-wxauth/internal/login"

	"github.com/wxauth/caddy-wxauth/session"
)

// sessionKey returns the newest session_key of the caller's openid.
func (h *Handler) sessionKey(ctx context.Context, id *guard.Identity) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	key, err := h.sessions.SessionKey(ctx, h.sessionKeyName(id.Platform(), id.AppID(), id.OpenID()))
	if errors.Is(err, session.ErrNotFound) {
		return "", apierr.InvalidToken("no session_key is kept for this user any more; call " + loginCall(id.Platform()) + " and log in again")
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
	dec, ok := h.callerProvider(id).(login.Decrypter)
	if !ok {
		return errNoUserData(id)
	}
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
	key, err := h.sessionKey(r.Context(), id)
	if err != nil {
		return err
	}
	data, err := dec.DecryptUserData(key, login.Encrypted{Data: req.EncryptedData, IV: req.IV, RawData: req.RawData, Signature: req.Signature})
	if err != nil {
		return err
	}
	if h.AppHook.wants(hookDecrypt) {
		if err := h.tellApp(r, id, hookDecrypt, func(ev *hook.Event) { ev.Data = decryptedData(data) }); err != nil {
			return err
		}
	}
	return writeRaw(w, data)
}

// servePhone resolves a getPhoneNumber code with the managed access_token,
// naming the caller's openid so WeChat refuses another user's code. With
// the app hook's phone event, the number reaches the app before the client.
func (h *Handler) servePhone(w http.ResponseWriter, r *http.Request, id *guard.Identity) error {
	switch p := h.callerProvider(id).(type) {
	case login.PhoneNumberer:
		return h.servePhoneCode(w, r, id, p)
	case login.EncryptedPhoner:
		return h.servePhoneSealed(w, r, id, func(body []byte) (json.RawMessage, error) {
			var req decryptRequest
			if err := strictjson.Decode(body, &req, "encryptedData", "iv"); err != nil || req.EncryptedData == "" || req.IV == "" {
				return nil, apierr.InvalidRequest(`"encryptedData" and "iv" from the getPhoneNumber button are required`)
			}
			key, err := h.sessionKey(r.Context(), id)
			if err != nil {
				return nil, err
			}
			return p.PhoneFromEncrypted(key, login.Encrypted{Data: req.EncryptedData, IV: req.IV})
		})
	case login.SealedPhoner:
		return h.servePhoneSealed(w, r, id, p.OpenPhone)
	}
	return errNoUserData(id)
}

// callerProvider is the login provider of the caller's platform.
func (h *Handler) callerProvider(id *guard.Identity) login.Provider {
	if pl, ok := h.logins[id.Platform()]; ok && id.Surface() == "mp" && !id.Anonymous() {
		return pl.provider
	}
	return nil // a web login has no mini-program's user data, a guest no session key
}

// errNoUserData answers a decrypt or phone request of a login that has no
// such operation: Alipay has no session key, a web login no mini-program.
func errNoUserData(id *guard.Identity) error {
	if id.Surface() != "mp" {
		return apierr.Unsupported("a web login has no mini-program user data or phone button: decrypt and phone are for mini-program logins")
	}
	if id.Anonymous() {
		return apierr.Unsupported("a guest logged in by anonymous_code has no session key: log in with tt.login's code first")
	}
	return apierr.Unsupported(id.Platform() + " has no such operation: it gives no session key to decrypt user data with")
}

// servePhoneSealed answers a phone number the client got sealed from its
// platform, opened by open: counted like a code (phone_limit), and handed
// to the app first with the app hook's phone event.
func (h *Handler) servePhoneSealed(w http.ResponseWriter, r *http.Request, id *guard.Identity, open func([]byte) (json.RawMessage, error)) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return bodyError(err)
	}
	refund, err := h.reservePhone(r.Context(), id.User())
	if err != nil {
		return err
	}
	info, err := open(body)
	if err != nil {
		refund()
		if ae := apierr.As(err); ae.Status >= http.StatusInternalServerError && h.app.logGate.Due(id.Platform()+" "+ae.Message) {
			// The app's keys, not the user: the operator must see it, once
			// a minute however often users ask.
			h.requestLogger(r).Error("phone number could not be opened", zap.String("platform", id.Platform()),
				zap.String("error", ae.Code), zap.String("message", ae.Message))
		}
		return err
	}
	if h.AppHook.wants(hookPhone) {
		if err := h.tellApp(r, id, hookPhone, func(ev *hook.Event) { ev.Phone = phoneOf(info) }); err != nil {
			return err
		}
	}
	return writeRaw(w, info)
}

// tellApp sends the app the caller's event kind, filled by fill, before
// the client gets its answer, and applies the claims the app answered.
func (h *Handler) tellApp(r *http.Request, id *guard.Identity, kind string, fill func(*hook.Event)) error {
	s, err := h.eventSession(r.Context(), id)
	if err != nil {
		return err
	}
	ev := h.newHookEvent(kind, s, s.Claims)
	fill(ev)
	change, err := h.askApp(r.Context(), h.requestLogger(r), ev)
	if err != nil {
		return err
	}
	return h.afterHook(r.Context(), s, change)
}

// servePhoneCode resolves a getPhoneNumber code (WeChat's).
func (h *Handler) servePhoneCode(w http.ResponseWriter, r *http.Request, id *guard.Identity, phones login.PhoneNumberer) error {
	f, err := readFields(r, "code")
	if err != nil {
		return err
	}
	code := f[0]
	if !validCode(code) {
		return apierr.InvalidRequest(`"code" from the getPhoneNumber button is missing or malformed`)
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
		refund, err := h.reservePhone(r.Context(), id.User())
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
	ev := h.newHookEvent(hookPhone, s, s.Claims)
	ev.ID, ev.Phone = rec.EventID, phoneOf(rec.Info)
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
	checker, canCheck := h.callerProvider(id).(login.SessionChecker)
	reply := sessionReply{OpenID: s.OpenID, UnionID: s.UnionID, ExpiresAt: s.Expires.Unix()}
	key, err := h.sessions.SessionKey(ctx, h.sessionKeyName(id.Platform(), id.AppID(), id.OpenID()))
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
