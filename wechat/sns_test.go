package wechat

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
)

const (
	testOAuthToken   = "OAUTH-ACCESS-do-not-leak-7"
	testRefreshToken = "OAUTH-REFRESH-do-not-leak-8"
)

// snsServer answers sns/oauth2/access_token with token and sns/userinfo
// with info, and records the queries it got.
func snsServer(t *testing.T, token, info string) (*wxServer, func() []string) {
	t.Helper()
	var mu sync.Mutex
	var got []string
	wx := newWX(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.URL.Path+"?"+r.URL.RawQuery)
		mu.Unlock()
		w.Header().Set("Content-Type", "text/plain")
		switch r.URL.Path {
		case "/sns/oauth2/access_token":
			io.WriteString(w, token)
		case "/sns/userinfo":
			io.WriteString(w, info)
		default:
			t.Errorf("unexpected call %s", r.URL.Path)
		}
	})
	return wx, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), got...) }
}

func TestOAuthLogin(t *testing.T) {
	token := `{"access_token":"` + testOAuthToken + `","expires_in":7200,"refresh_token":"` + testRefreshToken +
		`","openid":"o-web","scope":"snsapi_userinfo","unionid":"u-1"}`
	info := `{"openid":"o-web","nickname":"Alice","sex":2,"province":"Guangdong","city":"Shenzhen","country":"CN",` +
		`"headimgurl":"https://img.example/a.png","privilege":["chinaunicom"],"unionid":"u-1"}`
	wx, calls := snsServer(t, token, info)
	u, err := wx.client(nil).OAuthLogin(context.Background(), testCode, true)
	if err != nil {
		t.Fatal(err)
	}
	want := &WebUser{OpenID: "o-web", UnionID: "u-1", Scope: "snsapi_userinfo", Profile: &Profile{
		OpenID: "o-web", UnionID: "u-1", Nickname: "Alice", Sex: 2, Province: "Guangdong", City: "Shenzhen",
		Country: "CN", HeadImgURL: "https://img.example/a.png"}}
	if !reflect.DeepEqual(u, want) {
		t.Fatalf("got %+v %+v, want %+v %+v", u, u.Profile, want, want.Profile)
	}
	c := calls()
	if len(c) != 2 || !strings.HasPrefix(c[0], "/sns/oauth2/access_token?") || !strings.HasPrefix(c[1], "/sns/userinfo?") {
		t.Fatalf("calls %v", c)
	}
	for _, part := range []string{"appid=" + testAppID, "secret=" + testSecret, "code=" + testCode, "grant_type=authorization_code"} {
		if !strings.Contains(c[0], part) {
			t.Errorf("access_token call %q lacks %q", c[0], part)
		}
	}
	for _, part := range []string{"access_token=" + testOAuthToken, "openid=o-web", "lang=zh_CN"} {
		if !strings.Contains(c[1], part) {
			t.Errorf("userinfo call %q lacks %q", c[1], part)
		}
	}
	// The profile handed on never holds the privilege list or a token.
	b, _ := json.Marshal(u.Profile)
	for _, bad := range []string{"privilege", testOAuthToken, testRefreshToken} {
		if strings.Contains(string(b), bad) {
			t.Fatalf("profile %s holds %q", b, bad)
		}
	}
}

// snsapi_base asks no profile; a snapshot visitor gets none either.
func TestOAuthLoginWithoutProfile(t *testing.T) {
	wx, calls := snsServer(t, `{"access_token":"a","expires_in":7200,"refresh_token":"r","openid":"o-1","scope":"snsapi_base"}`, "")
	u, err := wx.client(nil).OAuthLogin(context.Background(), testCode, false)
	if err != nil || u.OpenID != "o-1" || u.Profile != nil || u.Snapshot || len(calls()) != 1 {
		t.Fatalf("got %+v, %v, calls %v", u, err, calls())
	}
	wx, calls = snsServer(t, `{"access_token":"a","expires_in":7200,"refresh_token":"r","openid":"o-snap","scope":"snsapi_base","is_snapshotuser":1}`, "")
	u, err = wx.client(nil).OAuthLogin(context.Background(), testCode, true)
	if err != nil || !u.Snapshot || u.Profile != nil || len(calls()) != 1 {
		t.Fatalf("got %+v, %v, calls %v", u, err, calls())
	}
}

// A unionid given by only one of the two answers is the user's.
func TestOAuthLoginUnionIDFromProfile(t *testing.T) {
	wx, _ := snsServer(t, `{"access_token":"a","openid":"o-1","scope":"snsapi_login"}`,
		`{"openid":"o-1","nickname":"Bob","sex":1,"province":"","city":"","country":"","headimgurl":"","unionid":"u-bob"}`)
	u, err := wx.client(nil).OAuthLogin(context.Background(), testCode, true)
	if err != nil || u.UnionID != "u-bob" || u.Profile.UnionID != "u-bob" {
		t.Fatalf("got %+v, %v", u, err)
	}
}

func TestOAuthLoginErrors(t *testing.T) {
	tests := []struct {
		name, token, info string
		errcode           int // 0: an UpstreamError
		api               string
		attempts          int
	}{
		{"bad code", `{"errcode":40029,"errmsg":"invalid code"}`, "", 40029, "sns/oauth2/access_token", 1},
		{"used code", `{"errcode":40163,"errmsg":"code been used"}`, "", 40163, "sns/oauth2/access_token", 1},
		{"expired code", `{"errcode":42003,"errmsg":"code expired"}`, "", 42003, "sns/oauth2/access_token", 1},
		{"wrong secret", `{"errcode":40125,"errmsg":"invalid appsecret ` + testSecret + `"}`, "", 40125, "sns/oauth2/access_token", 1},
		{"no openid", `{"access_token":"a"}`, "", 0, "sns/oauth2/access_token", 1},
		{"not json", `<html>`, "", 0, "sns/oauth2/access_token", 1},
		{"userinfo refused", `{"access_token":"` + testOAuthToken + `","openid":"o-1"}`,
			`{"errcode":40001,"errmsg":"invalid credential, access_token ` + testOAuthToken + `"}`, 40001, "sns/userinfo", 2},
		{"userinfo of another", `{"access_token":"a","openid":"o-1"}`, `{"openid":"o-2"}`, 0, "sns/userinfo", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wx, calls := snsServer(t, tt.token, tt.info)
			_, err := wx.client(nil).OAuthLogin(context.Background(), testCode, true)
			var we *Error
			var ue *UpstreamError
			switch {
			case tt.errcode != 0 && (!errors.As(err, &we) || we.Code != tt.errcode || we.API != tt.api):
				t.Fatalf("err = %v, want errcode %d of %s", err, tt.errcode, tt.api)
			case tt.errcode == 0 && (!errors.As(err, &ue) || ue.API != tt.api):
				t.Fatalf("err = %v, want an upstream error of %s", err, tt.api)
			}
			if len(calls()) != tt.attempts {
				t.Fatalf("calls %v", calls())
			}
			noSecrets(t, err)
			for _, s := range []string{testOAuthToken, testRefreshToken} {
				if strings.Contains(err.Error(), s) {
					t.Fatalf("error %q holds a token", err)
				}
			}
		})
	}
	if !IsInvalidCode(&Error{Code: 42003}) {
		t.Fatal("an expired web login code is not an invalid code")
	}
}
