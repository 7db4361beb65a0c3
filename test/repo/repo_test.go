// Package repo checks rules about the repository's own layout that no
// compiler checks.
package repo

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const root = "../.."

// TestMakeFuzzRunsEveryFuzzTarget: `make fuzz` names each fuzz target of
// the module as ./package:FuzzName, so a new parser's fuzz target is not
// left out of the 60 s runs.
func TestMakeFuzzRunsEveryFuzzTarget(t *testing.T) {
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	found := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, filepath.Dir(path))
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Recv != nil || !strings.HasPrefix(fn.Name.Name, "Fuzz") {
				continue
			}
			name := fn.Name.Name
			found++
			if want := "./" + filepath.ToSlash(rel) + ":" + name; !strings.Contains(string(makefile), want+" ") && !strings.Contains(string(makefile), want+";") {
				t.Errorf("make fuzz does not run %s; add it to the Makefile's fuzz list", want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if found == 0 {
		t.Fatal("found no fuzz targets; the walk is wrong")
	}
}
