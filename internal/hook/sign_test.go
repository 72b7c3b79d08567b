package hook

import (
	"net/http"
	"testing"
	"time"
)

// The reference vector of the Standard Webhooks specification.
const (
	swSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	swID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	swTimestamp = 1614265330
	swBody      = `{"test": 2432232314}`
	swSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestWebhookSignMatchesTheSpec(t *testing.T) {
	k, err := ParseSecret(swSecret)
	if err != nil {
		t.Fatal(err)
	}
	if got := k.Sign(swID, swTimestamp, []byte(swBody)); got != swSignature {
		t.Fatalf("signature %s, want %s", got, swSignature)
	}
}

func TestWebhookVerify(t *testing.T) {
	k, _ := ParseSecret(swSecret)
	at := time.Unix(swTimestamp, 0)
	good := func() http.Header {
		h := http.Header{}
		h.Set(HeaderID, swID)
		h.Set(HeaderTimestamp, "1614265330")
		h.Set(HeaderSignature, "v1,bm90IHRoaXMgb25l "+swSignature)
		return h
	}
	if id, err := k.Verify(good(), []byte(swBody), at.Add(time.Minute)); err != nil || id != swID {
		t.Fatalf("a good call: %q %v", id, err)
	}
	cases := map[string]func(h http.Header) ([]byte, time.Time){
		"changed body":    func(h http.Header) ([]byte, time.Time) { return []byte(`{"test": 1}`), at },
		"stale":           func(h http.Header) ([]byte, time.Time) { return []byte(swBody), at.Add(6 * time.Minute) },
		"from the future": func(h http.Header) ([]byte, time.Time) { return []byte(swBody), at.Add(-6 * time.Minute) },
		"other id":        func(h http.Header) ([]byte, time.Time) { h.Set(HeaderID, "msg_x"); return []byte(swBody), at },
		"no signature":    func(h http.Header) ([]byte, time.Time) { h.Del(HeaderSignature); return []byte(swBody), at },
		"bad timestamp": func(h http.Header) ([]byte, time.Time) {
			h.Set(HeaderTimestamp, "soon")
			return []byte(swBody), at
		},
		"v2 scheme": func(h http.Header) ([]byte, time.Time) {
			h.Set(HeaderSignature, "v2,"+swSignature[3:])
			return []byte(swBody), at
		},
	}
	for name, mod := range cases {
		h := good()
		body, now := mod(h)
		if _, err := k.Verify(h, body, now); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	other, _ := ParseSecret("whsec_" + "c2VjcmV0LW9mLWFub3RoZXItYXBwLTEyMzQ1Njc4OQ==")
	if _, err := other.Verify(good(), []byte(swBody), at); err == nil {
		t.Error("another secret's key accepted the call")
	}
}

func TestParseSecret(t *testing.T) {
	for s, ok := range map[string]bool{
		swSecret:                           true,
		"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw": false, // no prefix
		"whsec_!!!":                        false,
		"whsec_c2hvcnQ=":                   false, // 5 bytes
	} {
		if _, err := ParseSecret(s); (err == nil) != ok {
			t.Errorf("%q: err = %v", s, err)
		}
	}
}
