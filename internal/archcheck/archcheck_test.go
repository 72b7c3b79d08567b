// Package archcheck holds the structural rules of the repository as tests,
// so that CI keeps the package map honest: a thin Caddy glue package over
// small internal packages, one clock, no import-time side effects, and no
// code written twice.
package archcheck

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Limits of the structure. Each is a ratchet: it holds what the code has
// reached, and only ever goes down, towards the goal beside it.
const (
	maxRootFiles      = 13 // non-test .go files of the root package (the Caddy glue)
	maxHandlerFields  = 20 // the Handler struct
	maxProvisionLines = 60 // Handler.Provision
	maxGuardFiles     = 6  // a change to the token check touches at most these files of internal/guard
	maxClockReads     = 0  // time.Now calls in the root package and internal/, outside internal/clock
	maxFuncWiring     = 0  // function pointers swapped in at run time
	minDuplicateRun   = 8  // identical non-blank lines that count as written twice
)

// root is the repository's top folder.
var root = filepath.Join("..", "..")

// skipDir reports whether dir holds no production code of the plugin:
// test support, benchmarks, examples.
func skipDir(rel string) bool {
	for _, p := range []string{"bench", "examples", "internal/redistest", "internal/testpki",
		"internal/interop", "session/feedtest", "session/storetest", "node_modules", "testdata"} {
		if rel == p || strings.HasPrefix(rel, p+"/") || strings.Contains(rel, "/node_modules") {
			return true
		}
	}
	return strings.HasPrefix(filepath.Base(rel), ".")
}

// sources lists the production .go files of the module, relative to root.
func sources(t *testing.T) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel != "." && skipDir(rel) {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(rel, ".go") && !strings.HasSuffix(rel, "_test.go") {
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func parse(t *testing.T, rel string) (*token.FileSet, *ast.File) {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, filepath.Join(root, rel), nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	return fset, f
}

func TestRootPackageIsThin(t *testing.T) {
	var rootFiles []string
	for _, rel := range sources(t) {
		if !strings.Contains(rel, "/") {
			rootFiles = append(rootFiles, rel)
		}
	}
	if len(rootFiles) > maxRootFiles {
		t.Errorf("the root package has %d non-test files, at most %d: %v", len(rootFiles), maxRootFiles, rootFiles)
	}
	for _, rel := range rootFiles {
		fset, f := parse(t, rel)
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.TypeSpec:
				if st, ok := n.Type.(*ast.StructType); ok && n.Name.Name == "Handler" {
					if c := fieldCount(st); c > maxHandlerFields {
						t.Errorf("%s: Handler has %d fields, at most %d", rel, c, maxHandlerFields)
					}
				}
			case *ast.FuncDecl:
				if n.Name.Name == "Provision" && n.Recv != nil && recvName(n) == "Handler" {
					lines := fset.Position(n.End()).Line - fset.Position(n.Pos()).Line + 1
					if lines > maxProvisionLines {
						t.Errorf("%s: Handler.Provision is %d lines, at most %d", rel, lines, maxProvisionLines)
					}
				}
			}
			return true
		})
	}
}

func TestTokenCheckIsSmall(t *testing.T) {
	var n int
	for _, rel := range sources(t) {
		if strings.HasPrefix(rel, "internal/guard/") {
			n++
		}
	}
	if n > maxGuardFiles {
		t.Errorf("internal/guard has %d non-test files, at most %d", n, maxGuardFiles)
	}
}

func fieldCount(st *ast.StructType) int {
	n := 0
	for _, f := range st.Fields.List {
		n += max(len(f.Names), 1)
	}
	return n
}

func recvName(fn *ast.FuncDecl) string {
	t := fn.Recv.List[0].Type
	if s, ok := t.(*ast.StarExpr); ok {
		t = s.X
	}
	if id, ok := t.(*ast.Ident); ok {
		return id.Name
	}
	return ""
}

// One clock: the plugin reads time.Now in internal/clock only, so every
// piece of logic that depends on time takes a clock that tests replace. The
// plain packages (session, token, wechat, wxmock) keep a clock default of
// their own and are not counted.
func TestOneClock(t *testing.T) {
	var found []string
	for _, rel := range sources(t) {
		if strings.HasPrefix(rel, "internal/clock/") || strings.Contains(rel, "/") && !strings.HasPrefix(rel, "internal/") {
			continue
		}
		fset, f := parse(t, rel)
		ast.Inspect(f, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok && sel.Sel.Name == "Now" {
				if id, ok := sel.X.(*ast.Ident); ok && id.Name == "time" {
					found = append(found, fset.Position(sel.Pos()).String())
				}
			}
			return true
		})
	}
	if len(found) > maxClockReads {
		t.Errorf("%d time.Now calls outside internal/clock, at most %d:\n%s", len(found), maxClockReads, strings.Join(found, "\n"))
	}
}

// Importing the plugin only registers modules and directives: no init
// changes process-wide state of other libraries.
func TestInitOnlyRegisters(t *testing.T) {
	allowed := []string{"caddy.RegisterModule", "httpcaddyfile.RegisterHandlerDirective",
		"httpcaddyfile.RegisterDirectiveOrder", "httpcaddyfile.RegisterGlobalOption"}
	for _, rel := range sources(t) {
		fset, f := parse(t, rel)
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Name.Name != "init" || fn.Recv != nil {
				continue
			}
			for _, st := range fn.Body.List {
				es, ok := st.(*ast.ExprStmt)
				call, ok2 := func() (*ast.CallExpr, bool) {
					if !ok {
						return nil, false
					}
					c, ok := es.X.(*ast.CallExpr)
					return c, ok
				}()
				if !ok2 || !slices.Contains(allowed, exprString(call.Fun)) {
					t.Errorf("%s: init does more than register modules", fset.Position(st.Pos()))
				}
			}
		}
	}
}

func exprString(e ast.Expr) string {
	if sel, ok := e.(*ast.SelectorExpr); ok {
		if id, ok := sel.X.(*ast.Ident); ok {
			return id.Name + "." + sel.Sel.Name
		}
	}
	return fmt.Sprintf("%T", e)
}

// No function pointer is swapped in at run time to reach a package that
// could not be imported: dependencies are passed at construction.
func TestNoFunctionPointerWiring(t *testing.T) {
	var found []string
	for _, rel := range sources(t) {
		fset, f := parse(t, rel)
		ast.Inspect(f, func(n ast.Node) bool {
			if idx, ok := n.(*ast.IndexExpr); ok {
				if sel, ok := idx.X.(*ast.SelectorExpr); ok && sel.Sel.Name == "Pointer" {
					if _, isFunc := idx.Index.(*ast.FuncType); isFunc {
						found = append(found, fset.Position(idx.Pos()).String()+": an atomic pointer to a function")
					}
				}
			}
			if as, ok := n.(*ast.AssignStmt); ok {
				for _, lhs := range as.Lhs {
					if sel, ok := lhs.(*ast.SelectorExpr); ok && strings.HasPrefix(sel.Sel.Name, "on") &&
						len(sel.Sel.Name) > 2 && sel.Sel.Name[2] >= 'A' && sel.Sel.Name[2] <= 'Z' {
						found = append(found, fset.Position(sel.Pos()).String()+": callback field "+sel.Sel.Name+" set after construction")
					}
				}
			}
			return true
		})
	}
	if len(found) > maxFuncWiring {
		t.Errorf("%d function pointers wired at run time, at most %d:\n%s", len(found), maxFuncWiring, strings.Join(found, "\n"))
	}
}

// No run of minDuplicateRun identical non-blank lines appears twice in
// production code.
func TestNothingWrittenTwice(t *testing.T) {
	type place struct {
		file string
		line int
	}
	seen := map[[32]byte]place{}
	for _, rel := range sources(t) {
		fset, f := parse(t, rel)
		body := 0 // the first line after the imports
		if n := len(f.Imports); n > 0 {
			body = fset.Position(f.Imports[n-1].End()).Line + 1
		}
		fh, err := os.Open(filepath.Join(root, rel))
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		var nums []int
		sc := bufio.NewScanner(fh)
		for n := 1; sc.Scan(); n++ {
			l := strings.TrimSpace(sc.Text())
			if n <= body || l == "" {
				continue
			}
			lines, nums = append(lines, l), append(nums, n)
		}
		fh.Close()
		reported := -1
		for i := 0; i+minDuplicateRun <= len(lines); i++ {
			key := sha256.Sum256([]byte(strings.Join(lines[i:i+minDuplicateRun], "\n")))
			if p, ok := seen[key]; ok {
				if p.file != rel || nums[i] > reported {
					t.Errorf("%s:%d repeats %s:%d (%d lines)", rel, nums[i], p.file, p.line, minDuplicateRun)
					reported = nums[i+minDuplicateRun-1]
				}
				continue
			}
			seen[key] = place{rel, nums[i]}
		}
	}
}
