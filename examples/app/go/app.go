package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"strconv"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// wxauth's events are small; anything larger is not one.
const maxBody = 64 << 10

// How long a webhook-id is remembered. wxauth sends a retried event with the
// same id within minutes; signatures older than 5 minutes are refused anyway.
const seenFor = 24 * time.Hour

// Event is one of wxauth's events; which fields are set depends on Event.
type Event struct {
	ID         string          `json:"id"`
	Event      string          `json:"event"`
	Time       int64           `json:"time"`
	AppID      string          `json:"app_id"`
	OpenID     string          `json:"openid"`
	UnionID    string          `json:"unionid"`
	SID        string          `json:"sid"`
	FirstLogin bool            `json:"first_login"`
	Claims     map[string]any  `json:"claims"`
	Phone      *EventPhone     `json:"phone"`
	Data       json.RawMessage `json:"data"`
}

// EventPhone is WeChat's phone_info; countryCode comes as "86" or 86.
type EventPhone struct {
	PhoneNumber     string          `json:"phoneNumber"`
	PurePhoneNumber string          `json:"purePhoneNumber"`
	CountryCode     json.RawMessage `json:"countryCode"`
}

// invalid says why ev is not an event this app can apply, or "" when it is.
func (ev *Event) invalid() string {
	switch ev.Event {
	case "login", "phone", "decrypt", "logout":
	case "":
		return "not an event object"
	default:
		return "" // an event this app does not use
	}
	switch {
	case ev.OpenID == "":
		return "openid missing"
	case ev.SID == "":
		return "sid missing"
	case ev.Time == 0:
		return "time missing"
	case ev.Event == "phone" && ev.Phone == nil:
		return "phone missing"
	case ev.Event == "decrypt" && (len(ev.Data) == 0 || ev.Data[0] != '{'):
		return "data missing"
	}
	return ""
}

func text(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw) // a number
}

// userOf returns the user of ev.OpenID; it is created when an event comes
// before any login the store knows of (a store restored from an old backup).
func userOf(db *Store, ev *Event) *User {
	u := db.Users[ev.OpenID]
	if u == nil {
		u = &User{UID: strconv.Itoa(db.NextUID), OpenID: ev.OpenID, Role: "member", Sessions: map[string]*Session{}}
		db.NextUID++
		db.Users[ev.OpenID] = u
	}
	if ev.UnionID != "" {
		u.UnionID = ev.UnionID
	}
	return u
}

// noBody is an answer without a body: no claim changes.
var noBody = json.RawMessage("null")

func jsonBody(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

// Apply applies a verified event to db and returns the answer for wxauth.
func Apply(db *Store, ev *Event) (status int, body json.RawMessage) {
	switch ev.Event {
	case "login":
		// Refusing a login: wxauth answers the client 502 hook_failed.
		if u := db.Users[ev.OpenID]; u != nil && u.Banned {
			return http.StatusForbidden, jsonBody(map[string]string{"error": "banned"})
		}
		u := userOf(db, ev)
		u.Logins++
		u.LastLogin = ev.Time
		u.Sessions[ev.SID] = &Session{Login: ev.Time}
		// These claims reach the upstream as headers and placeholders.
		return http.StatusOK, jsonBody(map[string]string{"uid": u.UID, "role": u.Role})
	case "phone":
		// WeChat answered this number for a phone code this session presented.
		userOf(db, ev).Phone = &Phone{
			PhoneNumber:     ev.Phone.PhoneNumber,
			PurePhoneNumber: ev.Phone.PurePhoneNumber,
			CountryCode:     text(ev.Phone.CountryCode),
			SID:             ev.SID,
			Time:            ev.Time,
		}
	case "decrypt":
		userOf(db, ev).Profile = &Profile{Data: ev.Data, SID: ev.SID, Time: ev.Time}
	case "logout":
		u := userOf(db, ev)
		s := u.Sessions[ev.SID]
		if s == nil {
			s = &Session{}
			u.Sessions[ev.SID] = s
		}
		s.Logout = ev.Time // wxauth ignores the answer
	}
	return http.StatusNoContent, noBody
}

// App receives wxauth's events on /wxauth.
type App struct {
	hook      *standardwebhooks.Webhook
	storeFile string
	now       func() time.Time // for forgetting old webhook-ids
	logf      func(format string, args ...any)
}

// NewApp returns the app for app_hook's whsec_... secret and a store file.
func NewApp(secret, storeFile string) (*App, error) {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return nil, err
	}
	return &App{hook: wh, storeFile: storeFile, now: time.Now, logf: log.Printf}, nil
}

func reply(w http.ResponseWriter, status int, body json.RawMessage) {
	if bytes.Equal(body, noBody) {
		w.WriteHeader(status)
		return
	}
	// The store keeps answers indented; the wire gets them compact.
	var compact bytes.Buffer
	if json.Compact(&compact, body) == nil {
		body = compact.Bytes()
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func replyError(w http.ResponseWriter, status int, msg string) {
	reply(w, status, jsonBody(map[string]string{"error": msg}))
}

func (a *App) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/wxauth" {
		replyError(w, http.StatusNotFound, "not found")
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		replyError(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		replyError(w, http.StatusRequestEntityTooLarge, "body too large")
		return
	} else if err != nil {
		replyError(w, http.StatusBadRequest, "cannot read body")
		return
	}
	id := r.Header.Get("webhook-id")
	if id == "" || r.Header.Get("webhook-timestamp") == "" || r.Header.Get("webhook-signature") == "" {
		replyError(w, http.StatusBadRequest, "missing webhook-id, webhook-timestamp or webhook-signature")
		return
	}
	// Checks the HMAC and that the timestamp is within 5 minutes of now.
	if err := a.hook.Verify(body, r.Header); err != nil {
		replyError(w, http.StatusUnauthorized, "invalid signature")
		return
	}
	var ev Event
	if err := json.Unmarshal(body, &ev); err != nil {
		replyError(w, http.StatusBadRequest, "not an event object")
		return
	}
	if msg := ev.invalid(); msg != "" {
		replyError(w, http.StatusBadRequest, msg)
		return
	}

	var ans Answer
	replay := false
	err = Update(a.storeFile, func(db *Store) error {
		now := a.now()
		for k, v := range db.Seen {
			if now.Sub(time.Unix(v.Time, 0)) > seenFor {
				delete(db.Seen, k)
			}
		}
		// A retry: answer as before, change nothing.
		if seen := db.Seen[id]; seen != nil {
			ans, replay = *seen, true
			return nil
		}
		status, body := Apply(db, &ev)
		ans = Answer{Time: now.Unix(), Status: status, Body: body}
		db.Seen[id] = &ans
		return nil
	})
	if err != nil {
		a.logf("error: %v", err)
		replyError(w, http.StatusInternalServerError, "internal error")
		return
	}
	note := ""
	if replay {
		note = " (seen before)"
	}
	a.logf("%s %s -> %d%s", ev.Event, id, ans.Status, note)
	reply(w, ans.Status, ans.Body)
}
