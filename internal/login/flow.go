package login

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/wxauth/caddy-wxauth/internal/apierr"
	"github.com/wxauth/caddy-wxauth/internal/clock"
	"github.com/wxauth/caddy-wxauth/internal/users"
	"github.com/wxauth/caddy-wxauth/session"
)

// App is the app hook's side of a login: it is asked before anything is
// stored, so a failing hook leaves no session behind.
type App interface {
	// AskLogin tells the app of the login of session s by the user id
	// names, who has claims, first when it is the user's first login, and
	// returns the claims change the app answered (nil for none). Its error
	// is the contract's: hook_failed, or the app's own refusal.
	AskLogin(ctx context.Context, log *zap.Logger, s *session.Session, id *Identity, claims map[string]any, first bool) (change map[string]any, err error)
}

// Config is what a Flow needs, given once at provisioning.
type Config struct {
	// Provider exchanges the code.
	Provider Provider
	// Store keeps the codes in use (see Do), under Prefix.
	Store  session.Store
	Prefix string // the app's key prefix in Store
	// Sessions stores the session and the newest session key.
	Sessions *session.Manager
	// Users keeps the user records: first login, claims, ended_at.
	Users *users.Store
	// Keys names the user records and session keys.
	Keys users.KeyRule
	// App is asked about each login; nil when the app hook does not take
	// login events.
	App App
	// TTL is how long a new session and its session key are kept (token_ttl).
	TTL time.Duration
	// Timeout bounds each store operation.
	Timeout time.Duration
	// Now is the clock; nil means clock.Real.
	Now clock.Clock
}

// Flow is the login: a code in, a stored session out.
type Flow struct {
	cfg    Config
	flight *flight
}

// New returns the login flow of cfg.
func New(cfg Config) *Flow {
	if cfg.Now == nil {
		cfg.Now = clock.Real
	}
	return &Flow{cfg: cfg, flight: newFlight(cfg.Store, cfg.Prefix, cfg.Users.Live, cfg.Now, cfg.Timeout)}
}

// Do returns the session that code makes. One code makes at most one
// session across every instance that shares the store: a concurrent or
// repeated login with the same code and the same nonce gets that session,
// any other one is refused (invalid_code). Errors are *apierr.Error.
func (f *Flow) Do(ctx context.Context, log *zap.Logger, code Code, nonce string) (*session.Session, error) {
	key := code.Code
	if code.AnonymousCode != "" {
		// Either code alone is another login, so the pair is the key.
		key += "\x00" + code.AnonymousCode
	}
	return f.flight.do(ctx, key, nonce, func(ctx context.Context) (*session.Session, error) {
		return f.login(ctx, log, code)
	})
}

// login exchanges code at the provider and makes the session. With the app
// hook's login event, the app answers before anything else is stored, so a
// failing hook leaves no session behind.
func (f *Flow) login(ctx context.Context, log *zap.Logger, code Code) (_ *session.Session, err error) {
	begun := f.cfg.Now().UTC()
	id, err := f.cfg.Provider.Exchange(ctx, log, code)
	if err != nil {
		return nil, err
	}
	user := f.cfg.Keys.Key(id.Platform, id.AppID, id.OpenID, id.UnionID)
	s := &session.Session{ID: session.NewID(), OpenID: id.OpenID, UnionID: id.UnionID, Created: begun,
		Platform: id.Platform, AppID: id.AppID, Surface: id.Surface, Anonymous: id.Anonymous, User: user}
	hooked := f.cfg.App != nil
	var u *users.Record
	var first bool
	sctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	if hooked {
		u, first, err = f.cfg.Users.ClaimFirst(sctx, user, s.ID)
	} else {
		u, err = f.cfg.Users.Get(sctx, user)
	}
	cancel()
	if err != nil {
		return nil, apierr.StoreUnavailable
	}
	if first {
		defer func() {
			if err != nil {
				f.giveBackFirst(ctx, log, s)
			}
		}()
	}
	var change map[string]any
	if hooked {
		if change, err = f.cfg.App.AskLogin(ctx, log, s, id, u.Claims, first); err != nil {
			return nil, err
		}
	}
	// The store's time starts after the hook, so a slow hook cannot use it up.
	sctx, cancel = context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	// The platform has already replaced the user's session key, so it is
	// stored first: a failure after this leaves no session, only the
	// current key. Some logins have none (Alipay, web logins).
	if id.SessionKey != "" {
		skey := f.cfg.Keys.Local(id.Platform, id.AppID, id.OpenID)
		if err := f.cfg.Sessions.SetSessionKey(sctx, skey, id.SessionKey, f.cfg.TTL); err != nil {
			log.Error("storing session_key failed", zap.Error(err))
			return nil, apierr.StoreUnavailable
		}
	}
	if err := f.cfg.Sessions.Add(sctx, s, f.cfg.TTL); err != nil {
		log.Error("storing session failed", zap.Error(err))
		return nil, apierr.StoreUnavailable
	}
	// Read again after the session is stored: the app may have ended the
	// user's sessions while it answered.
	if first || !u.Seen || change != nil {
		u, err = f.cfg.Users.ApplyClaims(sctx, user, change, users.SeenBy(s.ID))
	} else {
		u, err = f.cfg.Users.Get(sctx, user)
	}
	if err != nil {
		log.Error("storing the user failed", zap.Error(err))
		return nil, apierr.StoreUnavailable
	}
	if u.Ended(s) {
		return nil, apierr.InvalidToken("the session has ended")
	}
	if local := f.cfg.Keys.Local(id.Platform, id.AppID, id.OpenID); local != user {
		// So that the app can name the person by this openid too.
		if err := f.cfg.Users.Link(sctx, local, user); err != nil {
			log.Error("storing the user's link failed", zap.Error(err))
			return nil, apierr.StoreUnavailable
		}
	}
	s.Claims = u.Claims
	return s, nil
}

// giveBackFirst gives back the first-login claim of s, whose login failed.
// It runs even when the client hung up, which may be why it failed.
func (f *Flow) giveBackFirst(ctx context.Context, log *zap.Logger, s *session.Session) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.cfg.Timeout)
	defer cancel()
	if err := f.cfg.Users.GiveBackFirst(ctx, s.UserKey(), s.ID); err != nil {
		log.Warn("giving back a failed first login failed; no later login of the user will be the first", zap.Error(err))
	}
}
