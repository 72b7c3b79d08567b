package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/certmagic"

	wxauth "github.com/wxauth/caddy-wxauth"
	"github.com/wxauth/caddy-wxauth/internal/testpki"
	"github.com/wxauth/caddy-wxauth/wxmock"
)

// The JSON config reference is what people copy into the admin API: every
// ```json block of it is a whole Caddy config that loads, and the fields
// it lists are the handlers' fields.

var jsonConfigDocs = []string{repoPath("docs", "json-config.md"), repoPath("docs", "json-config.zh-CN.md")}

// docBlock is one fenced block of a Markdown file.
type docBlock struct {
	lang string
	text string
	line int // of the opening fence
}

// docBlocks returns the fenced blocks of a Markdown file.
func docBlocks(t *testing.T, path string) []docBlock {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var blocks []docBlock
	var cur *docBlock
	var text strings.Builder
	for i, line := range strings.Split(string(b), "\n") {
		fence := strings.HasPrefix(strings.TrimSpace(line), "```")
		switch {
		case cur == nil && fence:
			cur = &docBlock{lang: strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "```")), line: i + 1}
			text.Reset()
		case cur != nil && strings.TrimSpace(line) == "```":
			cur.text = text.String()
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			text.WriteString(line + "\n")
		}
	}
	if cur != nil {
		t.Fatalf("%s:%d: a fenced block is not closed", path, cur.line)
	}
	return blocks
}

// docsEnv sets the variables the examples' {env.*} placeholders name, and
// returns their names. Redis addresses lead nowhere: validating reads the
// store at most, and a store that does not answer only delays the keys.
func docsEnv(t *testing.T) map[string]bool {
	t.Helper()
	ca := filepath.Join(t.TempDir(), "redis-ca.pem")
	if err := os.WriteFile(ca, testpki.CAPEM(t), 0o600); err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	// The platforms' example takes Alipay's keys from the environment:
	// the demo's, which parse as real keys do.
	alipay := map[string]string{}
	for name, file := range map[string]string{
		"ALIPAY_PRIVATE_KEY": "alipay-app-private.pem", "ALIPAY_PUBLIC_KEY": "alipay-platform-public.pem", "ALIPAY_AES_KEY": "alipay-aes.key",
	} {
		b, err := os.ReadFile(repoPath("examples", "keys", file))
		if err != nil {
			t.Fatal(err)
		}
		alipay[name] = strings.TrimSpace(string(b))
	}
	env := map[string]string{
		"DOUYIN_APPID":       "ttd0c5d0c5d0c5d0c5",
		"DOUYIN_SECRET":      "docs-douyin-secret",
		"ALIPAY_APPID":       "2021000000000000",
		"ALIPAY_PRIVATE_KEY": alipay["ALIPAY_PRIVATE_KEY"],
		"ALIPAY_PUBLIC_KEY":  alipay["ALIPAY_PUBLIC_KEY"],
		"ALIPAY_AES_KEY":     alipay["ALIPAY_AES_KEY"],
		"WX_APPID":           "wxd0c5d0c5d0c5d0c5", // the shapes of WeChat's, since most examples call it
		"WX_SECRET":          "d0c5d0c5d0c5d0c5d0c5d0c5d0c5d0c5",
		"WXAUTH_SECRET":      "whsec_" + base64.StdEncoding.EncodeToString(key),
		"WX_SIGNING_KEY":     base64.StdEncoding.EncodeToString(key),
		"REDIS_URL":          fmt.Sprintf("redis://:docs-password@127.0.0.1:%d/0", freePort(t)),
		"REDIS_PASSWORD":     "docs-password",
		"SENTINEL_PASSWORD":  "docs-sentinel-password",
		"REDIS_CA_FILE":      ca,
	}
	names := map[string]bool{}
	for k, v := range env {
		t.Setenv(k, v)
		names[k] = true
	}
	return names
}

var envPlaceholder = regexp.MustCompile(`\{env\.([A-Za-z0-9_]+)\}`)

// validateDocConfig loads raw as a Caddy config and provisions it without
// starting it, as `caddy validate` does: no port is bound, no background
// work runs. Caddy's storage is a folder of the test's own, which stays empty.
func validateDocConfig(t *testing.T, raw string) {
	t.Helper()
	var generic map[string]any
	if err := json.Unmarshal([]byte(raw), &generic); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if st, ok := generic["storage"].(map[string]any); ok && st["module"] != "file_system" {
		t.Fatalf("storage module %v: the test only knows how to redirect file_system", st["module"])
	}
	root := t.TempDir()
	generic["storage"] = map[string]any{"module": "file_system", "root": root}
	b, err := json.Marshal(generic)
	if err != nil {
		t.Fatal(err)
	}
	var cfg caddy.Config
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		t.Fatalf("not a Caddy config: %v", err)
	}
	// Validation points CertMagic's default storage at the config's; put it
	// back for the Caddy that other tests of this binary run.
	saved := certmagic.Default.Storage
	defer func() { certmagic.Default.Storage = saved }()
	if err := caddy.Validate(&cfg); err != nil {
		t.Fatalf("does not load: %v", err)
	}
	// As the docs say: validating writes nothing to the store.
	if entries, err := os.ReadDir(root); err != nil || len(entries) > 0 {
		t.Fatalf("validating wrote to Caddy's storage: %v %v", entries, err)
	}
}

// docHandlers returns the wxauth and wxmock handlers of a config, sorted,
// each decoded into its module and encoded again, so
// that equal configs compare equal however they spell a duration.
func docHandlers(t *testing.T, raw []byte) []string {
	t.Helper()
	var tree any
	if err := json.Unmarshal(raw, &tree); err != nil {
		t.Fatal(err)
	}
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if name, ok := x["handler"].(string); ok && (name == "wxauth" || name == "wxmock") {
				rest := map[string]any{}
				for k, v := range x {
					if k != "handler" {
						rest[k] = v
					}
				}
				b, _ := json.Marshal(rest)
				var mod any = new(wxauth.Handler)
				if name == "wxmock" {
					mod = new(wxmock.Handler)
				}
				dec := json.NewDecoder(bytes.NewReader(b))
				dec.DisallowUnknownFields()
				if err := dec.Decode(mod); err != nil {
					t.Fatalf("%s handler: %v", name, err)
				}
				norm, err := json.Marshal(mod)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, name+" "+string(norm))
				return
			}
			for _, v := range x {
				walk(v)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(tree)
	// Servers are a map, visited in any order.
	slices.Sort(out)
	return out
}

func TestDocsJSONExamples(t *testing.T) {
	known := docsEnv(t)
	for _, path := range jsonConfigDocs {
		blocks := docBlocks(t, path)
		n, paired := 0, 0
		for i, b := range blocks {
			if b.lang != "json" {
				continue
			}
			n++
			var before *docBlock
			if i > 0 && blocks[i-1].lang == "caddyfile" {
				before = &blocks[i-1]
				paired++
			}
			t.Run(fmt.Sprintf("%s:%d", filepath.Base(path), b.line), func(t *testing.T) {
				for _, m := range envPlaceholder.FindAllStringSubmatch(b.text, -1) {
					if !known[m[1]] {
						t.Fatalf("{env.%s}: give it a value in docsEnv", m[1])
					}
				}
				validateDocConfig(t, b.text)
				if before == nil {
					return
				}
				adapted, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(before.text), nil)
				if err != nil {
					t.Fatalf("the Caddyfile before it (line %d) does not adapt: %v", before.line, err)
				}
				want, got := docHandlers(t, adapted), docHandlers(t, []byte(b.text))
				if len(want) == 0 {
					t.Fatalf("the Caddyfile before it (line %d) has no wxauth or wxmock handler", before.line)
				}
				if !slices.Equal(want, got) {
					t.Errorf("its handlers differ from those of the Caddyfile before it (line %d):\nCaddyfile: %s\nJSON:      %s",
						before.line, strings.Join(want, "\n           "), strings.Join(got, "\n           "))
				}
			})
		}
		if n < 6 || paired < n {
			t.Errorf("%s: %d json blocks, %d of them after their Caddyfile; want at least 6, each after its Caddyfile", path, n, paired)
		}
	}
}

// docSection returns the lines of path's section titled title (any level),
// up to the next heading.
func docSection(t *testing.T, text, path, title string) []string {
	t.Helper()
	var out []string
	in := false
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "#") {
			if in {
				break
			}
			in = strings.TrimSpace(strings.TrimLeft(line, "#")) == title
			continue
		}
		if in {
			out = append(out, line)
		}
	}
	if !in && out == nil {
		t.Errorf("%s: no section %q", path, title)
	}
	return out
}

// jsonFields returns the JSON names of typ's fields, and the struct types
// of this module it holds by field name (the subsections of the reference).
func jsonFields(typ reflect.Type) (names []string, nested map[string]reflect.Type) {
	nested = map[string]reflect.Type{}
	for i := range typ.NumField() {
		f := typ.Field(i)
		if f.Anonymous && f.Tag.Get("json") == "" {
			// An embedded struct's fields are inlined in the JSON.
			inner, in := jsonFields(f.Type)
			names = append(names, inner...)
			maps.Copy(nested, in)
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "" || name == "-" {
			continue
		}
		names = append(names, name)
		ft := f.Type
		// A list or a map by name of this module's objects (the platform
		// blocks) has a subsection too.
		for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice || ft.Kind() == reflect.Map {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && strings.HasPrefix(ft.PkgPath(), "github.com/wxauth/caddy-wxauth") {
			nested[name] = ft
		}
	}
	return names, nested
}

var fieldRow = regexp.MustCompile("^\\| `([a-z_]+)` \\|")

// Each section of the reference has a row for every JSON field of its type,
// and no row for a field the type does not have. wxmock's subsections are
// titled "wxmock <field>", apart from wxauth's of the same field.
func TestDocsJSONFields(t *testing.T) {
	for _, path := range jsonConfigDocs {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		var check func(prefix, title string, typ reflect.Type)
		check = func(prefix, title string, typ reflect.Type) {
			names, nested := jsonFields(typ)
			var rows []string
			for _, line := range docSection(t, text, path, title) {
				if m := fieldRow.FindStringSubmatch(line); m != nil {
					rows = append(rows, m[1])
				}
			}
			for _, n := range names {
				if !slices.Contains(rows, n) {
					t.Errorf("%s, section %q: no row for the JSON field %s of %s", path, title, n, typ)
				}
			}
			for _, r := range rows {
				if !slices.Contains(names, r) {
					t.Errorf("%s, section %q: a row for %s, which %s does not have", path, title, r, typ)
				}
			}
			for name, nt := range nested {
				check(prefix, prefix+name, nt)
			}
		}
		check("", "http.handlers.wxauth", reflect.TypeFor[wxauth.Handler]())
		check("wxmock ", "http.handlers.wxmock", reflect.TypeFor[wxmock.Handler]())
	}
}

// The Caddyfiles of docs/ are formatted as caddy fmt writes them and adapt;
// a block that is a lone wxauth or wxmock directive adapts inside a site.
func TestDocsCaddyfiles(t *testing.T) {
	paths, err := filepath.Glob(repoPath("docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, path := range paths {
		for _, b := range docBlocks(t, path) {
			if b.lang != "caddyfile" {
				continue
			}
			n++
			if got := string(caddyfile.Format([]byte(b.text))); got != b.text {
				t.Errorf("%s:%d: not as caddy fmt writes it; it would be:\n%s", path, b.line, got)
			}
			text := b.text
			if strings.HasPrefix(text, "wxauth ") || strings.HasPrefix(text, "wxmock ") {
				text = "example.com {\n" + text + "}\n"
			}
			if _, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(text), nil); err != nil {
				t.Errorf("%s:%d: does not adapt: %v", path, b.line, err)
			}
		}
	}
	if n < 10 {
		t.Errorf("%d caddyfile blocks in docs/, want at least 10", n)
	}
}
