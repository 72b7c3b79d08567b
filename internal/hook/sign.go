// Package hook is how an event is signed and delivered to the app behind
// Caddy: Standard Webhooks signatures (made for wxauth's events, checked on
// the app's calls) and the client that posts an event and reads the app's
// answer.
package hook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Standard Webhooks (standardwebhooks.com): the app verifies wxauth's events,
// and wxauth verifies the app's calls, with its ready-made libraries.
const (
	HeaderID        = "Webhook-Id"
	HeaderTimestamp = "Webhook-Timestamp"
	HeaderSignature = "Webhook-Signature"
	// Tolerance is how old (or how far ahead) a signed call's
	// timestamp may be.
	Tolerance = 5 * time.Minute
)

// Key is the HMAC key of a "whsec_<base64>" secret.
type Key []byte

// ParseSecret decodes a whsec_ secret, which must hold at least 24 bytes.
func ParseSecret(s string) (Key, error) {
	b64, ok := strings.CutPrefix(s, "whsec_")
	if !ok {
		return nil, errors.New(`the secret must look like "whsec_<base64>", as Standard Webhooks libraries make them`)
	}
	k, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, errors.New("the secret's part after whsec_ is not valid base64")
	}
	if len(k) < 24 {
		return nil, errors.New("the secret is too short: use at least 24 random bytes")
	}
	return k, nil
}

// Sign returns the v1 signature of body sent as id at ts (unix seconds).
func (k Key) Sign(id string, ts int64, body []byte) string {
	m := hmac.New(sha256.New, k)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(strconv.FormatInt(ts, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// SetHeaders signs body for a request.
func (k Key) SetHeaders(h http.Header, id string, ts int64, body []byte) {
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	h.Set(HeaderSignature, k.Sign(id, ts, body))
}

// ErrBadSignature is any failed check of a signed call; the reason stays in
// the log, not in the answer.
var ErrBadSignature = errors.New("bad signature")

// Verify checks a signed call's headers against body at now, and returns
// its id. Several space-separated signatures are allowed (key rotation).
func (k Key) Verify(h http.Header, body []byte, now time.Time) (string, error) {
	id, tsText, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id == "" || len(id) > 256 || tsText == "" || sigs == "" {
		return "", ErrBadSignature
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return "", ErrBadSignature
	}
	if d := now.Sub(time.Unix(ts, 0)); d > Tolerance || d < -Tolerance {
		return "", ErrBadSignature
	}
	want := k.Sign(id, ts, body)
	for _, s := range strings.Fields(sigs) {
		if hmac.Equal([]byte(s), []byte(want)) {
			return id, nil
		}
	}
	return "", ErrBadSignature
}

// NewEventID returns a unique webhook id.
func NewEventID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "evt_" + base64.RawURLEncoding.EncodeToString(b[:])
}
