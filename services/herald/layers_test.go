package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/heraldhq/herald/"

// pkgInfo is what go list says of one package of the module.
type pkgInfo struct {
	path              string // relative to the module: pkg/bus, services/notifier
	imports, testOnly []string
}

func listModule(t *testing.T) []pkgInfo {
	t.Helper()
	out, err := exec.Command("go", "list", "-f",
		`{{.ImportPath}} {{join .Imports ","}} {{join .TestImports ","}},{{join .XTestImports ","}}`,
		module+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	own := func(list string) []string {
		var r []string
		for _, p := range strings.Split(list, ",") {
			if rel, ok := strings.CutPrefix(p, module); ok {
				r = append(r, rel)
			}
		}
		return r
	}
	var pkgs []pkgInfo
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line+"  ", " ")
		pkgs = append(pkgs, pkgInfo{strings.TrimPrefix(f[0], module), own(f[1]), own(f[2])})
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found %d packages in the module: %s", len(pkgs), out)
	}
	return pkgs
}

// service is the service a package belongs to ("" for pkg/ and the rest).
func service(p string) string {
	rest, ok := strings.CutPrefix(p, "services/")
	if !ok {
		return ""
	}
	name, _, _ := strings.Cut(rest, "/")
	return name
}

// TestLayersPointOneWay keeps the house's rules (docs/architecture.md):
// libraries under pkg/ import no service, not even in their tests; a service
// imports no other service (services/herald wires them); a service's tests
// reach the others only through the platform's harness (services/herald/app
// and its apptest); and the test harness is never linked into the binary.
func TestLayersPointOneWay(t *testing.T) {
	harness := []string{"services/herald/app", "services/herald/app/apptest"}
	for _, p := range listModule(t) {
		for _, imp := range p.imports {
			switch {
			case strings.HasPrefix(p.path, "pkg/") && service(imp) != "":
				t.Errorf("%s imports %s: a library under pkg/ must not know a service", p.path, imp)
			case service(p.path) != "" && service(p.path) != "herald" && service(imp) != "" && service(imp) != service(p.path):
				t.Errorf("%s imports %s: services talk only through events", p.path, imp)
			case strings.HasPrefix(p.path, "services/") && !strings.HasPrefix(p.path, "services/herald/app/apptest") &&
				(imp == "pkg/heraldtest" || imp == "services/herald/app/apptest"):
				t.Errorf("%s imports the test harness %s outside its tests: it would be linked into the binary", p.path, imp)
			}
		}
		for _, imp := range p.testOnly {
			switch {
			case strings.HasPrefix(p.path, "pkg/") && service(imp) != "":
				t.Errorf("tests of %s import %s: a library's tests must not need a service", p.path, imp)
			case service(p.path) != "" && service(p.path) != "herald" && service(imp) != "" && service(imp) != service(p.path) && !slices.Contains(harness, imp):
				t.Errorf("tests of %s import %s: reach another service through the platform's harness (apptest)", p.path, imp)
			}
		}
	}
}

// TestTheBinaryLinksNoTestHarness: herald's dependencies hold neither test
// support package.
func TestTheBinaryLinksNoTestHarness(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", module+"services/herald").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == module+"pkg/heraldtest" || dep == module+"services/herald/app/apptest" || strings.HasPrefix(dep, "testing") {
			t.Errorf("the herald binary links %s", dep)
		}
	}
}

// TestNoLongFunctionWithoutAReason: a function of the module's code (tests
// aside) longer than 60 lines says why in its doc comment ("it is long
// because…", "its length is…"); otherwise it is split along its seams.
func TestNoLongFunctionWithoutAReason(t *testing.T) {
	const limit = 60
	reason := regexp.MustCompile(`(?i)\blong\b|\blength\b`)
	fset := token.NewFileSet()
	files := 0
	err := filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != "../.." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		files++
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			n := fset.Position(fn.End()).Line - fset.Position(fn.Pos()).Line
			if n > limit && (fn.Doc == nil || !reason.MatchString(fn.Doc.Text())) {
				t.Errorf("%s: %s is %d lines: split it, or say in its doc comment why it is long", fset.Position(fn.Pos()), fn.Name.Name, n)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files == 0 {
		t.Fatal("no Go file found under the module root")
	}
}
