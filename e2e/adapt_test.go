package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddytest"
)

// TestCaddyfileAdapt adapts each testdata/caddyfile_adapt/*.caddyfiletest,
// as Caddy's own caddyfile_adapt tests do; no server is started. A file
// holds a Caddyfile, a line "----------", then either the expected JSON
// (tab-indented) or, when the Caddyfile must be refused, a substring of the
// adapter's error.
//
// To add a case, write the Caddyfile and produce its JSON with
//
//	go run ./cmd/caddy adapt --config X --adapter caddyfile --pretty
//
// then read the JSON against the Caddyfile before saving it.
func TestCaddyfileAdapt(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "caddyfile_adapt", "*.caddyfiletest"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no testdata/caddyfile_adapt/*.caddyfiletest files")
	}
	for _, path := range files {
		name := filepath.Base(path)
		t.Run(strings.TrimSuffix(name, ".caddyfiletest"), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			text := strings.ReplaceAll(string(data), "\r\n", "\n")
			parts := strings.Split(text, "\n----------\n")
			if len(parts) != 2 {
				t.Fatalf("want a Caddyfile, a line ----------, and the expectation; found %d parts", len(parts))
			}
			input := strings.TrimSpace(parts[0]) + "\n"
			expected := strings.TrimSpace(parts[1])

			// The files double as documentation: keep them as caddy fmt writes them.
			if formatted := string(caddyfile.Format([]byte(input))); formatted != input {
				t.Errorf("Caddyfile is not formatted; caddy fmt gives:\n%s", formatted)
			}

			if strings.HasPrefix(expected, "{") {
				if !caddytest.CompareAdapt(t, name, input, "caddyfile", expected) {
					t.Error("adapted JSON differs from the expectation (diff on stdout: - expected, + got)")
				}
				return
			}
			_, _, err = caddyconfig.GetAdapter("caddyfile").Adapt([]byte(input), nil)
			if err == nil {
				t.Fatalf("adapting succeeded; want an error containing %q", expected)
			}
			if !strings.Contains(err.Error(), expected) {
				t.Errorf("error %q does not contain %q", err, expected)
			}
		})
	}
}
