package wxauth

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
	headerWebhookID        = "Webhook-Id"
	headerWebhookTimestamp = "Webhook-Timestamp"
	headerWebhookSignature = "Webhook-Signature"
	// webhookTolerance is how old (or how far ahead) a signed call's
	// timestamp may be.
	webhookTolerance = 5 * time.Minute
)

// webhookKey is the HMAC key of a "whsec_<base64>" secret.
type webhookKey []byte

// parseWebhookSecret decodes a whsec_ secret, which must hold at least 24 bytes.
func parseWebhookSecret(s string) (webhookKey, error) {
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

// sign returns the v1 signature of body sent as id at ts (unix seconds).
func (k webhookKey) sign(id string, ts int64, body []byte) string {
	m := hmac.New(sha256.New, k)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(strconv.FormatInt(ts, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// setHeaders signs body for a request.
func (k webhookKey) setHeaders(h http.Header, id string, ts int64, body []byte) {
	h.Set(headerWebhookID, id)
	h.Set(headerWebhookTimestamp, strconv.FormatInt(ts, 10))
	h.Set(headerWebhookSignature, k.sign(id, ts, body))
}

// errBadSignature is any failed check of a signed call; the reason stays in
// the log, not in the answer.
var errBadSignature = errors.New("bad signature")

// verify checks a signed call's headers against body at now, and returns
// its id. Several space-separated signatures are allowed (key rotation).
func (k webhookKey) verify(h http.Header, body []byte, now time.Time) (string, error) {
	id, tsText, sigs := h.Get(headerWebhookID), h.Get(headerWebhookTimestamp), h.Get(headerWebhookSignature)
	if id == "" || len(id) > 256 || tsText == "" || sigs == "" {
		return "", errBadSignature
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return "", errBadSignature
	}
	if d := now.Sub(time.Unix(ts, 0)); d > webhookTolerance || d < -webhookTolerance {
		return "", errBadSignature
	}
	want := k.sign(id, ts, body)
	for _, s := range strings.Fields(sigs) {
		if hmac.Equal([]byte(s), []byte(want)) {
			return id, nil
		}
	}
	return "", errBadSignature
}

// newEventID returns a unique webhook id.
func newEventID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "evt_" + base64.RawURLEncoding.EncodeToString(b[:])
}
