package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

var (
	testKey    = []byte("0123456789abcdef0123456789abcdef")
	testSecret = "whsec_" + base64.StdEncoding.EncodeToString(testKey)
)

// start runs the app over real HTTP with a fresh store.
func start(t *testing.T) (url, file string) {
	t.Helper()
	file = filepath.Join(t.TempDir(), "users.json")
	app, err := NewApp(testSecret, file)
	if err != nil {
		t.Fatal(err)
	}
	app.logf = t.Logf
	srv := httptest.NewServer(app)
	t.Cleanup(srv.Close)
	return srv.URL + "/wxauth", file
}

var evCount int

func event(kind string, extra map[string]any) map[string]any {
	evCount++
	ev := map[string]any{
		"id": fmt.Sprintf("evt_%d", evCount), "event": kind, "time": 1767225600 + evCount,
		"app_id": "wxtest0123456789", "openid": "o-alice", "unionid": "u-alice", "sid": "s-1",
		"claims": map[string]any{},
	}
	for k, v := range extra {
		if v == nil {
			delete(ev, k)
		} else {
			ev[k] = v
		}
	}
	return ev
}

// sendOpts changes what send sends.
type sendOpts struct {
	id, signature, secret string
	ts                    *int64
	tsText                string // a timestamp header that is not a number
	body, sentBody        []byte
	omit                  []string
}

type result struct {
	status int
	body   string
}

// send posts ev signed as wxauth signs it.
func send(t *testing.T, url string, ev map[string]any, o sendOpts) result {
	t.Helper()
	body := o.body
	if body == nil {
		body, _ = json.Marshal(ev)
	}
	id := o.id
	if id == "" {
		id = ev["id"].(string)
	}
	ts := time.Now().Unix()
	if o.ts != nil {
		ts = *o.ts
	}
	secret := o.secret
	if secret == "" {
		secret = testSecret
	}
	sig := o.signature
	if sig == "" {
		wh, _ := standardwebhooks.NewWebhook(secret)
		sig, _ = wh.Sign(id, time.Unix(ts, 0), body)
	}
	sent := body
	if o.sentBody != nil {
		sent = o.sentBody
	}
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(sent))
	h := map[string]string{"webhook-id": id, "webhook-timestamp": strconv.FormatInt(ts, 10), "webhook-signature": sig}
	if o.tsText != "" {
		h["webhook-timestamp"] = o.tsText
	}
	for _, name := range o.omit {
		delete(h, name)
	}
	for k, v := range h {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return result{res.StatusCode, strings.TrimSpace(string(b))}
}

func ptr(v int64) *int64 { return &v }

func readStore(t *testing.T, file string) *Store {
	t.Helper()
	db, err := ReadStore(file)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// sameJSON compares the JSON forms of got and want.
func sameJSON(t *testing.T, what string, got, want any) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	var gv, wv any
	_ = json.Unmarshal(g, &gv)
	_ = json.Unmarshal(w, &wv)
	if !reflect.DeepEqual(gv, wv) {
		t.Errorf("%s:\n got %s\nwant %s", what, g, w)
	}
}

func TestLoginRegistersTheUserAndAnswersClaims(t *testing.T) {
	url, file := start(t)
	login := event("login", map[string]any{"first_login": true})
	if r := send(t, url, login, sendOpts{}); r != (result{200, `{"role":"member","uid":"1"}`}) {
		t.Fatalf("login: %+v", r)
	}
	bob := event("login", map[string]any{"openid": "o-bob", "unionid": nil, "sid": "s-2"})
	if r := send(t, url, bob, sendOpts{}); r != (result{200, `{"role":"member","uid":"2"}`}) {
		t.Fatalf("bob's login: %+v", r)
	}
	db := readStore(t, file)
	sameJSON(t, "alice", db.Users["o-alice"], map[string]any{
		"uid": "1", "openid": "o-alice", "unionid": "u-alice", "role": "member", "banned": false,
		"logins": 1, "last_login": login["time"], "sessions": map[string]any{"s-1": map[string]any{"login": login["time"]}},
	})
	if db.Users["o-bob"].UnionID != "" {
		t.Errorf("bob has a unionid: %+v", db.Users["o-bob"])
	}
}

func TestPhoneDecryptLogoutAreStored(t *testing.T) {
	url, file := start(t)
	login := event("login", nil)
	send(t, url, login, sendOpts{})
	phone := event("phone", map[string]any{"phone": map[string]any{"phoneNumber": "+86 139", "purePhoneNumber": "139", "countryCode": 86}})
	if r := send(t, url, phone, sendOpts{}); r != (result{204, ""}) {
		t.Errorf("phone: %+v", r)
	}
	data := map[string]any{"openId": "o-alice", "nickName": "alice", "city": "Guangzhou"}
	decrypt := event("decrypt", map[string]any{"data": data})
	if r := send(t, url, decrypt, sendOpts{}); r != (result{204, ""}) {
		t.Errorf("decrypt: %+v", r)
	}
	logout := event("logout", nil)
	if r := send(t, url, logout, sendOpts{}); r != (result{204, ""}) {
		t.Errorf("logout: %+v", r)
	}
	u := readStore(t, file).Users["o-alice"]
	sameJSON(t, "phone", u.Phone, map[string]any{"phoneNumber": "+86 139", "purePhoneNumber": "139", "countryCode": "86", "sid": "s-1", "time": phone["time"]})
	sameJSON(t, "profile", u.Profile, map[string]any{"data": data, "sid": "s-1", "time": decrypt["time"]})
	sameJSON(t, "sessions", u.Sessions, map[string]any{"s-1": map[string]any{"login": login["time"], "logout": logout["time"]}})
	if u.Logins != 1 {
		t.Errorf("logins %d", u.Logins)
	}
	if r := send(t, url, event("login", map[string]any{"openid": "o-bob"}), sendOpts{}); r.body != `{"role":"member","uid":"2"}` {
		t.Errorf("next user: %+v", r)
	}
}

func TestReplayedWebhookIDIsAppliedOnce(t *testing.T) {
	url, file := start(t)
	login := event("login", nil)
	first := send(t, url, login, sendOpts{})
	if first.status != 200 {
		t.Fatalf("login: %+v", first)
	}
	// The same delivery again, and a retry signed later with the same id.
	for _, o := range []sendOpts{{}, {ts: ptr(time.Now().Unix() + 10)}} {
		if r := send(t, url, login, o); r != first {
			t.Errorf("replay answered %+v, first %+v", r, first)
		}
	}
	if n := readStore(t, file).Users["o-alice"].Logins; n != 1 {
		t.Errorf("logins %d after a replay", n)
	}
	phone := event("phone", map[string]any{"phone": map[string]any{"phoneNumber": "1", "purePhoneNumber": "1", "countryCode": "86"}})
	send(t, url, phone, sendOpts{})
	phone["phone"] = map[string]any{"phoneNumber": "2", "purePhoneNumber": "2", "countryCode": "86"}
	if r := send(t, url, phone, sendOpts{}); r != (result{204, ""}) {
		t.Errorf("phone replay: %+v", r)
	}
	if got := readStore(t, file).Users["o-alice"].Phone.PhoneNumber; got != "1" {
		t.Errorf("a replayed id changed the phone to %q", got)
	}
}

func TestSignatureIsHMACOfIDTimestampBody(t *testing.T) {
	url, _ := start(t)
	login := event("login", nil)
	body, _ := json.Marshal(login)
	ts := time.Now().Unix()
	mac := hmac.New(sha256.New, testKey)
	fmt.Fprintf(mac, "%s.%d.%s", login["id"], ts, body)
	sig := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	// Several signatures may be sent (key rotation); one that matches is enough.
	r := send(t, url, login, sendOpts{ts: &ts, body: body, signature: "v1,c29tZXRoaW5nIGVsc2U= v1," + sig})
	if r.status != 200 {
		t.Fatalf("%+v", r)
	}
}

func TestRefusedWithoutAValidSignature(t *testing.T) {
	url, file := start(t)
	login := event("login", nil)
	other := "whsec_" + base64.StdEncoding.EncodeToString([]byte("another secret, another app...."))
	mallory, _ := json.Marshal(event("login", map[string]any{"id": login["id"], "openid": "o-mallory"}))
	now := time.Now().Unix()
	cases := []struct {
		name   string
		o      sendOpts
		status int
	}{
		{"signed with another secret", sendOpts{secret: other}, 401},
		{"body changed after signing", sendOpts{sentBody: mallory}, 401},
		{"timestamp 6 minutes old", sendOpts{ts: ptr(now - 360)}, 401},
		{"timestamp 6 minutes ahead", sendOpts{ts: ptr(now + 360)}, 401},
		{"timestamp not a number", sendOpts{tsText: "yesterday"}, 401},
		{"signature of another version", sendOpts{signature: "v2," + strings.Repeat("A", 44)}, 401},
		{"no webhook-id", sendOpts{omit: []string{"webhook-id"}}, 400},
		{"no webhook-timestamp", sendOpts{omit: []string{"webhook-timestamp"}}, 400},
		{"no webhook-signature", sendOpts{omit: []string{"webhook-signature"}}, 400},
	}
	for _, c := range cases {
		r := send(t, url, login, c.o)
		if r.status != c.status || !strings.Contains(r.body, `"error"`) {
			t.Errorf("%s: %+v, want %d with an error", c.name, r, c.status)
		}
	}
	if n := len(readStore(t, file).Users); n != 0 {
		t.Errorf("%d users stored from refused events", n)
	}
	// The refusals did not use up the id: the genuine event still applies.
	if r := send(t, url, login, sendOpts{}); r.status != 200 {
		t.Errorf("genuine event after refusals: %+v", r)
	}
}

func TestMalformedEvents(t *testing.T) {
	url, file := start(t)
	cases := []struct {
		name string
		ev   map[string]any
		o    sendOpts
	}{
		{"not JSON", nil, sendOpts{id: "evt_x1", body: []byte("not json")}},
		{"an array", nil, sendOpts{id: "evt_x2", body: []byte("[1,2]")}},
		{"no openid", event("login", map[string]any{"openid": ""}), sendOpts{}},
		{"phone not an object", event("phone", map[string]any{"phone": "x"}), sendOpts{}},
		{"decrypt without data", event("decrypt", map[string]any{"data": nil}), sendOpts{}},
		{"sid a number", event("login", map[string]any{"sid": 7}), sendOpts{}},
	}
	for _, c := range cases {
		if r := send(t, url, c.ev, c.o); r.status != 400 {
			t.Errorf("%s: %+v, want 400", c.name, r)
		}
	}
	if r := send(t, url, event("future_event", nil), sendOpts{}); r != (result{204, ""}) {
		t.Errorf("unknown event: %+v, want 204", r)
	}
	if n := len(readStore(t, file).Users); n != 0 {
		t.Errorf("%d users stored", n)
	}
}

func TestPathMethodSize(t *testing.T) {
	url, _ := start(t)
	res, err := http.Post(strings.Replace(url, "/wxauth", "/other", 1), "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 404 {
		t.Errorf("other path: %d", res.StatusCode)
	}
	if res, err = http.Get(url); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 405 || res.Header.Get("Allow") != "POST" {
		t.Errorf("GET: %d, Allow %q", res.StatusCode, res.Header.Get("Allow"))
	}
	big := event("decrypt", map[string]any{"data": map[string]any{"blob": strings.Repeat("x", 70_000)}})
	if r := send(t, url, big, sendOpts{}); r.status != 413 {
		t.Errorf("large body: %+v", r)
	}
}

func TestBannedUserIsRefusedAtLogin(t *testing.T) {
	url, file := start(t)
	send(t, url, event("login", nil), sendOpts{})
	if err := Update(file, func(db *Store) error { db.Users["o-alice"].Banned = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if r := send(t, url, event("login", map[string]any{"sid": "s-2"}), sendOpts{}); r != (result{403, `{"error":"banned"}`}) {
		t.Errorf("banned login: %+v", r)
	}
	u := readStore(t, file).Users["o-alice"]
	if _, ok := u.Sessions["s-2"]; u.Logins != 1 || ok {
		t.Errorf("a refused login was stored: %+v", u)
	}
}

func TestSeenIDsAreForgottenAfterADay(t *testing.T) {
	url, file := start(t)
	send(t, url, event("login", nil), sendOpts{})
	if err := Update(file, func(db *Store) error {
		for _, a := range db.Seen {
			a.Time -= int64(seenFor/time.Second) + 1
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	send(t, url, event("logout", nil), sendOpts{})
	if n := len(readStore(t, file).Seen); n != 1 {
		t.Errorf("%d ids remembered, want only the newest", n)
	}
}

// wxauthStandIn verifies app_api calls the way wxauth does and records them.
type wxauthStandIn struct {
	mu    sync.Mutex
	calls []map[string]any
	seen  map[string]bool
}

func newWxauthStandIn(t *testing.T, status int) (*wxauthStandIn, string) {
	s := &wxauthStandIn{seen: map[string]bool{}}
	wh, _ := standardwebhooks.NewWebhook(testSecret)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		defer s.mu.Unlock()
		id := r.Header.Get("webhook-id")
		if err := wh.Verify(body, r.Header); err != nil || s.seen[id] || r.URL.Path != "/wx/app" {
			s.calls = append(s.calls, map[string]any{"refused": fmt.Sprint(err, s.seen[id], r.URL.Path)})
			w.WriteHeader(401)
			return
		}
		s.seen[id] = true
		var call map[string]any
		_ = json.Unmarshal(body, &call)
		s.calls = append(s.calls, call)
		if call["action"] == "access_token" && status == 204 {
			// tok-1 until the app reports it stale, then tok-2.
			tok := "tok-1"
			if call["stale"] != nil {
				tok = "tok-2"
			}
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"access_token":%q,"expires_at":%d}`, tok, time.Now().Add(2*time.Hour).Unix())
			return
		}
		w.WriteHeader(status)
		if status != 204 {
			_, _ = w.Write([]byte(`{"error":"invalid_signature"}`))
		}
	}))
	t.Cleanup(srv.Close)
	return s, srv.URL + "/wx/app"
}

func (s *wxauthStandIn) got() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]map[string]any(nil), s.calls...)
}

func runAdmin(env map[string]string, args ...string) (int, string) {
	var out bytes.Buffer
	code := run(args, func(k string) string { return env[k] }, &out, &out)
	return code, out.String()
}

func TestAdminRoleAndBan(t *testing.T) {
	url, file := start(t)
	api, apiURL := newWxauthStandIn(t, 204)
	env := map[string]string{"WXAUTH_SECRET": testSecret, "WXAUTH_API": apiURL, "STORE": file}
	send(t, url, event("login", nil), sendOpts{})

	if code, out := runAdmin(env, "role", "o-alice", "editor"); code != 0 {
		t.Fatalf("role: %d %s", code, out)
	}
	sameJSON(t, "calls", api.got(), []any{map[string]any{"action": "set_claims", "openid": "o-alice", "claims": map[string]any{"role": "editor"}}})
	if r := send(t, url, event("login", nil), sendOpts{}); r.body != `{"role":"editor","uid":"1"}` {
		t.Errorf("login after role: %+v", r)
	}

	if code, out := runAdmin(env, "ban", "o-alice"); code != 0 {
		t.Fatalf("ban: %d %s", code, out)
	}
	sameJSON(t, "ban call", api.got()[1:], []any{map[string]any{"action": "end_sessions", "openid": "o-alice"}})
	if r := send(t, url, event("login", nil), sendOpts{}); r.status != 403 {
		t.Errorf("login after ban: %+v", r)
	}

	if code, out := runAdmin(env, "unban", "o-alice"); code != 0 {
		t.Fatalf("unban: %d %s", code, out)
	}
	if n := len(api.got()); n != 2 {
		t.Errorf("unban called app_api: %d calls", n)
	}
	if r := send(t, url, event("login", nil), sendOpts{}); r.status != 200 {
		t.Errorf("login after unban: %+v", r)
	}
}

func TestAdminFailsLoudly(t *testing.T) {
	url, file := start(t)
	api, apiURL := newWxauthStandIn(t, 401)
	env := map[string]string{"WXAUTH_SECRET": testSecret, "WXAUTH_API": apiURL, "STORE": file}
	if code, out := runAdmin(env, "ban", "o-nobody"); code != 1 || !strings.Contains(out, "no user o-nobody") {
		t.Errorf("unknown user: %d %s", code, out)
	}
	if n := len(api.got()); n != 0 {
		t.Errorf("%d calls for an unknown user", n)
	}
	send(t, url, event("login", nil), sendOpts{})
	if code, out := runAdmin(env, "ban", "o-alice"); code != 1 || !strings.Contains(out, "end_sessions: 401") {
		t.Errorf("refused call: %d %s", code, out)
	}
	if code, out := runAdmin(env, "role", "o-alice"); code != 2 || !strings.Contains(out, "usage") {
		t.Errorf("missing role: %d %s", code, out)
	}
	if code, out := runAdmin(map[string]string{"STORE": file}, "ban", "o-alice"); code != 2 || !strings.Contains(out, "WXAUTH_SECRET") {
		t.Errorf("no secret: %d %s", code, out)
	}
}

// A subscribe message goes out with wxauth's token; when WeChat refuses it,
// the app reports it stale once and sends with the next one.
func TestAdminNotifyUsesWxauthsAccessToken(t *testing.T) {
	api, apiURL := newWxauthStandIn(t, 204)
	var mu sync.Mutex
	var sent []string
	wechat := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var msg map[string]any
		_ = json.NewDecoder(r.Body).Decode(&msg)
		tok := r.URL.Query().Get("access_token")
		mu.Lock()
		sent = append(sent, tok)
		mu.Unlock()
		if r.URL.Path != "/cgi-bin/message/subscribe/send" || msg["touser"] != "o-alice" || msg["template_id"] != "tmpl" {
			fmt.Fprint(w, `{"errcode":47001,"errmsg":"data format error"}`)
			return
		}
		if tok != "tok-2" {
			fmt.Fprint(w, `{"errcode":40001,"errmsg":"invalid credential"}`)
			return
		}
		fmt.Fprint(w, `{"errcode":0,"errmsg":"ok"}`)
	}))
	t.Cleanup(wechat.Close)
	env := map[string]string{"WXAUTH_SECRET": testSecret, "WXAUTH_API": apiURL, "WECHAT_API": wechat.URL}
	if code, out := runAdmin(env, "notify", "o-alice", "tmpl", "shipped"); code != 0 {
		t.Fatalf("notify: %d %s", code, out)
	}
	sameJSON(t, "app_api calls", api.got(), []any{
		map[string]any{"action": "access_token"},
		map[string]any{"action": "access_token", "stale": "tok-1"},
	})
	if want := []string{"tok-1", "tok-2"}; fmt.Sprint(sent) != fmt.Sprint(want) {
		t.Errorf("tokens sent to WeChat %v, want %v", sent, want)
	}
	// Any other errcode is an error.
	if code, out := runAdmin(env, "notify", "o-bob", "tmpl", "x"); code != 1 || !strings.Contains(out, "47001") {
		t.Errorf("refused message: %d %s", code, out)
	}
}
