package wxauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"time"

	"github.com/wxauth/caddy-wxauth/internal/apierr"
	"github.com/wxauth/caddy-wxauth/internal/changes"
	"github.com/wxauth/caddy-wxauth/internal/clock"
	"github.com/wxauth/caddy-wxauth/internal/hook"
	"github.com/wxauth/caddy-wxauth/internal/login"
	"github.com/wxauth/caddy-wxauth/internal/users"
	"github.com/wxauth/caddy-wxauth/session"
	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2"
)

// Events the app hook can receive.
const (
	hookLogin   = "login"
	hookPhone   = "phone"
	hookDecrypt = "decrypt"
	hookLogout  = "logout"
	// hookUserInfo carries the profile a web login's sns/userinfo gave.
	hookUserInfo = "userinfo"
)

// AppHook sends the app behind Caddy what only wxauth can verify: logins,
// phone numbers, decrypted data and logouts, signed the Standard Webhooks
// way. The app's JSON answer to login, phone and decrypt sets claims on
// the user (every session of the openid); a null value removes one.
type AppHook struct {
	// URL the events are POSTed to.
	URL string `json:"url"`
	// The signing secret, "whsec_<base64>" (Standard Webhooks form).
	// Required; {env.*} and {file.*} placeholders work. The same secret
	// signs the app's calls to app_api.
	Secret string `json:"secret"`
	// Events to send: any of login, phone, decrypt, logout, userinfo (the
	// profile a web login's sns/userinfo gave). Default: login.
	Events []string `json:"events,omitempty"`
	// How long to wait for the app on each event. Default 3s.
	Timeout caddy.Duration `json:"timeout,omitempty"`
	// Header names for claims, e.g. {"uid": "X-User-Id"}. A claim without
	// an entry reaches upstream as X-Wx-<Claim>. Client copies of every
	// mapped header are removed like the X-Wx-* ones.
	ClaimHeaders map[string]string `json:"claim_headers,omitempty"`

	secret string   // Secret with its placeholders replaced
	key    hook.Key // checks the app's calls to app_api
	client *hook.Client
}

// protectedHeaders cannot carry claims: wxauth's own identity headers and
// headers the request needs (the client's copies are removed).
var protectedHeaders = map[string]bool{
	"X-Wx-Openid": true, "X-Wx-Unionid": true, "Authorization": true, "Cookie": true, "Host": true,
	"Content-Type": true, "Content-Length": true, "Transfer-Encoding": true, "Connection": true,
}

func (ah *AppHook) provision() error {
	u, err := url.Parse(ah.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("wxauth: app_hook %q is not an http(s) URL", ah.URL)
	}
	if ah.Secret == "" {
		return fmt.Errorf("wxauth: app_hook needs a secret (whsec_...), so the app can tell wxauth's events from forged ones")
	}
	if ah.key, err = hook.ParseSecret(ah.secret); err != nil {
		return fmt.Errorf("wxauth: app_hook secret: %v", err)
	}
	if len(ah.Events) == 0 {
		ah.Events = []string{hookLogin}
	}
	for _, e := range ah.Events {
		switch e {
		case hookLogin, hookPhone, hookDecrypt, hookLogout, hookUserInfo:
		default:
			return fmt.Errorf("wxauth: app_hook events: unknown event %q (want login, phone, decrypt, logout or userinfo)", e)
		}
	}
	if ah.Timeout == 0 {
		ah.Timeout = caddy.Duration(3 * time.Second)
	}
	if ah.Timeout < 0 {
		return fmt.Errorf("wxauth: app_hook timeout must not be negative")
	}
	for claim, header := range ah.ClaimHeaders {
		if users.CheckClaims(map[string]any{claim: true}) != nil {
			return fmt.Errorf("wxauth: app_hook claim_header: claim %q cannot be mapped", claim)
		}
		if !users.PlainName(header) || protectedHeaders[textproto.CanonicalMIMEHeaderKey(header)] {
			return fmt.Errorf("wxauth: app_hook claim_header: %q cannot carry a claim", header)
		}
	}
	ah.client = hook.New(hook.Config{URL: ah.URL, Key: ah.key, Timeout: time.Duration(ah.Timeout), CheckClaims: users.CheckClaims})
	return nil
}

// wants reports whether the app asked for event.
func (ah *AppHook) wants(event string) bool {
	return ah != nil && slices.Contains(ah.Events, event)
}

func hookFailed() *apierr.Error {
	return apierr.New(http.StatusBadGateway, "hook_failed", "the app did not accept this event; nothing was handed out, try again")
}

// newHookEvent starts the event kind of session s.
func (h *Handler) newHookEvent(kind string, s *session.Session, claims map[string]any) *hook.Event {
	if claims == nil {
		claims = map[string]any{}
	}
	return &hook.Event{
		ID: hook.NewEventID(), Event: kind, Time: clock.Real().Unix(),
		AppID: h.appOf(s), Platform: s.PlatformName(), Surface: s.SurfaceName(), Anonymous: s.Anonymous,
		OpenID: s.OpenID, UnionID: s.UnionID, SID: s.ID, Claims: claims,
	}
}

// appOf is the app s logged in to.
func (h *Handler) appOf(s *session.Session) string {
	if s.AppID != "" {
		return s.AppID
	}
	return h.AppID
}

// refusedByApp is the contract's answer to the app's refusal r: 403 with
// the app's error name and message, and "refused_by": "app".
func refusedByApp(r *hook.Refusal) *apierr.Error {
	msg := r.Message
	if msg == "" {
		msg = "the app refused this request"
	}
	return apierr.New(http.StatusForbidden, r.Name, msg).WithRefusedBy(refusedByAppName)
}

// refusedByAppName is the "refused_by" of the app's refusals.
const refusedByAppName = "app"

// isRefusal reports whether err is the app's refusal, as askApp answers it.
func isRefusal(err error) bool {
	var ae *apierr.Error
	return errors.As(err, &ae) && ae.RefusedBy != ""
}

// askApp sends ev to the app hook and returns the claims change it
// answered. The app's refusal (403 with its error and message) is answered
// as such with "refused_by": "app"; any other failure is the contract's
// 502 hook_failed.
func (h *Handler) askApp(ctx context.Context, log *zap.Logger, ev *hook.Event) (map[string]any, error) {
	change, err := h.sendHook(ctx, ev)
	var r *hook.Refusal
	switch {
	case errors.As(err, &r):
		log.Info("app hook refused the event", zap.String("event", ev.Event), zap.String("error", r.Name))
		return nil, refusedByApp(r)
	case err != nil:
		log.Warn("app hook failed", zap.String("event", ev.Event), zap.Error(err))
		return nil, hookFailed()
	}
	return change, nil
}

// sendHook sends ev to the app hook, measured (see observeHook).
func (h *Handler) sendHook(ctx context.Context, ev *hook.Event) (map[string]any, error) {
	start := clock.Real()
	change, err := h.AppHook.client.Send(ctx, ev)
	observeHook(ev.Event, clock.Real().Sub(start), err)
	return change, err
}

// claimsFeed tells every instance of a user's new claims, through the
// app's change feed.
type claimsFeed struct{ app *appState }

func (f claimsFeed) ClaimsChanged(ctx context.Context, openid string, claims map[string]any) error {
	return f.app.changes.Publish(ctx, changes.Event{Type: changes.Claims, OpenID: openid, Claims: claims})
}

// loginHook asks the app hook about a login, for login.Flow.
type loginHook struct{ h *Handler }

func (a loginHook) AskLogin(ctx context.Context, log *zap.Logger, s *session.Session, id *login.Identity, claims map[string]any, first bool) (map[string]any, error) {
	ev := a.h.newHookEvent(hookLogin, s, claims)
	ev.FirstLogin = &first
	ev.AnonymousOpenID = id.AnonymousOpenID
	return a.h.askApp(ctx, log, ev)
}

// afterHook applies the claims the app answered for the caller's session s,
// then checks that s is still live: an answer that arrives after the
// session ended never brings it back.
func (h *Handler) afterHook(ctx context.Context, s *session.Session, change map[string]any) error {
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	if change != nil {
		if _, err := h.users.ApplyClaims(sctx, s.UserKey(), change); err != nil {
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
		if _, err := h.sendHook(ctx, ev); err != nil {
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
	return h.prefix + "/phone_codes/" + session.HashKey(code)
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

// phoneOf is the phone event's number from a phone answer: WeChat's
// phone_info, or the other platforms' {phone_number, pure_phone_number,
// country_code}.
func phoneOf(info []byte) phoneEventData {
	var wx phoneEventData
	var other struct {
		PhoneNumber     string `json:"phone_number"`
		PurePhoneNumber string `json:"pure_phone_number"`
		CountryCode     any    `json:"country_code"`
	}
	_ = json.Unmarshal(info, &wx)
	if wx.PhoneNumber == "" && json.Unmarshal(info, &other) == nil {
		wx = phoneEventData{PhoneNumber: other.PhoneNumber, PurePhoneNumber: other.PurePhoneNumber, CountryCode: other.CountryCode}
	}
	return wx
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
