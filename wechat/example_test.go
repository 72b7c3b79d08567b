package wechat_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"

	"github.com/wxauth/caddy-wxauth/session"
	"github.com/wxauth/caddy-wxauth/wechat"
)

// WeChat's official AES sample (the WXBizDataCrypt demo), also in
// testdata/wechat_vectors.json.
const (
	sampleAppID      = "wx4f4bc4dec97d474b"
	sampleSessionKey = "tiihtNczf5v6AKRyjwEUhQ=="
	sampleIV         = "r7BXXKkLb8qrSNn05n0qiA=="
	sampleData       = "CiyLU1Aw2KjvrjMdj8YKliAjtP4gsMZMQmRzooG2xrDcvSnxIMXFufNstNGTyaGS9uT5geRa0W4oTOb1WT7fJlAC+oNPdbB+3hVbJSRgv+4lGOETKUQz6OYStslQ142dNCuabNPGBzlooOmB231qMM85d2/fV6ChevvXvQP8Hkue1poOFtnEtpyxVLW1zAo6/1Xx1COxFvrc2d7UL/lmHInNlxuacJXwu0fjpXfz/YqYzBIBzD6WUfTIF9GRHpOn/Hz7saL8xz+W//FRAUid1OksQaQx4CMs8LOddcQhULW4ucetDf96JcR3g0gfRK4PC7E/r7Z6xNrXd2UIeorGj5Ef7b1pJAYB6Y5anaHqZ9J6nKEBvB4DnNLIVWSgARns/8wR2SiRS7MNACwTyrGvt9ts8p12PKFdlqYTopNHR1Vf7XjfhQlVsAJdNiKdYmYVoKlaRv85IfVunYzO0IKXsyl7JCUjCpoG20f0a04COwfneQAGGwd5oa+T8yO5hzuyDb/XcxxmK01EpqOyuxINew=="
)

func ExampleDecryptUserData() {
	data, err := wechat.DecryptUserData(sampleAppID, sampleSessionKey, sampleData, sampleIV)
	if err != nil {
		fmt.Println(err)
		return
	}
	var user struct {
		OpenID    string `json:"openId"`
		NickName  string `json:"nickName"`
		UnionID   string `json:"unionId"`
		Watermark struct {
			AppID string `json:"appid"`
		} `json:"watermark"`
	}
	if err := json.Unmarshal(data, &user); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(user.OpenID, user.NickName, user.UnionID, user.Watermark.AppID)

	// The same data is refused for another mini-program.
	_, err = wechat.DecryptUserData("wx0000000000000000", sampleSessionKey, sampleData, sampleIV)
	fmt.Println(errors.Is(err, wechat.ErrDecrypt))
	// Output:
	// oGZUI0egBJY1zhBYw2KhdUfwVJJE Band ocMvos6NjeKLIBqg5Mr9QjxrP1FA wx4f4bc4dec97d474b
	// true
}

func ExampleVerifyRawData() {
	// WeChat's official rawData signature sample.
	rawData := `{"nickName":"Band","gender":1,"language":"zh_CN","city":"Guangzhou","province":"Guangdong","country":"CN","avatarUrl":"http://wx.qlogo.cn/mmopen/vi_32/1vZvI39NWFQ9XM4LtQpFrQJ1xlgZxx3w7bQxKARol6503Iuswjjn6nIGBiaycAjAtpujxyzYsrztuuICqIM5ibXQ/0"}`
	sessionKey := "HyVFkGl5F5OQWJZZaNzBBg=="
	signature := "75e81ceda165f4ffa64f4068af58c64b8f54b88c"

	fmt.Println(wechat.VerifyRawData(rawData, sessionKey, signature))
	fmt.Println(wechat.VerifyRawData(rawData+" ", sessionKey, signature))
	// Output:
	// true
	// false
}

func ExampleLoginStateSignature() {
	// WeChat's official login-state signature sample: the key is the
	// session_key's base64 text itself.
	fmt.Println(wechat.LoginStateSignature("o0q0otL8aEzpcZL/FT9WsQ==", `{"foo":"bar"}`))
	// Output:
	// 654571f79995b2ce1e149e53c0a33dc39c0a74090db514261454e8dbe432aa0b
}

func ExampleEncrypt() {
	// Encrypt uses a random iv, so only the round trip is deterministic.
	plain := []byte(`{"phoneNumber":"13800000000","watermark":{"appid":"wxdemo0123456789"}}`)
	encryptedData, iv, err := wechat.Encrypt(sampleSessionKey, plain)
	if err != nil {
		fmt.Println(err)
		return
	}
	got, err := wechat.Decrypt(sampleSessionKey, encryptedData, iv)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(got))

	// A wrong key fails strict PKCS#7 unpadding (or, rarely, yields bytes
	// that DecryptUserData refuses as not JSON); never silently wrong data.
	_, err = wechat.DecryptUserData("wxdemo0123456789", "7MG7jbTToVVRWRXVA885rg==", encryptedData, iv)
	fmt.Println(errors.Is(err, wechat.ErrDecrypt))
	// Output:
	// {"phoneNumber":"13800000000","watermark":{"appid":"wxdemo0123456789"}}
	// true
}

func ExampleClient_Code2Session() {
	// A stand-in for WeChat's code2Session, which answers JSON labelled text/plain.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/sns/jscode2session" || r.URL.Query().Get("secret") != "demo-secret" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		switch r.URL.Query().Get("js_code") {
		case "good-code":
			fmt.Fprint(w, `{"openid":"o-demo-openid","session_key":"tiihtNczf5v6AKRyjwEUhQ=="}`)
		default:
			fmt.Fprint(w, `{"errcode":40029,"errmsg":"invalid code"}`)
		}
	}))
	defer srv.Close()

	c := wechat.NewClient(wechat.Config{
		AppID:     "wxdemo0123456789",
		AppSecret: "demo-secret",
		BaseURL:   srv.URL,
	})
	s, err := c.Code2Session(context.Background(), "good-code")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s.OpenID)

	_, err = c.Code2Session(context.Background(), "used-code")
	fmt.Println(wechat.IsInvalidCode(err))
	// Output:
	// o-demo-openid
	// true
}

func ExampleNewAccessTokens() {
	// A stand-in for WeChat's stable_token that counts its calls.
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/cgi-bin/stable_token" {
			http.NotFound(w, r)
			return
		}
		calls.Add(1)
		fmt.Fprint(w, `{"access_token":"demo-access-token","expires_in":7200}`)
	}))
	defer srv.Close()

	c := wechat.NewClient(wechat.Config{AppID: "wxdemo0123456789", AppSecret: "demo-secret", BaseURL: srv.URL})
	// Any session.Store is a Cache; instances sharing it share the token.
	cache := session.NewMemory()
	var refreshed int
	tokens := wechat.NewAccessTokens(c, cache, "wxauth/wxdemo0123456789/access_token", func() { refreshed++ })

	ctx := context.Background()
	for range 3 {
		tok, err := tokens.Token(ctx)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(tok)
	}
	// Another instance over the same store finds the token there.
	other := wechat.NewAccessTokens(c, cache, "wxauth/wxdemo0123456789/access_token", nil)
	err := other.Do(ctx, func(token string) error {
		fmt.Println("calling WeChat with", token)
		return nil
	})
	fmt.Println(err, calls.Load(), refreshed)
	// Output:
	// demo-access-token
	// demo-access-token
	// demo-access-token
	// calling WeChat with demo-access-token
	// <nil> 1 1
}
