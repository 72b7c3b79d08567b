package wxauth

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wxauth/caddy-wxauth/internal/apierr"
	"github.com/wxauth/caddy-wxauth/internal/login"
)

// FuzzLoginBody: any login body, in any content type, gives a code or a
// contract error (400/413), never a panic.
func FuzzLoginBody(f *testing.F) {
	f.Add(`{"code":"0a1b2c"}`, uint8(0))
	f.Add(`code=0a1b2c`, uint8(1))
	f.Add(`{"code":42}`, uint8(0))
	f.Add(`["code"]`, uint8(0))
	f.Add(`{`, uint8(2))
	f.Add("--x\r\nContent-Disposition: form-data; name=\"code\"\r\n\r\nabc\r\n--x--\r\n", uint8(3))
	types := []string{"application/json", "application/x-www-form-urlencoded", "", "multipart/form-data; boundary=x", "text/plain; charset=%%"}
	f.Fuzz(func(t *testing.T, body string, ct uint8) {
		r := httptest.NewRequest(http.MethodPost, "/wx/login", strings.NewReader(body))
		if c := types[int(ct)%len(types)]; c != "" {
			r.Header.Set("Content-Type", c)
		}
		r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, 1024)
		f, err := readFields(r, "code", "nonce")
		if err != nil {
			var ae *apierr.Error
			if !errors.As(err, &ae) || (ae.Status != 400 && ae.Status != 413) {
				t.Fatalf("error outside the contract: %v", err)
			}
			return
		}
		_, _ = validCode(f[0]), login.ValidNonce(f[1])
	})
}
