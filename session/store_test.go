package session_test

import (
	"context"
	"errors"
	"io/fs"
	"testing"

	"github.com/caddyserver/certmagic"

	"github.com/wxauth/caddy-wxauth/session"
)

// brokenStorage is a certmagic storage whose reads fail, as a storage that
// cannot be reached does.
type brokenStorage struct {
	*certmagic.FileStorage
}

var errBroken = errors.New("storage unreachable")

func (brokenStorage) Load(context.Context, string) ([]byte, error) { return nil, errBroken }

// TestNotFoundRule checks the rule every Store follows and the token and
// wechat packages rely on: an absent key is reported with an error that
// matches fs.ErrNotExist (and ErrNotFound); a store failure matches neither.
func TestNotFoundRule(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name    string
		store   func(t *testing.T) session.Store
		ctx     context.Context
		absent  bool
		failure error // the cause a failure must carry, when not absent
	}{
		{"memory absent", func(*testing.T) session.Store { return session.NewMemory() }, context.Background(), true, nil},
		{"memory failure", func(*testing.T) session.Store { return session.NewMemory() }, cancelled, false, context.Canceled},
		{"caddy absent", func(t *testing.T) session.Store {
			return session.NewCaddyStorage(&certmagic.FileStorage{Path: t.TempDir()})
		}, context.Background(), true, nil},
		{"caddy failure", func(t *testing.T) session.Store {
			return session.NewCaddyStorage(brokenStorage{&certmagic.FileStorage{Path: t.TempDir()}})
		}, context.Background(), false, errBroken},
		{"sealed absent", func(t *testing.T) session.Store { return sealed(t, session.NewMemory(), 1) }, context.Background(), true, nil},
		{"sealed failure", func(t *testing.T) session.Store {
			return sealed(t, session.NewCaddyStorage(brokenStorage{&certmagic.FileStorage{Path: t.TempDir()}}), 1)
		}, context.Background(), false, errBroken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.store(t).Get(tt.ctx, "wxauth/app/missing")
			if err == nil {
				t.Fatal("Get of a missing key: no error")
			}
			if got := errors.Is(err, fs.ErrNotExist); got != tt.absent {
				t.Errorf("errors.Is(%v, fs.ErrNotExist) = %v, want %v", err, got, tt.absent)
			}
			if got := errors.Is(err, session.ErrNotFound); got != tt.absent {
				t.Errorf("errors.Is(%v, ErrNotFound) = %v, want %v", err, got, tt.absent)
			}
			if tt.failure != nil && !errors.Is(err, tt.failure) {
				t.Errorf("failure %v does not carry its cause %v", err, tt.failure)
			}
		})
	}
}
