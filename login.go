package wxauth

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/wxauth/caddy-wxauth/internal/apierr"
	"github.com/wxauth/caddy-wxauth/internal/changes"

	"go.uber.org/zap"

	"github.com/wxauth/caddy-wxauth/session"
	"github.com/wxauth/caddy-wxauth/token"
)

// storeTimeout bounds each store operation of an endpoint.
const storeTimeout = 3 * time.Second

// loginReply is the contract's answer to login and refresh.
type loginReply struct {
	Token     string `json:"token"`
	TokenType string `json:"token_type"`
	ExpiresIn int64  `json:"expires_in"`
	OpenID    string `json:"openid"`
	UnionID   string `json:"unionid,omitempty"`
}

// serveLogin exchanges a wx.login code for a session and a token.
func (h *Handler) serveLogin(w http.ResponseWriter, r *http.Request, _ *identity) error {
	reply, err := h.loginRequest(r)
	countLogin(err)
	if err != nil {
		return err
	}
	return apierr.WriteJSON(w, http.StatusOK, reply)
}

func (h *Handler) loginRequest(r *http.Request) (*loginReply, error) {
	if err := h.checkLoginLimit(r); err != nil {
		return nil, err
	}
	f, err := readFields(r, "code", "nonce")
	if err != nil {
		return nil, err
	}
	code, nonce := f[0], f[1]
	if !validCode(code) {
		return nil, apierr.InvalidRequest(`"code" from wx.login is missing or malformed`)
	}
	if nonce != "" && !validNonce(nonce) {
		return nil, apierr.InvalidRequest(`"nonce" must be 16 to 64 characters of A-Z, a-z, 0-9, '_' and '-'`)
	}
	// Without keys the token could not be signed: keep the user's code.
	if _, err := h.signer(); err != nil {
		return nil, err
	}
	log := h.requestLogger(r)
	s, err := h.logins.do(r.Context(), code, nonce, func(ctx context.Context) (*session.Session, error) {
		return h.login(ctx, log, code)
	})
	if err != nil {
		return nil, err
	}
	return h.issue(s)
}

// login exchanges code at WeChat and makes the session. With the app
// hook's login event, the app answers before anything else is stored, so a
// failing hook leaves no session behind.
func (h *Handler) login(ctx context.Context, log *zap.Logger, code string) (_ *session.Session, err error) {
	begun := time.Now().UTC()
	ws, err := h.wx.Code2Session(ctx, code)
	if err != nil {
		log.Info("login refused by WeChat", zap.Error(err))
		return nil, wechatError(err)
	}
	s := &session.Session{ID: session.NewID(), OpenID: ws.OpenID, UnionID: ws.UnionID, Created: begun}
	hooked := h.AppHook.wants(hookLogin)
	var u *userRecord
	var first bool
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	if hooked {
		u, first, err = h.claimFirst(sctx, ws.OpenID, s.ID)
	} else {
		u, err = h.user(sctx, ws.OpenID)
	}
	cancel()
	if err != nil {
		return nil, apierr.StoreUnavailable
	}
	if first {
		defer func() {
			if err != nil {
				h.giveBackFirstOf(ctx, log, s)
			}
		}()
	}
	var change map[string]any
	if hooked {
		ev := h.newHookEvent(hookLogin, s, u.Claims)
		ev.FirstLogin = &first
		if change, err = h.askApp(ctx, log, ev); err != nil {
			return nil, err
		}
	}
	ttl := time.Duration(h.TokenTTL)
	// The store's time starts after the hook, so a slow hook cannot use it up.
	sctx, cancel = context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	// WeChat has already replaced the user's session_key, so it is stored
	// first: a failure after this leaves no session, only the current key.
	if err := h.sessions.SetSessionKey(sctx, ws.OpenID, ws.SessionKey, ttl); err != nil {
		log.Error("storing session_key failed", zap.Error(err))
		return nil, apierr.StoreUnavailable
	}
	if err := h.sessions.Add(sctx, s, ttl); err != nil {
		log.Error("storing session failed", zap.Error(err))
		return nil, apierr.StoreUnavailable
	}
	// Read again after the session is stored: the app may have ended the
	// user's sessions while it answered.
	if first || !u.Seen || change != nil {
		u, err = h.applyClaims(sctx, ws.OpenID, change, seenBy(s.ID))
	} else {
		u, err = h.user(sctx, ws.OpenID)
	}
	if err != nil {
		log.Error("storing the user failed", zap.Error(err))
		return nil, apierr.StoreUnavailable
	}
	if u.ended(s) {
		return nil, apierr.InvalidToken("the session has ended")
	}
	s.Claims = u.Claims
	return s, nil
}

// giveBackFirstOf gives back the first-login claim of s, whose login
// failed. It runs even when the client hung up, which may be why it failed.
func (h *Handler) giveBackFirstOf(ctx context.Context, log *zap.Logger, s *session.Session) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	if err := h.giveBackFirst(ctx, s.OpenID, s.ID); err != nil {
		log.Warn("giving back a failed first login failed; no later login of the user will be the first", zap.Error(err))
	}
}

// issue signs a token for s, which expires after token_ttl or at the
// session's age limit, whichever comes first.
func (h *Handler) issue(s *session.Session) (*loginReply, error) {
	t, err := h.signer()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tok, exp, err := t.IssueUntil(s.OpenID, s.UnionID, s.ID, tokenClaims(s.Claims), now, s.Created.Add(time.Duration(h.SessionMaxAge)))
	if errors.Is(err, token.ErrNoLifetime) {
		return nil, apierr.InvalidToken("the session has reached session_max_age; call wx.login and log in again")
	}
	if err != nil {
		return nil, err
	}
	return &loginReply{
		Token:     tok,
		TokenType: "Bearer",
		// exp - iat, both whole seconds: token_ttl exactly unless capped.
		ExpiresIn: exp.Unix() - now.Unix(),
		OpenID:    s.OpenID,
		UnionID:   s.UnionID,
	}, nil
}

// callerSession loads the session of the caller's token, with the user's
// current claims.
func (h *Handler) callerSession(ctx context.Context, id *identity) (*session.Session, error) {
	return h.callerSessionOf(ctx, id.sid)
}

// callerSessionOf loads session sid, with the user's current claims.
func (h *Handler) callerSessionOf(ctx context.Context, sid string) (*session.Session, error) {
	s, err := h.liveSession(ctx, sid)
	if errors.Is(err, session.ErrNotFound) {
		return nil, apierr.InvalidToken("the session has ended")
	}
	if err != nil {
		return nil, apierr.StoreUnavailable
	}
	return s, nil
}

// serveRefresh issues a new token for the caller's session.
func (h *Handler) serveRefresh(w http.ResponseWriter, r *http.Request, id *identity) error {
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	s, err := h.callerSession(ctx, id)
	if err != nil {
		return err
	}
	ttl := time.Duration(h.TokenTTL)
	if err := h.sessions.Extend(ctx, s, ttl); err != nil {
		if errors.Is(err, session.ErrNotFound) {
			// Ended meanwhile, or at its age limit.
			return apierr.InvalidToken("the session has ended")
		}
		return apierr.StoreUnavailable
	}
	if key, err := h.sessions.SessionKey(ctx, s.OpenID); err == nil {
		// Keep the newest session_key as long as the session that may use it.
		_ = h.sessions.SetSessionKey(ctx, s.OpenID, key, ttl)
	}
	reply, err := h.issue(s)
	if err != nil {
		return err
	}
	return apierr.WriteJSON(w, http.StatusOK, reply)
}

// serveLogout ends the caller's session everywhere.
func (h *Handler) serveLogout(w http.ResponseWriter, r *http.Request, id *identity) error {
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	s, err := h.callerSession(ctx, id)
	if err != nil {
		return err
	}
	if err := h.sessions.Revoke(ctx, id.sid); err != nil {
		h.requestLogger(r).Error("ending session failed", zap.Error(err))
		return apierr.StoreUnavailable
	}
	// Refused here at once, and by every instance once the event is read.
	if err := h.app.changes.Publish(ctx, changes.Event{Type: changes.EndSession, OpenID: id.openid, SID: id.sid}); err != nil {
		h.requestLogger(r).Error("publishing the logout failed; retrying in the background", zap.Error(err))
		return apierr.StoreUnavailable
	}
	h.sendLogout(s, s.Claims)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
	return nil
}
