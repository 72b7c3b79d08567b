package wxmock

import (
	"encoding/base64"
	"testing"
)

// WeChat's official examples.
func TestCryptoMatchesWeChatVectors(t *testing.T) {
	const (
		key   = "tiihtNczf5v6AKRyjwEUhQ=="
		iv    = "r7BXXKkLb8qrSNn05n0qiA=="
		plain = `{"openId":"oGZUI0egBJY1zhBYw2KhdUfwVJJE","nickName":"Band","gender":1,"language":"zh_CN","city":"Guangzhou","province":"Guangdong","country":"CN","avatarUrl":"http://wx.qlogo.cn/mmopen/vi_32/aSKcBBPpibyKNicHNTMM0qJVh8Kjgiak2AHWr8MHM4WgMEm7GFhsf8OYrySdbvAMvTsw3mo8ibKicsnfN5pRjl1p8HQ/0","unionId":"ocMvos6NjeKLIBqg5Mr9QjxrP1FA","watermark":{"timestamp":1477314187,"appid":"wx4f4bc4dec97d474b"}}`
		enc   = "CiyLU1Aw2KjvrjMdj8YKliAjtP4gsMZMQmRzooG2xrDcvSnxIMXFufNstNGTyaGS9uT5geRa0W4oTOb1WT7fJlAC+oNPdbB+3hVbJSRgv+4lGOETKUQz6OYStslQ142dNCuabNPGBzlooOmB231qMM85d2/fV6ChevvXvQP8Hkue1poOFtnEtpyxVLW1zAo6/1Xx1COxFvrc2d7UL/lmHInNlxuacJXwu0fjpXfz/YqYzBIBzD6WUfTIF9GRHpOn/Hz7saL8xz+W//FRAUid1OksQaQx4CMs8LOddcQhULW4ucetDf96JcR3g0gfRK4PC7E/r7Z6xNrXd2UIeorGj5Ef7b1pJAYB6Y5anaHqZ9J6nKEBvB4DnNLIVWSgARns/8wR2SiRS7MNACwTyrGvt9ts8p12PKFdlqYTopNHR1Vf7XjfhQlVsAJdNiKdYmYVoKlaRv85IfVunYzO0IKXsyl7JCUjCpoG20f0a04COwfneQAGGwd5oa+T8yO5hzuyDb/XcxxmK01EpqOyuxINew=="
	)
	ivb, _ := base64.StdEncoding.DecodeString(iv)
	got, gotIV, err := encryptIV(key, ivb, []byte(plain))
	if err != nil || got != enc || gotIV != iv {
		t.Errorf("encryption of the official sample differs: %v", err)
	}
	if d, ok := decrypt(key, got, gotIV); !ok || string(d) != plain {
		t.Error("round trip failed")
	}
	e, v, err := encrypt(key, []byte(plain))
	if err != nil || e == enc {
		t.Errorf("random iv not used: %v", err)
	}
	if d, ok := decrypt(key, e, v); !ok || string(d) != plain {
		t.Error("round trip with a random iv failed")
	}
	if _, _, err := encrypt("c2hvcnQ=", []byte(plain)); err == nil {
		t.Error("short session_key accepted")
	}

	raw := `{"nickName":"Band","gender":1,"language":"zh_CN","city":"Guangzhou","province":"Guangdong","country":"CN","avatarUrl":"http://wx.qlogo.cn/mmopen/vi_32/1vZvI39NWFQ9XM4LtQpFrQJ1xlgZxx3w7bQxKARol6503Iuswjjn6nIGBiaycAjAtpujxyzYsrztuuICqIM5ibXQ/0"}`
	if got := rawDataSignature(raw, "HyVFkGl5F5OQWJZZaNzBBg=="); got != "75e81ceda165f4ffa64f4068af58c64b8f54b88c" {
		t.Errorf("rawData signature %s", got)
	}
	if got := loginSignature("o0q0otL8aEzpcZL/FT9WsQ==", `{"foo":"bar"}`); got != "654571f79995b2ce1e149e53c0a33dc39c0a74090db514261454e8dbe432aa0b" {
		t.Errorf("login-state signature %s", got)
	}
}

func TestIDs(t *testing.T) {
	a1, a2, b := openID("wxa", "alice"), openID("wxa", "alice"), openID("wxb", "alice")
	if a1 != a2 || a1 == b {
		t.Error("openid is not stable per app and user")
	}
	if len(a1) != 28 || len(unionID("alice")) != 28 || unionID("alice") == unionID("bob") {
		t.Error("bad ids")
	}
	t1, t2 := randomToken(24), randomToken(24)
	k1, k2 := newSessionKey(), newSessionKey()
	if t1 == t2 || k1 == k2 || !validSessionKey(k1) {
		t.Error("random values repeat or are malformed")
	}
}
