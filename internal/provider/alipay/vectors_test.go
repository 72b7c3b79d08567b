package alipay

import (
	"crypto/rsa"
	"os"
	"path/filepath"
	"strings"
	"testing"

	wx "github.com/wxauth/caddy-wxauth/wechat"
)

// readKey reads a key file of testdata (see testdata/README.md).
func readKey(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func privateKey(t testing.TB, name string) *rsa.PrivateKey {
	t.Helper()
	k, err := parsePrivateKey(readKey(t, name))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return k
}

func publicKey(t testing.TB, name string) *rsa.PublicKey {
	t.Helper()
	k, err := parsePublicKey(readKey(t, name))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return k
}

// docParams and docContent are the example of Alipay's page on signing a
// request without the SDK (自行实现签名, opendocs.alipay.com/common/02kf5q,
// formerly docs.open.alipay.com/291/106118): the request's parameters and
// the sign content (待签名字符串) the page derives from them.
var docParams = map[string]string{
	"app_id":    "2014072300007148",
	"method":    "alipay.mobile.public.menu.add",
	"charset":   "GBK",
	"sign_type": "RSA2",
	"timestamp": "2014-07-24 03:07:50",
	"biz_content": `{"button":[{"actionParam":"ZFB_HFCZ","actionType":"out","name":"话费充值"},{"name":"查询","subButton":[` +
		`{"actionParam":"ZFB_YECX","actionType":"out","name":"余额查询"},{"actionParam":"ZFB_LLCX","actionType":"out","name":"流量查询"},` +
		`{"actionParam":"ZFB_HFCX","actionType":"out","name":"话费查询"}]},{"actionParam":"http://m.alipay.com","actionType":"link","name":"最新优惠"}]}`,
	"sign":    "e9zEAe4TTQ4LPLQvETPoLGXTiURcxiAKfMVQ6Hrrsx2hmyIEGvSfAQzbLxHrhyZ48wOJXTsD4FPnt+YGdK57+fP1BCbf9rIVycfjhYCqlFhbTu9pFnZgT55W+xbAFb9y7vL0MyAxwXUXvZtQVqEwW7pURtKilbcBTEW7TAxzgro=",
	"version": "1.0",
}

var docContent = `app_id=2014072300007148&biz_content={"button":[{"actionParam":"ZFB_HFCZ","actionType":"out","name":"话费充值"},` +
	`{"name":"查询","subButton":[{"actionParam":"ZFB_YECX","actionType":"out","name":"余额查询"},{"actionParam":"ZFB_LLCX","actionType":"out","name":"流量查询"},` +
	`{"actionParam":"ZFB_HFCX","actionType":"out","name":"话费查询"}]},{"actionParam":"http://m.alipay.com","actionType":"link","name":"最新优惠"}]}` +
	`&charset=GBK&method=alipay.mobile.public.menu.add&sign_type=RSA2&timestamp=2014-07-24 03:07:50&version=1.0`

func TestSignContentOfAlipaysExample(t *testing.T) {
	if got := signContent(docParams); got != docContent {
		t.Fatalf("sign content:\n%s\nwant Alipay's:\n%s", got, docContent)
	}
	// Empty values are left out; sign_type stays in (only sign is dropped).
	if got := signContent(map[string]string{"b": "2", "a": "", "sign": "x", "sign_type": "RSA2", "A": "1"}); got != "A=1&b=2&sign_type=RSA2" {
		t.Fatalf("got %q", got)
	}
}

// docSign is the RSA2 sign of docContent's UTF-8 bytes with
// app-private-key.pem (Alipay's published SDK test key), made apart from
// this code by openssl: openssl dgst -sha256 -sign app-private-key.pem.
// (The page's own sign is of an unpublished 1024-bit key.)
const docSign = "GkeJ8IcP2NNZGKyxtqREzEKBfIxvq9rXJscoArF965Qf0Tw2qwOD4QE9Zc38CumYqMjVHHVxQ1yCnwni+e2kxQjKmM9j3CwYYPCbllCbEuQpAVCokr3B1iBaOUtDyPrZbDkaVGlCQspj5SmX9yb6Aaw1" +
	"/6X+S0MkcnkeSU/g6cwLRntAdYWcjURW8sb529bRMUZiTvpX9m3x7DZGDh5sNzpakWCwXXN6l4hS2MQN2nUJuw7+liAZTfE5/8hBvLMbhebAgusK5mD8vahcBCmDXigUMw2T4DhSoRxxyRHCuFsBhNHhqxU6Rku3e5Mpd5353QTxxBBzLAkjNCaxJ5GrMg=="

// One published key in its four forms signs Alipay's example alike, and
// the sign is openssl's.
func TestSignRSA2Vector(t *testing.T) {
	pub := publicKey(t, "app-public-key.pem")
	if bare := publicKey(t, "app-public-key-no-wrapper.pem"); !bare.Equal(pub) {
		t.Fatal("bare base64 public key differs from its PEM")
	}
	for _, name := range []string{"app-private-key.pem", "app-private-key-pkcs8.pem", "app-private-key-no-wrapper.pem", "app-private-key-pkcs8-no-wrapper.pem"} {
		key := privateKey(t, name)
		got, err := signRSA2(key, docContent)
		if err != nil || got != docSign {
			t.Errorf("%s: sign %s, %v; want openssl's", name, got, err)
		}
		if !verifyRSA2(pub, []byte(docContent), got) {
			t.Errorf("%s: own sign does not verify", name)
		}
	}
	if verifyRSA2(pub, []byte(docContent+" "), docSign) || verifyRSA2(publicKey(t, "alipay-public-key.pem"), []byte(docContent), docSign) {
		t.Fatal("a sign verified for other content or another key")
	}
}

// gatewayBody is a real answer of Alipay's gateway, signed with Alipay's
// key, as Alipay's Node.js SDK quotes it in its tests (test/alipay.test.ts,
// "checkResponseSign should work"); alipay-public-key.pem verifies it.
const gatewayBody = `{"alipay_open_file_upload_response":{"code":"10000","msg":"Success","file_id":"CAxAToWB1JsAAAAAAAAAAAAADgSLAQBr"},"sign":"F+LDzpTNiavn7xVZPGuPCSSVRSmWzJGgtuji6tVELGEaqMaNj0jRKXUEr5nloZJBBmwEnddOyCjjepMmrTKTvoOqQ0Efxpr/R1iEeHTHVbb/Q8TTh6Up5gHJDkILdaWS2q1cWeQ6VT+HQY9P3WRXS7uhILHuDODIhpAyCu5KhWGt0rMCIG+Im6NODJP2oohtSCtmTFXg58HH587Z2y2bdbjzOxLvzD9IrU1imghXQ2S/Q+wMIvRk9on6cWnBLkrNvJKapA2ReNGWOwyuASvB9zDVzhMPbR+3mfRGkVDxsq5HYLjBKGskJMXHw0HuugZij6ScRuaLPODhmHwr/pJ9yw=="}`

func TestVerifyRealGatewayAnswer(t *testing.T) {
	alipay := publicKey(t, "alipay-public-key.pem")
	check := func(body string) bool {
		t.Helper()
		a, err := splitAnswer([]byte(body), "alipay_open_file_upload_response")
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		return verifyRSA2(alipay, a.raw, a.sign)
	}
	if !check(gatewayBody) {
		t.Fatal("Alipay's real answer does not verify")
	}
	// Space between members does not matter; the member's own text does.
	spaced := strings.Replace(gatewayBody, `{"alipay_open_file_upload_response":`, "{\"alipay_open_file_upload_response\"\r\n :\n ", 1)
	spaced = strings.Replace(spaced, `},"sign":`, "},\n\n  \"sign\"  :  ", 1)
	if !check(spaced) {
		t.Fatal("the answer with space between its members does not verify")
	}
	for _, tampered := range []string{
		strings.Replace(gatewayBody, `"Success"`, `"success"`, 1),
		strings.Replace(gatewayBody, `"code":"10000","msg"`, `"code":"10000", "msg"`, 1), // re-spaced inside the member
		strings.Replace(gatewayBody, `"F+LD`, `"G+LD`, 1),
	} {
		if check(tampered) {
			t.Errorf("a changed answer verified: %s", tampered)
		}
	}
}

// A real notification of Alipay (from the same SDK's tests, "verify sign
// should delete sign_type", without sign_type): its sign covers the sign
// content of its parameters, which checks signContent against Alipay's own
// signer. notifyKey is the public key the SDK's test verifies it with.
func TestVerifyRealNotification(t *testing.T) {
	const notifyKey = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAqObrdC7hrgAVM98tK0nv3hSQRGGKT4lBsQjHiGjeYZjOPIPHR5knm2jnnz/YGIXIofVHkA/tAlBAd5DrY7YpvI4tP5EONLtZKC2ghBMx7McI2wRD0xiqzxOQr1FuhZGJ8/AUokBzJrzY+aGX2xcOrxFYRlFilvVLTXg4LWjR1tdPkO6+i7wQZAIVMClPkwVRZEbaERRHlKqTzv2gGv5rDU8gRoe1LeaN+6BlbTqHWkQcNCUNrA8C6l17XAXGKDsm/9TFWwO8EPHHHCaQdjtV5/FdcWIt+L8SR1ss7EXTjYDFtxcKVv9rEoY1lX8T4mX+GbXfZHraG5NCF1+XioL5JwIDAQAB"
	params := map[string]string{
		"gmt_create": "2019-08-15 15:56:22", "charset": "utf-8", "seller_email": "z97-yuquerevenue@service.aliyun.com",
		"subject": "语雀空间 500人规模", "buyer_id": "2088102534368455", "invoice_amount": "0.10",
		"notify_id": "2019081500222155624068450559358070", "fund_bill_list": `[{"amount":"0.10","fundChannel":"ALIPAYACCOUNT"}]`,
		"notify_type": "trade_status_sync", "trade_status": "TRADE_SUCCESS", "receipt_amount": "0.10", "buyer_pay_amount": "0.10",
		"app_id": "2019073166072302", "seller_id": "2088531891668739", "gmt_payment": "2019-08-15 15:56:24",
		"notify_time": "2019-08-15 15:56:25", "version": "1.0", "out_trade_no": "20190815155618536-564-57", "total_amount": "0.10",
		"trade_no": "2019081522001468450512505578", "auth_app_id": "2019073166072302", "buyer_logon_id": "xud***@126.com", "point_amount": "0.00",
		"sign": "QfTb8tqE1BMhS5qAnXtvsF3/jBkEvu9q9en0pdbBUDDjvKycZhQb7h8GDs4FKfi049PynaNuatxSgLb/nLWZpXyyh0LEWdK2S6Ri7nPwrVgOs08zugLO20vOQz44y3ti2Ncm8/wZts1Fr2gZ7pShnVX3d1B50hbsXnObT1r/U8ONNQjWXd0HIul4TG+Q3fm3svmSvFEy0WnzuhcyHPX5Gm4ELNctL6Qd5YniGJFNcc7kopHYtI/XD9YCKCH6Ct02rzUs9i11C9CsadtZn+WhxF26Dqt9sGEFajkJ8cxUTLi8+VCpLHsgPE8P0y095uQcDdK0YjCh4x7wVSov+lrmOQ==",
	}
	key, err := parsePublicKey(notifyKey)
	if err != nil {
		t.Fatal(err)
	}
	if !verifyRSA2(key, []byte(signContent(params)), params["sign"]) {
		t.Fatal("Alipay's notification does not verify over signContent")
	}
	params["total_amount"] = "1.00"
	if verifyRSA2(key, []byte(signContent(params)), params["sign"]) {
		t.Fatal("a changed notification verified")
	}
}

// Alipay's content encryption vector from its Easy SDK tests
// (alipay/alipay-easysdk, java/src/test/java/com/alipay/easysdk/util/aes/
// ClientTest.java): AES-128-CBC, zero iv, PKCS#5/7, as OpenPhone opens it.
func TestAESVector(t *testing.T) {
	plain, err := wx.Decrypt("aa4BtZ4tspm2wnXLb1ThQA==", "ILpoMowjIQjfYMR847rnFQ==", zeroIV)
	if err != nil || string(plain) != "test1234567" {
		t.Fatalf("got %q, %v", plain, err)
	}
}
