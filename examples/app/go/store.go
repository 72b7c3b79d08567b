package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"sync"
	"time"
)

// Store is the app's user store, kept in a JSON file. A real app uses its
// database; a file keeps the example free of one and readable with cat.
type Store struct {
	NextUID int                `json:"next_uid"`
	Users   map[string]*User   `json:"users"`
	Seen    map[string]*Answer `json:"seen"` // by webhook-id
}

// User is what the app knows of one WeChat user, keyed by openid.
type User struct {
	UID       string              `json:"uid"`
	OpenID    string              `json:"openid"`
	UnionID   string              `json:"unionid,omitempty"`
	Role      string              `json:"role"`
	Banned    bool                `json:"banned"`
	Logins    int                 `json:"logins"`
	LastLogin int64               `json:"last_login,omitempty"`
	Sessions  map[string]*Session `json:"sessions"` // by sid
	Phone     *Phone              `json:"phone,omitempty"`
	Profile   *Profile            `json:"profile,omitempty"`
}

// Session records when a session (sid) logged in and out.
type Session struct {
	Login  int64 `json:"login,omitempty"`
	Logout int64 `json:"logout,omitempty"`
}

// Phone is the number WeChat answered for a phone code of session SID.
type Phone struct {
	PhoneNumber     string `json:"phoneNumber"`
	PurePhoneNumber string `json:"purePhoneNumber"`
	CountryCode     string `json:"countryCode"`
	SID             string `json:"sid"`
	Time            int64  `json:"time"`
}

// Profile is the data wxauth decrypted for session SID, as it came.
type Profile struct {
	Data json.RawMessage `json:"data"`
	SID  string          `json:"sid"`
	Time int64           `json:"time"`
}

// Answer is what the app answered an event, kept to answer a retry alike.
type Answer struct {
	Time   int64           `json:"time"`
	Status int             `json:"status"`
	Body   json.RawMessage `json:"body"` // null: no body
}

// A lock older than staleLock was left by a process that died holding it.
const (
	staleLock = 10 * time.Second
	lockWait  = 5 * time.Second
)

// fileMu orders the changes of this process; the lock directory orders
// them with the admin command's.
var fileMu sync.Mutex

func lockDir(dir string) error {
	deadline := time.Now().Add(lockWait)
	for {
		err := os.Mkdir(dir, 0o700) // atomic: one process gets it
		if err == nil {
			return nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return err
		}
		if st, err := os.Stat(dir); err == nil && time.Since(st.ModTime()) > staleLock {
			_ = os.Remove(dir)
			continue
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("store lock %s held for over %s", dir, lockWait)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ReadStore reads the store; a missing file is an empty store.
func ReadStore(file string) (*Store, error) {
	db := &Store{NextUID: 1}
	b, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		b, err = []byte("{}"), nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, db); err != nil {
		return nil, fmt.Errorf("store %s: %w", file, err)
	}
	if db.Users == nil {
		db.Users = map[string]*User{}
	}
	if db.Seen == nil {
		db.Seen = map[string]*Answer{}
	}
	return db, nil
}

// Update runs change on the current contents under the lock, then saves
// them: a temporary file renamed over the old one, so no reader sees half a
// file. If change fails, nothing is saved.
func Update(file string, change func(*Store) error) error {
	fileMu.Lock()
	defer fileMu.Unlock()
	dir := file + ".lock"
	if err := lockDir(dir); err != nil {
		return err
	}
	defer os.Remove(dir)
	db, err := ReadStore(file)
	if err != nil {
		return err
	}
	if err := change(db); err != nil {
		return err
	}
	b, err := json.MarshalIndent(db, "", "  ")
	if err != nil {
		return err
	}
	tmp := file + "." + strconv.Itoa(os.Getpid()) + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, file)
}
