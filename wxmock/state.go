package wxmock

import (
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
)

const (
	// codeTTL is how long login and phone codes stay usable, as at WeChat.
	codeTTL = 5 * time.Minute
	// supersededGrace is how long a token stays valid after a force_refresh
	// issued its successor.
	supersededGrace = 30 * time.Second
	// maxSpent bounds how many expired login codes are remembered, so that
	// any_code does not take them for new ones.
	maxSpent = 1 << 16
)

// states holds one *state per app_id; the pool keeps it across config
// reloads and shares it between all wxmock handlers of the same app.
var states = caddy.NewUsagePool()

// state is what a WeChat server remembers about one app.
type state struct {
	mu         sync.Mutex
	now        func() time.Time // replaced in tests
	codes      map[string]*loginCode
	spent      spentCodes // login codes gone from codes: never valid again
	phoneCodes map[string]*phoneCode
	users      map[string]*user  // by user name
	openids    map[string]string // openid -> user name
	tokens     map[string]*accessToken
	current    map[string]string // app id -> newest access_token
	busyonce   int
	stats      counters
	web        webState // web login codes and tokens (web.go)
	// keySize is the length of the session keys this app's platform
	// hands out; 0 means WeChat's 16 bytes.
	keySize int
}

// loginCode is what /wxmock/login hands out and jscode2session takes.
type loginCode struct {
	user       string
	sessionKey string
	unionid    bool
	expires    time.Time
	used       bool
}

// phoneCode is what /wxmock/phonecode hands out and getuserphonenumber takes.
type phoneCode struct {
	phone    string
	numberCC bool   // countryCode as a JSON number
	openID   string // the user who pressed the button, when known
	expires  time.Time
	used     bool
}

// user is a WeChat user who exchanged a code at least once.
type user struct {
	appID      string
	openID     string
	unionID    string
	sessionKey string // current: the one of the newest exchanged code
}

// accessToken is an issued access_token.
type accessToken struct {
	appID      string
	expires    time.Time
	revoked    bool // by /wxmock/expire_tokens: answers 42001
	superseded bool // by force_refresh: answers 40001 once expired
}

// counters counts calls of the WeChat API, failed ones included.
type counters struct {
	// Code2Session counts GET /sns/jscode2session.
	Code2Session int `json:"jscode2session"`
	// StableToken counts POST /cgi-bin/stable_token.
	StableToken int `json:"stable_token"`
	// PhoneNumber counts POST /wxa/business/getuserphonenumber.
	PhoneNumber int `json:"getuserphonenumber"`
	// CheckSession counts GET /wxa/checksession.
	CheckSession int `json:"checksession"`
	// SubscribeSend counts POST /cgi-bin/message/subscribe/send.
	SubscribeSend int `json:"subscribe_send"`
	// OAuthAccessToken counts GET /sns/oauth2/access_token (web login).
	OAuthAccessToken int `json:"sns_oauth2_access_token"`
	// OAuthRefreshToken counts GET /sns/oauth2/refresh_token (web login).
	OAuthRefreshToken int `json:"sns_oauth2_refresh_token"`
	// UserInfo counts GET /sns/userinfo (web login).
	UserInfo int `json:"sns_userinfo"`
}

func newState() *state {
	s := &state{now: time.Now}
	s.clear()
	return s
}

// freshKey returns a random session key of the app's platform.
func (s *state) freshKey() string {
	if s.keySize == 0 {
		return newSessionKey()
	}
	return newKey(s.keySize)
}

// Destruct implements caddy.Destructor; there is nothing to release.
func (*state) Destruct() error { return nil }

// clear forgets codes and tokens and zeroes the counters; users and their
// session_keys stay, as they would at WeChat. Callers hold mu or own s.
func (s *state) clear() {
	for c := range s.codes {
		s.spent.add(c)
	}
	s.codes = make(map[string]*loginCode)
	s.phoneCodes = make(map[string]*phoneCode)
	s.tokens = make(map[string]*accessToken)
	s.current = make(map[string]string)
	if s.users == nil {
		s.users = make(map[string]*user)
		s.openids = make(map[string]string)
	}
	s.busyonce = 0
	s.stats = counters{}
	s.web.clear()
}

func (s *state) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clear()
}

func (s *state) count(f func(*counters)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}

func (s *state) snapshot() counters {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// newLoginCode issues a one-time code for user; sessionKey may be empty for a
// random one.
func (s *state) newLoginCode(name, sessionKey string, withUnionID bool) string {
	if sessionKey == "" {
		sessionKey = s.freshKey()
	}
	code := randomToken(24)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.pruneCodesLocked(now)
	s.codes[code] = &loginCode{user: name, sessionKey: sessionKey, unionid: withUnionID, expires: now.Add(codeTTL)}
	return code
}

// pruneCodesLocked keeps the code map small: expired codes move to spent.
func (s *state) pruneCodesLocked(now time.Time) {
	for c, lc := range s.codes {
		if now.After(lc.expires) {
			delete(s.codes, c)
			s.spent.add(c)
		}
	}
}

// exchange redeems a login code for appID and makes its session_key the
// user's current one. errcode is 0 on success. With anyUser set, a code
// this state never saw is taken as one issued to anyUser just now, as
// WeChat DevTools' codes are: it works once, like any other code.
func (s *state) exchange(code, appID, anyUser string) (u user, errcode int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	lc, ok := s.codes[code]
	if !ok && anyUser != "" && !s.spent.has(code) {
		now := s.now()
		s.pruneCodesLocked(now)
		lc = &loginCode{user: anyUser, sessionKey: s.freshKey(), unionid: true, expires: now.Add(codeTTL)}
		s.codes[code] = lc
		ok = true
	}
	switch {
	case !ok || s.now().After(lc.expires):
		return user{}, errInvalidCode
	case lc.used:
		return user{}, errCodeUsed
	}
	lc.used = true
	return s.loginLocked(lc, appID), 0
}

func (s *state) loginLocked(lc *loginCode, appID string) user {
	u := &user{appID: appID, openID: openID(appID, lc.user), sessionKey: lc.sessionKey}
	if lc.unionid {
		u.unionID = unionID(lc.user)
	}
	s.users[lc.user] = u
	s.openids[u.openID] = lc.user
	return *u
}

// busyOnce fails every other call, starting with the first; the others log
// in user "busyonce".
func (s *state) busyOnce(appID string) (u user, fail bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.busyonce++
	if s.busyonce%2 == 1 {
		return user{}, true
	}
	lc := &loginCode{user: "busyonce", sessionKey: s.freshKey(), unionid: true}
	return s.loginLocked(lc, appID), false
}

// userByName returns the user's current state, if the user ever logged in.
func (s *state) userByName(name string) (user, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[name]
	if !ok {
		return user{}, false
	}
	return *u, true
}

// sessionKeyOf returns the current session_key of openid.
func (s *state) sessionKeyOf(openid string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name, ok := s.openids[openid]
	if !ok {
		return "", false
	}
	return s.users[name].sessionKey, true
}

// stableToken returns appID's current access_token and its remaining
// lifetime, or a new one when there is none or force is set.
func (s *state) stableToken(appID string, force bool, ttl time.Duration) (string, time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if cur, ok := s.tokens[s.current[appID]]; ok {
		if !force && !cur.revoked && now.Before(cur.expires) {
			return s.current[appID], cur.expires.Sub(now)
		}
		if force && cur.expires.After(now.Add(supersededGrace)) {
			cur.expires = now.Add(supersededGrace)
		}
		cur.superseded = true
	}
	tok := randomToken(48)
	s.tokens[tok] = &accessToken{appID: appID, expires: now.Add(ttl)}
	s.current[appID] = tok
	return tok, ttl
}

// checkToken returns the app of a valid access_token, or a WeChat errcode.
func (s *state) checkToken(tok string) (appID string, errcode int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[tok]
	switch {
	case !ok:
		return "", errInvalidCredential
	case t.revoked:
		return "", errTokenExpired
	case !s.now().Before(t.expires):
		if t.superseded {
			return "", errInvalidCredential
		}
		return "", errTokenExpired
	}
	return t.appID, 0
}

// knownOpenID reports whether openid is a user of appID.
func (s *state) knownOpenID(appID, openid string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	name, ok := s.openids[openid]
	return ok && s.users[name].appID == appID
}

// expireTokens makes every access_token issued so far answer 42001.
func (s *state) expireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.tokens {
		t.revoked = true
	}
	clear(s.current)
}

// newPhoneCode issues a one-time code for getuserphonenumber.
func (s *state) newPhoneCode(phone string, numberCC bool, openID string) string {
	code := randomToken(24)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for c, pc := range s.phoneCodes {
		if now.After(pc.expires) {
			delete(s.phoneCodes, c)
		}
	}
	s.phoneCodes[code] = &phoneCode{phone: phone, numberCC: numberCC, openID: openID, expires: now.Add(codeTTL)}
	return code
}

// usePhoneCode redeems a phone code once. When the caller names an openid
// and the code belongs to another user, the code is refused, as WeChat
// checks the binding when given the openid.
func (s *state) usePhoneCode(code, openID string) (phoneCode, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pc, ok := s.phoneCodes[code]
	if !ok || pc.used || s.now().After(pc.expires) || (openID != "" && pc.openID != "" && openID != pc.openID) {
		return phoneCode{}, false
	}
	pc.used = true
	return *pc, true
}

// spentCodes remembers up to maxSpent codes, forgetting the oldest first.
type spentCodes struct {
	set  map[string]struct{}
	ring []string
	next int // where the next code goes in ring once it is full
}

func (sc *spentCodes) add(code string) {
	if sc.set == nil {
		sc.set = make(map[string]struct{})
	}
	if _, ok := sc.set[code]; ok {
		return
	}
	if len(sc.ring) < maxSpent {
		sc.ring = append(sc.ring, code)
	} else {
		delete(sc.set, sc.ring[sc.next])
		sc.ring[sc.next] = code
		sc.next = (sc.next + 1) % maxSpent
	}
	sc.set[code] = struct{}{}
}

func (sc *spentCodes) has(code string) bool {
	_, ok := sc.set[code]
	return ok
}
