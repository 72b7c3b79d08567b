package web

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/wxauth/caddy-wxauth/session"
)

const (
	// stateLife is how long a login may take from the redirect to WeChat
	// to the callback: the state cookie's Max-Age (at most 600 s).
	stateLife = 10 * time.Minute
	// replayWindow is how long after a callback WeChat's in-app browser may
	// load it again and be sent on with the session the first load made.
	replayWindow = 60 * time.Second
	// maxState is WeChat's limit on state's length.
	maxState = 128
)

// newState returns a random state: [A-Z2-7], 26 characters, 130 bits.
func newState() string { return rand.Text() }

// validState reports whether s has the form WeChat allows: 1 to 128
// characters of [A-Za-z0-9].
func validState(s string) bool {
	if s == "" || len(s) > maxState {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// stateCookie is what the state cookie holds: the login's state, where to
// go after it, and until when it may be used, under an HMAC so that the
// browser can neither forge nor change it.
type stateCookie struct {
	state   string
	next    string
	expires time.Time
}

// stateMAC is the HMAC of c's fields, bound to the web app, so a cookie
// of another app or block is not taken.
func (rt *Routes) stateMAC(state, expires, next string) []byte {
	m := hmac.New(sha256.New, rt.key)
	for _, part := range []string{"wxauth web login state", rt.app.AppID, rt.app.Name, state, expires, next} {
		m.Write([]byte(part))
		m.Write([]byte{0})
	}
	return m.Sum(nil)
}

// encodeState is the state cookie's value: state.expires.next.mac, next
// and mac in base64url.
func (rt *Routes) encodeState(c stateCookie) string {
	exp := strconv.FormatInt(c.expires.Unix(), 10)
	b64 := base64.RawURLEncoding.EncodeToString
	return c.state + "." + exp + "." + b64([]byte(c.next)) + "." + b64(rt.stateMAC(c.state, exp, c.next))
}

// decodeState returns the state cookie of value, or false when it is
// malformed, forged or expired.
func (rt *Routes) decodeState(value string) (stateCookie, bool) {
	parts := strings.Split(value, ".")
	if len(parts) != 4 || !validState(parts[0]) {
		return stateCookie{}, false
	}
	next, err1 := base64.RawURLEncoding.DecodeString(parts[2])
	mac, err2 := base64.RawURLEncoding.DecodeString(parts[3])
	secs, err3 := strconv.ParseInt(parts[1], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || !hmac.Equal(mac, rt.stateMAC(parts[0], parts[1], string(next))) {
		return stateCookie{}, false
	}
	c := stateCookie{state: parts[0], next: SafeNext(string(next)), expires: time.Unix(secs, 0)}
	if !rt.now().Before(c.expires) {
		return stateCookie{}, false
	}
	return c, true
}

// StateKey derives the key that signs a web app's state cookies from
// base, a key the handler's instances share (its store key), and the web
// app's secret: the same on every instance, so a callback may reach
// another instance than the login, and unknown to anyone without the
// secret, even when base is weak.
func StateKey(base []byte, a *App) []byte {
	k, err := hkdf.Key(sha256.New, append(append([]byte{}, base...), a.AppSecret...), nil, "caddy-wxauth web login state "+a.AppID+" "+a.Name, 32)
	if err != nil {
		// HKDF fails only for a length over 255 hash sizes.
		panic(err)
	}
	return k
}

// nonce is the login nonce of a state's callback: only this server can
// make it, so the login flow merges the callbacks of one browser that
// hold one state (WeChat's in-app browser loading the callback twice at
// once) into one session, and no one else's.
func (rt *Routes) nonce(state string) string {
	m := hmac.New(sha256.New, rt.key)
	m.Write([]byte("wxauth web login nonce\x00" + state))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// usedState is the store's record of a state a callback used: it makes
// the state single-use, and lets the same browser's second load of the
// callback go on with the session the first made.
type usedState struct {
	// Code is the hash of the code the callback carried.
	Code string `json:"code"`
	// Next is where the callback sent the browser.
	Next string `json:"next"`
	// At is when the callback came, in unix nanoseconds.
	At int64 `json:"at"`
	// SID is the session the callback made; empty until it is made.
	SID string `json:"sid,omitempty"`
}

// stateKey is the store key of a used state, by its hash.
func (rt *Routes) stateKey(state string) string {
	return rt.keyPrefix + "/web/" + rt.app.Name + "/states/" + session.HashKey(state)
}

// stateTTL is how long a used state is kept: as long as its cookie could
// still be presented, and at least the replay window, plus a minute for
// the clocks of the cluster.
func (rt *Routes) stateTTL(c stateCookie) time.Duration {
	return max(c.expires.Sub(rt.now()), replayWindow) + time.Minute
}

// claimState records state as used by the callback with code. It reports
// false when the state was used before.
func (rt *Routes) claimState(ctx context.Context, c stateCookie, rec usedState) (bool, error) {
	b, err := json.Marshal(rec)
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	return rt.store.SetNX(ctx, rt.stateKey(c.state), b, rt.stateTTL(c))
}

// recordSession notes the session a state's callback made.
func (rt *Routes) recordSession(ctx context.Context, c stateCookie, rec usedState) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	return rt.store.Set(ctx, rt.stateKey(c.state), b, rt.stateTTL(c))
}

// errNoState is usedRecord's answer when state was never used, or was used
// longer ago than the replay window.
var errNoState = errors.New("state not used lately")

// usedRecord returns the record of state, used within the replay window by
// a callback with code.
func (rt *Routes) usedRecord(ctx context.Context, state, code string) (usedState, error) {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	b, err := rt.store.Get(ctx, rt.stateKey(state))
	if errors.Is(err, session.ErrNotFound) {
		return usedState{}, errNoState
	}
	if err != nil {
		return usedState{}, err
	}
	var rec usedState
	if err := json.Unmarshal(b, &rec); err != nil {
		return usedState{}, err
	}
	if subtle.ConstantTimeCompare([]byte(rec.Code), []byte(session.HashKey(code))) != 1 ||
		rt.now().Sub(time.Unix(0, rec.At)) > replayWindow {
		return usedState{}, errNoState
	}
	return rec, nil
}
