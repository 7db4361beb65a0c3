package store

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var (
	allStatuses        = []Status{"", StatusPending, StatusRunning, StatusSucceeded, StatusFailed, StatusSuperseded}
	allPreviewStatuses = []PreviewStatus{"", PreviewWaiting, PreviewDeploying, PreviewReady, PreviewFailed, PreviewStopping, PreviewStopped}
)

func TestDeploymentTransitionTable(t *testing.T) {
	checkTable(t, deploymentTransitions, allStatuses, func(from, to Status) (Status, error) {
		d := Deployment{ID: "d1", Status: from}
		err := d.Transition(to)
		return d.Status, err
	})
	for _, s := range allStatuses {
		if active := s == StatusPending || s == StatusRunning; s.Active() != active {
			t.Errorf("%q.Active() = %v, want %v", s, s.Active(), active)
		}
	}
}

func TestPreviewTransitionTable(t *testing.T) {
	checkTable(t, previewTransitions, allPreviewStatuses, func(from, to PreviewStatus) (PreviewStatus, error) {
		p := Preview{Key: "9!4", Status: from}
		err := p.Transition(to)
		return p.Status, err
	})
}

// checkTable tries every move between all, the empty status included: the
// moves table lists must succeed, every other must fail with ErrTransition
// and leave the status as it was.
func checkTable[S ~string](t *testing.T, table map[S][]S, all []S, transition func(from, to S) (S, error)) {
	t.Helper()
	for _, from := range all {
		for _, to := range all {
			got, err := transition(from, to)
			want := slices.Contains(table[from], to)
			switch {
			case want && (err != nil || got != to):
				t.Errorf("%q → %q: %v, status %q; want allowed", from, to, err, got)
			case !want && !errors.Is(err, ErrTransition):
				t.Errorf("%q → %q: err = %v, want ErrTransition", from, to, err)
			case !want && got != from:
				t.Errorf("%q → %q refused but status changed to %q", from, to, got)
			}
		}
	}
}

// TestTablesNameEveryStatus keeps the tables and the constants together: a
// new status with no row would be refused everything, even its creation.
func TestTablesNameEveryStatus(t *testing.T) {
	for _, s := range allStatuses[1:] {
		if _, ok := deploymentTransitions[s]; !ok {
			t.Errorf("deployment status %q has no row", s)
		}
	}
	for _, s := range allPreviewStatuses[1:] {
		if _, ok := previewTransitions[s]; !ok {
			t.Errorf("preview status %q has no row", s)
		}
	}
	if len(deploymentTransitions) != len(allStatuses)-1 || len(previewTransitions) != len(allPreviewStatuses)-1 {
		t.Errorf("a table has a status this test does not know; add it to allStatuses or allPreviewStatuses")
	}
}

// initialStatuses are the only statuses a record may be created with.
var initialStatuses = []string{"StatusPending", "PreviewWaiting"}

// TestOnlyTransitionWritesStatus reads the module's code (not its tests) and
// fails on any write of Deployment.Status or Preview.Status that does not go
// through Transition:
//   - in this package and in deployer, which own these records, any
//     assignment to a .Status field outside Transition, and any Status: in a
//     composite literal other than an initial status;
//   - elsewhere, an assignment of a status constant to a .Status field, and a
//     composite literal that creates a record with a status other than an
//     initial one.
//
// Tests may build records in any status: they are fixtures, not the engine.
func TestOnlyTransitionWritesStatus(t *testing.T) {
	root := filepath.Join("..", "..")
	consts := statusConstants(t)
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		owner := rel == "deployer" || rel == filepath.Join("deployer", "store")
		for _, w := range statusWrites(f, owner, consts) {
			t.Errorf("%s: %s; go through Deployment.Transition or Preview.Transition", fset.Position(w.pos), w.what)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestStatusWritesAreFound checks the scan on code that breaks the rule.
func TestStatusWritesAreFound(t *testing.T) {
	src := `package x

func f(d *store.Deployment, p store.Preview, s store.Status) {
	d.Status = s
	d.Status, d.Reason = store.StatusFailed, "x"
	p.Status = store.PreviewReady
	_ = store.Deployment{Status: store.StatusRunning}
	_ = store.Preview{Status: store.PreviewWaiting}
	_ = page{Status: 200}
}`
	f, err := parser.ParseFile(token.NewFileSet(), "x.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	consts := statusConstants(t)
	if got := len(statusWrites(f, true, consts)); got != 5 {
		t.Errorf("owner package: %d writes found, want 5", got)
	}
	if got := len(statusWrites(f, false, consts)); got != 3 {
		t.Errorf("other package: %d writes found, want 3", got)
	}
}

type statusWrite struct {
	pos  token.Pos
	what string
}

// statusWrites lists f's writes of a record's status outside Transition.
// owner says f is in a package that owns the records, where every write of
// a Status field counts.
func statusWrites(f *ast.File, owner bool, consts map[string]bool) []statusWrite {
	var out []statusWrite
	isConst := func(e ast.Expr) (string, bool) {
		switch e := e.(type) {
		case *ast.Ident:
			return e.Name, consts[e.Name]
		case *ast.SelectorExpr:
			if x, ok := e.X.(*ast.Ident); ok && x.Name == "store" {
				return e.Sel.Name, consts[e.Sel.Name]
			}
		}
		return "", false
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.FuncDecl:
			return n.Name.Name != "Transition" || n.Recv == nil
		case *ast.AssignStmt:
			for i, lhs := range n.Lhs {
				sel, ok := lhs.(*ast.SelectorExpr)
				if !ok || sel.Sel.Name != "Status" {
					continue
				}
				_, constant := isConst(n.Rhs[min(i, len(n.Rhs)-1)])
				if owner || (constant && len(n.Lhs) == len(n.Rhs)) {
					out = append(out, statusWrite{n.Pos(), "assigns a Status field"})
				}
			}
		case *ast.KeyValueExpr:
			if k, ok := n.Key.(*ast.Ident); !ok || k.Name != "Status" {
				return true
			}
			name, constant := isConst(n.Value)
			if (constant || owner) && !slices.Contains(initialStatuses, name) {
				out = append(out, statusWrite{n.Pos(), "creates a record with Status " + exprString(n.Value)})
			}
		}
		return true
	})
	return out
}

func exprString(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.SelectorExpr:
		return exprString(e.X) + "." + e.Sel.Name
	}
	return "(an expression)"
}

// statusConstants are the names of this package's Status and PreviewStatus
// constants, read from its source.
func statusConstants(t *testing.T) map[string]bool {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			g, ok := decl.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, spec := range g.Specs {
				vs := spec.(*ast.ValueSpec)
				if typ, ok := vs.Type.(*ast.Ident); ok && (typ.Name == "Status" || typ.Name == "PreviewStatus") {
					for _, name := range vs.Names {
						out[name.Name] = true
					}
				}
			}
		}
	}
	if len(out) != len(allStatuses)+len(allPreviewStatuses)-2 {
		t.Fatalf("found status constants %v, want %d", out, len(allStatuses)+len(allPreviewStatuses)-2)
	}
	return out
}
