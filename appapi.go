package wxauth

import (
	"context"
	"errors"
	"io"
	"net/http"
	"slices"

	"github.com/wxauth/caddy-wxauth/internal/apierr"
	"github.com/wxauth/caddy-wxauth/internal/changes"
	"github.com/wxauth/caddy-wxauth/internal/clock"
	"github.com/wxauth/caddy-wxauth/internal/guard"
	"github.com/wxauth/caddy-wxauth/internal/hook"
	"github.com/wxauth/caddy-wxauth/internal/login"
	"github.com/wxauth/caddy-wxauth/internal/platforms"
	"github.com/wxauth/caddy-wxauth/internal/strictjson"
	"github.com/wxauth/caddy-wxauth/internal/users"

	"go.uber.org/zap"

	"github.com/wxauth/caddy-wxauth/session"
)

// App API actions.
const (
	actionSetClaims   = "set_claims"
	actionEndSessions = "end_sessions"
	actionAccessToken = "access_token"
)

// appCall is the body of a call to app_api.
type appCall struct {
	Action string `json:"action"`
	// OpenID names the user, with Platform (default wechat) and AppID
	// (default the platform's one app) when the handler serves several.
	OpenID   string `json:"openid"`
	Platform string `json:"platform"`
	AppID    string `json:"app_id"`
	// UnionID names the person instead, under link_by unionid.
	UnionID string         `json:"unionid"`
	Claims  map[string]any `json:"claims"`
	// Stale is the access_token WeChat refused, access_token action only.
	Stale *string `json:"stale"`
}

// appCallFields are appCall's JSON names, the only ones a call may use.
var appCallFields = []string{"action", "openid", "platform", "app_id", "unionid", "claims", "stale"}

// accessTokenReply answers the access_token action.
type accessTokenReply struct {
	AccessToken string `json:"access_token"`
	ExpiresAt   int64  `json:"expires_at"` // unix seconds
}

// errAppSignature answers an app_api call whose signature does not hold.
var errAppSignature = apierr.New(http.StatusUnauthorized, "invalid_signature",
	"the call is not signed with the app_hook secret, its timestamp is over 5 minutes off, or its webhook-id was used before")

// serveAppAPI takes the app's signed calls: set a user's claims, or end
// every session of a user (a ban, an account deletion, "log out
// everywhere"), which reach every instance within the change bound; or
// get the cluster's access_token, so the app spends no token of its own.
func (h *Handler) serveAppAPI(w http.ResponseWriter, r *http.Request, _ *guard.Identity) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return bodyError(err)
	}
	log := h.requestLogger(r)
	callID, err := h.AppHook.key.Verify(r.Header, body, clock.Real())
	if err != nil {
		log.Info("app_api call refused: bad signature")
		return errAppSignature
	}
	var call appCall
	if err := checkAppCall(body, &call); err != nil {
		return err
	}

	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	// A call is taken once: its id is kept for as long as its timestamp is good.
	fresh, err := h.store.SetNX(ctx, h.prefix+"/app_calls/"+session.HashKey(callID), []byte{1}, 2*hook.Tolerance)
	switch {
	case err != nil:
		return apierr.StoreUnavailable
	case !fresh:
		log.Info("app_api call refused: webhook-id used before")
		return errAppSignature
	}

	if call.Action == actionAccessToken {
		return h.serveAccessToken(w, r, call.Platform, call.Stale)
	}
	keys, err := h.callUsers(ctx, &call)
	if err != nil {
		return err
	}
	for _, key := range keys {
		switch call.Action {
		case actionSetClaims:
			_, err = h.users.ApplyClaims(ctx, key, call.Claims)
		case actionEndSessions:
			err = h.endSessions(ctx, key)
		}
		if err != nil {
			break
		}
	}
	if err != nil {
		log.Error("app_api call failed", zap.String("action", call.Action), zap.Error(err))
		if errors.Is(err, session.ErrInvalidID) {
			return apierr.InvalidRequest(`"openid" is malformed`)
		}
		return apierr.StoreUnavailable
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// callUsers are the keys of the user records a call names: the person of
// a unionid; or an openid of one of the handler's apps, which under
// link_by unionid is also the person it last logged in as (its sessions
// from before the link, or from a login without a unionid, stay its own).
func (h *Handler) callUsers(ctx context.Context, call *appCall) ([]string, error) {
	if call.UnionID != "" {
		if h.LinkBy != "unionid" {
			return nil, apierr.InvalidRequest(`"unionid" names a person under link_by unionid, which this handler does not set; name the user by "openid"`)
		}
		return []string{users.UnionKey(call.UnionID)}, nil
	}
	plt := call.Platform
	if plt == "" {
		plt = platforms.WeChat
	}
	appID := call.AppID
	switch {
	case plt == platforms.WeChat && (appID == "" || appID == h.AppID):
		if appID = h.AppID; appID == "" {
			// No mini-program: the one WeChat app is then a web login's.
			web := h.webAppIDs()
			if len(web) != 1 {
				return nil, apierr.InvalidRequest(`this handler serves no WeChat mini-program: name the user's "platform", or the web login's "app_id"`)
			}
			appID = web[0]
		}
	case plt == platforms.WeChat:
		if !h.servesApp(plt, appID) {
			return nil, apierr.InvalidRequest(`"app_id" is not an app this handler serves`)
		}
	default:
		b, ok := h.Platforms[plt]
		if !ok {
			return nil, apierr.InvalidRequest(`"platform" is not one this handler serves`)
		}
		if appID != "" && appID != b.AppID {
			return nil, apierr.InvalidRequest(`"app_id" is not the app this handler serves on that platform`)
		}
		appID = b.AppID
	}
	local := h.keyRule().Local(plt, appID, call.OpenID)
	if h.LinkBy != "unionid" {
		return []string{local}, nil
	}
	person, err := h.users.Resolve(ctx, local)
	if err != nil {
		return nil, apierr.StoreUnavailable
	}
	if person == local {
		return []string{local}, nil
	}
	return []string{local, person}, nil
}

// webAppIDs lists the distinct app ids of the handler's web logins.
func (h *Handler) webAppIDs() []string {
	var out []string
	for _, a := range h.apps() {
		if a.Platform == platforms.WeChat && a.AppID != h.AppID && !slices.Contains(out, a.AppID) {
			out = append(out, a.AppID)
		}
	}
	return out
}

// servesApp reports whether the handler accepts tokens of appID on plt.
func (h *Handler) servesApp(plt, appID string) bool {
	for _, a := range h.apps() {
		if a.Platform == plt && a.AppID == appID {
			return true
		}
	}
	return false
}

// endSessions ends every session of user key begun until now, on every
// instance.
func (h *Handler) endSessions(ctx context.Context, key string) error {
	at := clock.Real()
	if _, err := h.users.Update(ctx, key, func(u *users.Record) { u.EndedAt = at.UnixNano() }); err != nil {
		return err
	}
	return h.app.changes.Publish(ctx, changes.Event{Type: changes.EndUser, OpenID: key, At: at.UnixNano()})
}

// checkAppCall decodes body into call and checks its fields for its action.
func checkAppCall(body []byte, call *appCall) error {
	if err := strictjson.Decode(body, call, appCallFields...); err != nil {
		return apierr.InvalidRequest(err.Error())
	}
	if call.Action == actionAccessToken {
		if call.OpenID != "" || call.Claims != nil || call.UnionID != "" || call.AppID != "" {
			return apierr.InvalidRequest(`access_token takes no "openid", "unionid", "app_id" or "claims"`)
		}
		if call.Stale != nil && *call.Stale == "" {
			return apierr.InvalidRequest(`"stale" must be the access_token WeChat refused`)
		}
		return nil
	}
	if call.Stale != nil {
		return apierr.InvalidRequest(`"stale" is for the access_token action only`)
	}
	switch {
	case call.UnionID != "" && (call.OpenID != "" || call.Platform != "" || call.AppID != ""):
		return apierr.InvalidRequest(`name the user by "unionid" or by "openid" (with "platform" and "app_id"), not both`)
	case call.UnionID != "" && !users.PlainName(call.UnionID):
		return apierr.InvalidRequest(`"unionid" is malformed`)
	case call.UnionID == "" && !users.PlainName(call.OpenID):
		return apierr.InvalidRequest(`"openid" (or "unionid") is missing or malformed`)
	}
	switch call.Action {
	case actionSetClaims:
		if call.Claims == nil {
			return apierr.InvalidRequest(`set_claims needs a "claims" object`)
		}
		if err := users.CheckClaims(call.Claims); err != nil {
			return apierr.InvalidRequest(err.Error())
		}
	case actionEndSessions:
	default:
		return apierr.InvalidRequest(`"action" must be set_claims, end_sessions or access_token`)
	}
	return nil
}

// serveAccessToken answers the access_token action: the cluster's token,
// or, with stale, its replacement (see login.AccessTokener).
func (h *Handler) serveAccessToken(w http.ResponseWriter, r *http.Request, plt string, stale *string) error {
	pl, err := h.platformLogin(plt)
	if err != nil {
		return err
	}
	at, ok := pl.provider.(login.AccessTokener)
	if !ok {
		return apierr.Unsupported("wxauth hands out WeChat's access_token only; this platform's is not managed here")
	}
	var bad string
	if stale != nil {
		bad = *stale
	}
	tok, exp, err := at.AccessToken(r.Context(), h.requestLogger(r), bad)
	if err != nil {
		return err
	}
	return apierr.WriteJSON(w, http.StatusOK, accessTokenReply{AccessToken: tok, ExpiresAt: exp.Unix()})
}
