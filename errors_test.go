package wxauth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/wxauth/caddy-wxauth/wechat"
)

func TestWeChatErrorMapping(t *testing.T) {
	cases := []struct {
		err     error
		status  int
		code    string
		errcode int // 0: none
	}{
		{&wechat.Error{API: "jscode2session", Code: 40029}, 401, "invalid_code", 40029},
		{&wechat.Error{API: "jscode2session", Code: 40163}, 401, "invalid_code", 40163},
		{&wechat.Error{API: "getuserphonenumber", Code: 40029}, 401, "invalid_code", 40029},
		{&wechat.Error{API: "jscode2session", Code: 40226}, 403, "risky_user", 40226},
		{&wechat.Error{API: "jscode2session", Code: 45011}, 429, "rate_limited", 45011},
		{&wechat.Error{API: "jscode2session", Code: -1}, 502, "upstream_error", -1},
		{&wechat.Error{API: "jscode2session", Code: 40125}, 502, "upstream_error", 40125},
		{fmt.Errorf("wrapped: %w", &wechat.Error{API: "stable_token", Code: 40013}), 502, "upstream_error", 40013},
		{&wechat.UpstreamError{API: "jscode2session", Timeout: true}, 502, "upstream_error", 0},
		{&wechat.UpstreamError{API: "jscode2session", Err: errors.New("reset")}, 502, "upstream_error", 0},
		{fmt.Errorf("waiting for the lock: %w", context.DeadlineExceeded), 502, "upstream_error", 0},
		{&wechat.Error{API: "jscode2session", Code: 40164, Msg: "invalid ip 203.0.113.9, not in whitelist"}, 502, "upstream_error", 40164},
		{errors.New("anything else"), 502, "upstream_error", 0},
	}
	for _, c := range cases {
		e := wechatError(c.err)
		got := 0
		if e.ErrCode != nil {
			got = *e.ErrCode
		}
		if e.Status != c.status || e.Code != c.code || got != c.errcode || e.Message == "" {
			t.Errorf("%v: got %d %s errcode %d, want %d %s %d", c.err, e.Status, e.Code, got, c.status, c.code, c.errcode)
		}
		if we, ok := c.err.(*wechat.Error); ok && we.Msg != "" && strings.Contains(e.Message, we.Msg) {
			t.Errorf("%v: WeChat's errmsg reached the client", c.err)
		}
		if name, _ := e.Header(); c.status == 429 && name != "Retry-After" {
			t.Errorf("%v: no Retry-After", c.err)
		}
	}
}
