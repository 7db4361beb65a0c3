package bins

import (
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The control-plane module's tool block keeps go mod tidy from dropping what mains
// needs, so it must name exactly the packages that Ensure builds.
func TestMainsAreTheControlPlaneModuleTools(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, controlPlaneModule, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	var tools []string
	in := false
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		switch {
		case line == "tool (":
			in = true
		case in && line == ")":
			in = false
		case in:
			tools = append(tools, line)
		case strings.HasPrefix(line, "tool "):
			tools = append(tools, strings.TrimSpace(strings.TrimPrefix(line, "tool ")))
		}
	}
	var pkgs []string
	for _, m := range mains {
		pkgs = append(pkgs, m.pkg)
		// go build -o DIR/ names each executable after its package's last element.
		if path.Base(m.pkg) != m.bin {
			t.Errorf("go build names %s %q, not %q", m.pkg, path.Base(m.pkg), m.bin)
		}
	}
	slices.Sort(tools)
	slices.Sort(pkgs)
	if !slices.Equal(tools, pkgs) {
		t.Errorf("go.mod tools = %q, mains = %q", tools, pkgs)
	}
}
