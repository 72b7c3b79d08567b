package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// WxauthAPI calls wxauth's app_api, signed the same Standard Webhooks way as
// its events (same secret): the app changes a user's claims or ends the
// user's sessions on every Caddy instance.
type WxauthAPI struct {
	URL    string // e.g. http://127.0.0.1:8080/wx/app
	Secret string // app_hook's whsec_... secret
	Client *http.Client
}

// Call POSTs body, signed; wxauth answers 204.
func (api *WxauthAPI) Call(ctx context.Context, body any) error {
	wh, err := standardwebhooks.NewWebhook(api.Secret)
	if err != nil {
		return err
	}
	payload, err := json.Marshal(body)
	if err != nil {
		return err
	}
	// A fresh id per call: wxauth refuses an id it has seen (a replay).
	var rnd [16]byte
	_, _ = rand.Read(rnd[:])
	id := "msg_" + hex.EncodeToString(rnd[:])
	now := time.Now()
	sig, err := wh.Sign(id, now, payload)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, api.URL, bytes.NewReader(payload))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	req.Header.Set("webhook-signature", sig)
	client := api.Client
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("wxauth %v: %d %s", action(body), res.StatusCode, bytes.TrimSpace(answer))
	}
	return nil
}

func action(body any) any {
	if m, ok := body.(map[string]any); ok {
		return m["action"]
	}
	return body
}

// SetClaims sets claims on every session of openid; a nil value removes that claim.
func (api *WxauthAPI) SetClaims(ctx context.Context, openid string, claims map[string]any) error {
	return api.Call(ctx, map[string]any{"action": "set_claims", "openid": openid, "claims": claims})
}

// EndSessions ends every session of openid: its tokens are refused from then on.
func (api *WxauthAPI) EndSessions(ctx context.Context, openid string) error {
	return api.Call(ctx, map[string]any{"action": "end_sessions", "openid": openid})
}
