package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// WxauthAPI calls wxauth's app_api, signed the same Standard Webhooks way as
// its events (same secret): the app changes a user's claims or ends the
// user's sessions on every Caddy instance, or takes wxauth's WeChat
// access_token instead of fetching its own.
type WxauthAPI struct {
	URL    string // e.g. http://127.0.0.1:8080/wx/app
	Secret string // app_hook's whsec_... secret
	Client *http.Client
}

// Call POSTs body, signed; wxauth answers 204, or 200 with a JSON answer
// that is decoded into out (when not nil).
func (api *WxauthAPI) Call(ctx context.Context, body, out any) error {
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
	if out != nil {
		return json.Unmarshal(answer, out)
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
	return api.Call(ctx, map[string]any{"action": "set_claims", "openid": openid, "claims": claims}, nil)
}

// EndSessions ends every session of openid: its tokens are refused from then on.
func (api *WxauthAPI) EndSessions(ctx context.Context, openid string) error {
	return api.Call(ctx, map[string]any{"action": "end_sessions", "openid": openid}, nil)
}

// AccessToken returns wxauth's WeChat access_token: the app shares the one
// token (and quota) of the cluster instead of fetching its own, which
// could invalidate wxauth's. With stale, the token WeChat just refused
// (40001, 42001), wxauth replaces it once for the whole cluster.
func (api *WxauthAPI) AccessToken(ctx context.Context, stale string) (string, error) {
	body := map[string]any{"action": "access_token"}
	if stale != "" {
		body["stale"] = stale
	}
	var ans struct {
		AccessToken string `json:"access_token"`
		ExpiresAt   int64  `json:"expires_at"`
	}
	if err := api.Call(ctx, body, &ans); err != nil {
		return "", err
	}
	if ans.AccessToken == "" {
		return "", fmt.Errorf("wxauth access_token: no token in the answer")
	}
	return ans.AccessToken, nil
}

// SendSubscribeMessage sends a subscribe message (template templateID, its
// data as WeChat wants it) to openid through WeChat's API at wechatAPI
// (https://api.weixin.qq.com, or wxmock), with wxauth's access_token. When
// WeChat refuses the token, it asks wxauth for the next one and sends once
// more.
func (api *WxauthAPI) SendSubscribeMessage(ctx context.Context, wechatAPI, openid, templateID string, data map[string]any) error {
	payload, err := json.Marshal(map[string]any{"touser": openid, "template_id": templateID, "data": data})
	if err != nil {
		return err
	}
	stale := ""
	for try := 0; ; try++ {
		tok, err := api.AccessToken(ctx, stale)
		if err != nil {
			return err
		}
		code, err := wechatPOST(ctx, wechatAPI+"/cgi-bin/message/subscribe/send?access_token="+url.QueryEscape(tok), payload)
		switch {
		case err != nil:
			return err
		case code == 0:
			return nil
		case (code == 40001 || code == 42001) && try == 0:
			stale = tok // refused: wxauth replaces it, once for the cluster
		default:
			return fmt.Errorf("WeChat subscribe/send: errcode %d", code)
		}
	}
}

// wechatPOST posts payload to WeChat and returns its errcode.
func wechatPOST(ctx context.Context, u string, payload []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(payload))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL holds the access_token: keep it out of logs
		}
		return 0, err
	}
	defer res.Body.Close()
	var ans struct {
		ErrCode int `json:"errcode"`
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, 4096)).Decode(&ans); err != nil {
		return 0, fmt.Errorf("WeChat subscribe/send: %d, not JSON: %v", res.StatusCode, err)
	}
	return ans.ErrCode, nil
}
