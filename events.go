package wxauth

import (
	"bytes"
	"context"
	"encoding/json"
	"time"

	"github.com/wxauth/caddy-wxauth/internal/apierr"
	"github.com/wxauth/caddy-wxauth/internal/changes"
	"github.com/wxauth/caddy-wxauth/internal/hook"

	"go.uber.org/zap"

	"github.com/wxauth/caddy-wxauth/session"
)

// newHookEvent starts the event kind of session s.
func (h *Handler) newHookEvent(kind string, s *session.Session, claims map[string]any) *hook.Event {
	if claims == nil {
		claims = map[string]any{}
	}
	return &hook.Event{
		ID: hook.NewEventID(), Event: kind, Time: time.Now().Unix(),
		AppID: h.AppID, OpenID: s.OpenID, UnionID: s.UnionID, SID: s.ID, Claims: claims,
	}
}

// askApp sends ev to the app hook and returns the claims change it
// answered. A failure is the contract's 502 hook_failed.
func (h *Handler) askApp(ctx context.Context, log *zap.Logger, ev *hook.Event) (map[string]any, error) {
	change, err := h.AppHook.client.Send(ctx, ev)
	if err != nil {
		log.Warn("app hook failed", zap.String("event", ev.Event), zap.Error(err))
		return nil, hookFailed()
	}
	return change, nil
}

// claimsFeed tells every instance of a user's new claims, through the
// app's change feed.
type claimsFeed struct{ app *appState }

func (f claimsFeed) ClaimsChanged(ctx context.Context, openid string, claims map[string]any) error {
	return f.app.changes.Publish(ctx, changes.Event{Type: changes.Claims, OpenID: openid, Claims: claims})
}

// loginHook asks the app hook about a login, for login.Flow.
type loginHook struct{ h *Handler }

func (a loginHook) AskLogin(ctx context.Context, log *zap.Logger, s *session.Session, claims map[string]any, first bool) (map[string]any, error) {
	ev := a.h.newHookEvent(hookLogin, s, claims)
	ev.FirstLogin = &first
	return a.h.askApp(ctx, log, ev)
}

// afterHook applies the claims the app answered for the caller's session s,
// then checks that s is still live: an answer that arrives after the
// session ended never brings it back.
func (h *Handler) afterHook(ctx context.Context, s *session.Session, change map[string]any) error {
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	if change != nil {
		if _, err := h.users.ApplyClaims(sctx, s.OpenID, change); err != nil {
			return apierr.StoreUnavailable
		}
	}
	if _, err := h.callerSessionOf(sctx, s.ID); err != nil {
		return err
	}
	return nil
}

// sendLogout tells the app, once and in the background, that s ended.
func (h *Handler) sendLogout(s *session.Session, claims map[string]any) {
	if !h.AppHook.wants(hookLogout) {
		return
	}
	ev := h.newHookEvent(hookLogout, s, claims)
	h.bg.Go("event logout", func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(h.AppHook.Timeout))
		defer cancel()
		if _, err := h.AppHook.client.Send(ctx, ev); err != nil {
			h.logger.Info("app hook did not take a logout event (not retried)", zap.Error(err))
		}
	})
}

// phoneRetryWindow is how long a phone code's answer is kept when the app
// hook failed, so the client can retry with the same (single-use, billed)
// code without a second WeChat call.
const phoneRetryWindow = 5 * time.Minute

// phoneRecord is a phone answer kept for a retry.
type phoneRecord struct {
	OpenID  string          `json:"openid"`
	EventID string          `json:"event_id"`
	Info    json.RawMessage `json:"info"`
}

func (h *Handler) phoneKey(code string) string {
	return h.prefix + "/phone_codes/" + hash(code)
}

// keptPhone returns the answer kept for code, if the caller's openid asked it.
func (h *Handler) keptPhone(ctx context.Context, code, openid string) *phoneRecord {
	b, err := h.store.Get(ctx, h.phoneKey(code))
	if err != nil {
		return nil
	}
	var rec phoneRecord
	if json.Unmarshal(b, &rec) != nil || rec.OpenID != openid {
		return nil
	}
	return &rec
}

// phoneEventData is the phone part of a phone event: the verified number.
type phoneEventData struct {
	PhoneNumber     string `json:"phoneNumber"`
	PurePhoneNumber string `json:"purePhoneNumber"`
	CountryCode     any    `json:"countryCode"`
}

// decryptedData is the decrypted object without its watermark.
func decryptedData(raw []byte) map[string]any {
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if dec.Decode(&m) != nil {
		return nil
	}
	delete(m, "watermark")
	return m
}
