package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCaddyValidate runs `caddy validate` on configs that cannot work: each
// must fail, saying what is wrong, rather than load and then fail every
// request.
func TestCaddyValidate(t *testing.T) {
	const unset = "WXAUTH_TEST_NEVER_SET"
	cases := []struct {
		name, body, want string // want "" = valid
	}{
		{"valid", "", ""},
		{"key_rotation too short for token_ttl", "key_rotation 1m", "key_rotation 1m0s is too short for token_ttl 2h0m0s"},
		{"app_id from an unset variable", "", "app_id is empty after replacing placeholders"},
		{"app_secret from an unset variable", "", "app_secret is empty after replacing placeholders"},
		{"jwks_path with HS256 keys", "jwks_path /jwks", "jwks_path publishes EdDSA public keys"},
		{"session_max_age below token_ttl", "token_ttl 2h\n\t\tsession_max_age 1h", "session_max_age 1h0m0s is shorter than token_ttl 2h0m0s"},
		{"jwks_path with EdDSA keys", "jwks_path /jwks\n\t\tsigning_alg EdDSA", ""},
		{"app_id an original id", "", "that is the official account's original id, use the mini-program's AppID"},
		{"app_secret not WeChat's shape", "", "app_secret is not 32 hex characters"},
		{"any shape against wxmock", "api_base http://127.0.0.1:2", ""},
	}
	dir := t.TempDir()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			appID, secret := "wx0123456789abcdef", "0123456789abcdef0123456789abcdef"
			switch {
			case tc.name == "app_id an original id":
				appID = "gh_0123456789ab"
			case tc.name == "app_secret not WeChat's shape":
				secret = "demo-secret"
			case tc.name == "any shape against wxmock":
				appID, secret = "wxdemo0123456789", "demo-secret"
			case strings.HasPrefix(tc.name, "app_id"):
				appID = "{env." + unset + "}"
			case strings.HasPrefix(tc.name, "app_secret"):
				secret = "{env." + unset + "}"
			}
			cfg := "{\n\tadmin off\n\tstorage file_system " + filepath.Join(dir, "storage") + "\n}\n" +
				"http://127.0.0.1:1 {\n\twxauth {\n\t\tapp_id " + appID + "\n\t\tapp_secret " + secret + "\n\t\t" + tc.body + "\n\t}\n}\n"
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".Caddyfile")
			if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(caddyBinary(t), "validate", "--config", path, "--adapter", "caddyfile")
			cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+dir+"/data", "XDG_CONFIG_HOME="+dir+"/config")
			out, err := cmd.CombinedOutput()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v\n%s", err, out)
			case tc.want != "" && err == nil:
				t.Fatalf("validated; want %q\n%s", tc.want, out)
			case tc.want != "" && !strings.Contains(string(out), tc.want):
				t.Fatalf("output does not say %q:\n%s", tc.want, out)
			}
		})
	}
}
