package login

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/wxauth/caddy-wxauth/internal/apierr"
	"github.com/wxauth/caddy-wxauth/internal/users"
	"github.com/wxauth/caddy-wxauth/session"
)

// fakeProvider names user "o-<user>" for code "<user>.<n>", or refuses with err.
type fakeProvider struct{ err error }

func (p fakeProvider) Exchange(_ context.Context, _ *zap.Logger, c Code) (*Identity, error) {
	if p.err != nil {
		return nil, p.err
	}
	user, _, _ := strings.Cut(c.Code, ".")
	return &Identity{Platform: "wechat", AppID: "app", OpenID: "o-" + user, SessionKey: "key-" + c.Code}, nil
}

// fakeApp records the logins it is asked about and answers with claims or err.
type fakeApp struct {
	firsts []bool
	claims map[string]any
	err    error
	during func() // runs while the app answers
}

func (a *fakeApp) AskLogin(_ context.Context, _ *zap.Logger, _ *session.Session, _ *Identity, _ map[string]any, first bool) (map[string]any, error) {
	a.firsts = append(a.firsts, first)
	if a.during != nil {
		a.during()
	}
	return a.claims, a.err
}

type flowFixture struct {
	store    *session.Memory
	sessions *session.Manager
	users    *users.Store
}

func newFlowFixture() *flowFixture {
	f := &flowFixture{store: session.NewMemory()}
	f.sessions = session.NewManager(f.store, "wxauth/app")
	f.users = users.New(users.Config{Store: f.store, Prefix: "wxauth/app", TTL: time.Hour, Sessions: f.sessions})
	return f
}

func (f *flowFixture) flow(p Provider, app App) *Flow {
	return New(Config{Provider: p, Store: f.store, Prefix: "wxauth/app", Sessions: f.sessions, Users: f.users,
		App: app, TTL: time.Hour, Timeout: time.Second, Keys: users.KeyRule{PrimaryApp: "app"}})
}

func TestFlowLogin(t *testing.T) {
	ctx := context.Background()
	f := newFlowFixture()
	app := &fakeApp{claims: map[string]any{"uid": "7"}}
	fl := f.flow(fakeProvider{}, app)
	s, err := fl.Do(ctx, zap.NewNop(), Code{Code: "alice.1"}, "")
	if err != nil || s.OpenID != "o-alice" || s.Claims["uid"] != "7" {
		t.Fatalf("got %+v, %v", s, err)
	}
	if key, err := f.sessions.SessionKey(ctx, "o-alice"); err != nil || key != "key-alice.1" {
		t.Fatalf("session_key %q %v", key, err)
	}
	if _, err := fl.Do(ctx, zap.NewNop(), Code{Code: "alice.2"}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := f.flow(fakeProvider{}, app).Do(ctx, zap.NewNop(), Code{Code: "alice.3"}, ""); err != nil {
		t.Fatalf("the user on another instance: %v", err)
	}
	if len(app.firsts) != 3 || !app.firsts[0] || app.firsts[1] || app.firsts[2] {
		t.Fatalf("first_login answers %v, want true once", app.firsts)
	}
}

// A failing hook leaves no session and gives the first login back.
func TestFlowHookFails(t *testing.T) {
	ctx := context.Background()
	f := newFlowFixture()
	hookFailed := apierr.New(http.StatusBadGateway, "hook_failed", "the app hook failed")
	app := &fakeApp{err: hookFailed}
	if _, err := f.flow(fakeProvider{}, app).Do(ctx, zap.NewNop(), Code{Code: "bob.1"}, ""); err != hookFailed {
		t.Fatalf("got %v", err)
	}
	if _, err := f.sessions.SessionKey(ctx, "o-bob"); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("a session_key was kept: %v", err)
	}
	app.err = nil
	if _, err := f.flow(fakeProvider{}, app).Do(ctx, zap.NewNop(), Code{Code: "bob.2"}, ""); err != nil {
		t.Fatal(err)
	}
	if len(app.firsts) != 2 || !app.firsts[0] || !app.firsts[1] {
		t.Fatalf("first_login answers %v, want true again after the failure", app.firsts)
	}
}

// The provider's error is the answer, and nothing is stored.
func TestFlowProviderRefuses(t *testing.T) {
	f := newFlowFixture()
	refused := apierr.New(http.StatusUnauthorized, "invalid_code", "no").WithErrCode(40029)
	if _, err := f.flow(fakeProvider{err: refused}, nil).Do(context.Background(), zap.NewNop(), Code{Code: "carol"}, ""); err != refused {
		t.Fatalf("got %v", err)
	}
	if u, err := f.users.Get(context.Background(), "o-carol"); err != nil || u.Seen {
		t.Fatalf("user %+v %v", u, err)
	}
}

// Sessions the app ends while it answers are not handed out.
func TestFlowEndedWhileAsked(t *testing.T) {
	ctx := context.Background()
	f := newFlowFixture()
	app := &fakeApp{}
	app.during = func() {
		at := time.Now().Add(time.Second).UnixNano()
		if _, err := f.users.Update(ctx, "o-dave", func(u *users.Record) { u.EndedAt = at }); err != nil {
			t.Error(err)
		}
	}
	_, err := f.flow(fakeProvider{}, app).Do(ctx, zap.NewNop(), Code{Code: "dave"}, "")
	var e *apierr.Error
	if !errors.As(err, &e) || e.Code != "invalid_token" {
		t.Fatalf("got %v, want invalid_token", err)
	}
}

// identityProvider names whoever its identity says, for any code.
type identityProvider struct{ id Identity }

func (p identityProvider) Exchange(context.Context, *zap.Logger, Code) (*Identity, error) {
	id := p.id
	return &id, nil
}

// Users of other platforms and apps have records and session keys of their
// own; under link_by unionid a WeChat login with a unionid is the person,
// reachable by the openid it logged in with.
func TestFlowKeysUsersByPlatformAndUnionID(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name        string
		link        bool
		id          Identity
		user, local string
		sessionKey  bool
	}{
		{"douyin", false, Identity{Platform: "douyin", AppID: "tt1", OpenID: "d1", UnionID: "u1", SessionKey: "k"}, "douyin+tt1+d1", "douyin+tt1+d1", true},
		{"douyin guest", false, Identity{Platform: "douyin", AppID: "tt1", OpenID: "anon1", Anonymous: true, SessionKey: "k"}, "douyin+tt1+anon1", "douyin+tt1+anon1", true},
		{"alipay has no session key", false, Identity{Platform: "alipay", AppID: "2021", OpenID: "a1"}, "alipay+2021+a1", "alipay+2021+a1", false},
		{"web, not linked", false, Identity{Platform: "wechat", Surface: "qr", AppID: "wxweb", OpenID: "w1", UnionID: "u1"}, "wechat+wxweb+w1", "wechat+wxweb+w1", false},
		{"web, linked", true, Identity{Platform: "wechat", Surface: "oa", AppID: "wxweb", OpenID: "w2", UnionID: "u2"}, "unionid+u2", "wechat+wxweb+w2", false},
		{"mini-program, linked", true, Identity{Platform: "wechat", Surface: "mp", AppID: "app", OpenID: "m2", UnionID: "u2", SessionKey: "k"}, "unionid+u2", "m2", true},
		{"linked without unionid", true, Identity{Platform: "wechat", Surface: "mp", AppID: "app", OpenID: "m3", SessionKey: "k"}, "m3", "m3", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFlowFixture()
			fl := New(Config{Provider: identityProvider{c.id}, Store: f.store, Prefix: "wxauth/app", Sessions: f.sessions, Users: f.users,
				App: &fakeApp{}, TTL: time.Hour, Timeout: time.Second, Keys: users.KeyRule{PrimaryApp: "app", LinkByUnionID: c.link}})
			s, err := fl.Do(ctx, zap.NewNop(), Code{Code: "c"}, "")
			if err != nil {
				t.Fatal(err)
			}
			if s.UserKey() != c.user || s.Platform != c.id.Platform || s.AppID != c.id.AppID || s.Surface != c.id.Surface || s.Anonymous != c.id.Anonymous {
				t.Errorf("session %+v, want user %q", s, c.user)
			}
			if u, err := f.users.Get(ctx, c.user); err != nil || !u.Seen {
				t.Errorf("record %q: %+v, %v", c.user, u, err)
			}
			if got, err := f.users.Resolve(ctx, c.local); err != nil || got != c.user {
				t.Errorf("Resolve(%q) = %q, %v; want %q", c.local, got, err, c.user)
			}
			_, err = f.sessions.SessionKey(ctx, c.local)
			if c.sessionKey != (err == nil) {
				t.Errorf("session key under %q: %v, want kept %v", c.local, err, c.sessionKey)
			}
		})
	}
}
