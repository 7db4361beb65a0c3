// Package templates renders an app's Kubernetes manifests from a folder of
// YAML files written as Go text/template, with per-environment Params as `.`.
//
// The files are *.yaml, *.yml and *.tpl directly in the folder, rendered in
// name order. As in Helm, *.tpl files and files named _* only hold defines
// for the others and render no objects. A file may render several documents
// separated by "---", or only whitespace and comments, which yields nothing.
//
// Templates get sprig's functions except those that read the environment,
// the network, the clock or randomness, since a render must depend on Params
// alone; plus Helm's toYaml, include and required.
package templates

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"text/template"
	"unicode"
)

//go:embed all:builtin
var builtinFS embed.FS

// Template is a parsed folder of template files, safe for concurrent Render calls.
type Template struct {
	set   *template.Template // one set for all files, so a helper's defines serve every file
	files []string           // files rendered to objects, in render order
	src   map[string]string  // file text, to point YAML errors at template lines
}

// Load parses the template files directly in dir; see the package doc for which render.
func Load(fsys fs.FS, dir string) (*Template, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("load templates: %w", err)
	}
	t := &Template{
		set: template.New("").Option("missingkey=error").Funcs(funcMap()),
		src: map[string]string{},
	}
	for _, e := range entries {
		if e.IsDir() || !isTemplateFile(e.Name()) {
			continue
		}
		if err := t.parse(fsys, dir, e.Name()); err != nil {
			return nil, err
		}
	}
	if len(t.files) == 0 {
		return nil, fmt.Errorf("load templates: no *.yaml or *.yml file in %q", dir)
	}
	return t, nil
}

func (t *Template) parse(fsys fs.FS, dir, name string) error {
	if strings.ContainsFunc(name, unicode.IsControl) {
		return fmt.Errorf("load templates: file name %q has control characters", name)
	}
	b, err := fs.ReadFile(fsys, path.Join(dir, name))
	if err != nil {
		return fmt.Errorf("load templates: %w", err)
	}
	if _, err := t.set.New(name).Parse(string(b)); err != nil {
		return templateError(err, name)
	}
	t.src[name] = string(b)
	if !isHelper(name) {
		t.files = append(t.files, name)
	}
	return nil
}

func isTemplateFile(name string) bool {
	switch path.Ext(name) {
	case ".yaml", ".yml", ".tpl":
		return true
	}
	return false
}

func isHelper(name string) bool {
	return strings.HasPrefix(name, "_") || path.Ext(name) == ".tpl"
}

// Builtin loads one of the templates shipped with shipbot, such as "web-service".
func Builtin(name string) (*Template, error) {
	if !slices.Contains(BuiltinNames(), name) {
		return nil, fmt.Errorf("no built-in template %q (have %s)", name, strings.Join(BuiltinNames(), ", "))
	}
	return Load(builtinFS, "builtin/"+name)
}

// BuiltinNames lists the built-in templates in name order.
func BuiltinNames() []string {
	entries, _ := builtinFS.ReadDir("builtin") // embedded at build time: cannot fail
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names
}
