package templates

import (
	"errors"
	"strings"
	"testing"
)

const okObject = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .App }}\n"

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  Error // File and Line
		msg   string
	}{
		{"bad action", map[string]string{"deployment.yaml": "a: 1\nb: {{ .App }\nc: 2\n"},
			Error{File: "deployment.yaml", Line: 2}, `unexpected "}" in operand`},
		{"unclosed action", map[string]string{"deployment.yaml": "a: 1\nb: {{ if .App }}\nc: 2\n"},
			Error{File: "deployment.yaml", Line: 4}, "unexpected EOF"},
		{"unknown function", map[string]string{"a.yaml": okObject, "b.yaml": "\n\nx: {{ nope . }}\n"},
			Error{File: "b.yaml", Line: 3}, `function "nope" not defined`},
		{"bad action in helper", map[string]string{"a.yaml": okObject, "_helpers.tpl": "{{ define \"x\" }}\n{{ end }}{{ end }}"},
			Error{File: "_helpers.tpl", Line: 2}, `unexpected {{end}}`},
		{"env is not available", map[string]string{"a.yaml": "x: {{ env \"HOME\" }}"},
			Error{File: "a.yaml", Line: 1}, `function "env" not defined`},
		{"now is not available", map[string]string{"a.yaml": "x: {{ now }}"},
			Error{File: "a.yaml", Line: 1}, `function "now" not defined`},
		{"getHostByName is not available", map[string]string{"a.yaml": "x: {{ getHostByName \"a\" }}"},
			Error{File: "a.yaml", Line: 1}, `function "getHostByName" not defined`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(mapFS(tt.files), "t")
			checkError(t, err, tt.want, tt.msg)
		})
	}
}

func TestRenderErrors(t *testing.T) {
	tests := []struct {
		name string
		text string
		want Error // File, Line, Column and RenderedLine
		msg  string
	}{
		{"missing Values key", "apiVersion: v1\nkind: A\nmetadata:\n  name: {{ .Values.nope }}\n",
			Error{File: "a.yaml", Line: 4, Column: 19}, `map has no entry for key "nope"`},
		{"unknown Params field", "x: {{ .Nope }}", Error{File: "a.yaml", Line: 1, Column: 7}, "can't evaluate field Nope"},
		{"required", "x: {{ required \"set Values.db\" (get .Values \"db\") }}",
			Error{File: "a.yaml", Line: 1, Column: 7}, "set Values.db"},
		{"error in an included helper", "x: {{ include \"h\" . }}",
			Error{File: "_h.tpl", Line: 2, Column: 8}, "can't evaluate field Nope in type templates.Params (included from a.yaml:1:7)"},
		{"include recursion", "{{ define \"r\" }}{{ include \"r\" . }}{{ end }}{{ include \"r\" . }}",
			Error{File: "a.yaml", Line: 1, Column: 20}, "nested more than 100 deep"},
		{"runaway output", "{{ range until 1000000 }}{{ repeat 100 \"x\" }}{{ end }}",
			Error{File: "a.yaml"}, "rendered output exceeds"},
		{"huge repeat", "{{ repeat 100000000 \"ab\" }}", Error{File: "a.yaml", Line: 1, Column: 4}, "too large"},
		{"overflowing untilStep", "{{ untilStep 0 9223372036854775807 4611686018427387904 }}",
			Error{File: "a.yaml", Line: 1, Column: 4}, "outside"},
		{"invalid YAML on a static line", "apiVersion: v1\nkind: A\nmetadata:\n  name: x\n   bad: 1\n",
			Error{File: "a.yaml", Line: 5}, "invalid YAML: mapping values are not allowed"},
		{"invalid YAML from an action", "apiVersion: v1\nkind: A\nmetadata:\n  name: {{ .App }}: x\n",
			Error{File: "a.yaml", RenderedLine: 4}, `"  name: web: x": invalid YAML`},
		{"invalid YAML in a later document", "{{ range list 1 2 }}---\napiVersion: v1\nkind: A\nmetadata:\n  name: a{{ . }}\n  name: b\n{{ end }}",
			Error{File: "a.yaml", Line: 6}, `key "name" already set`},
		{"missing kind", "apiVersion: v1\nmetadata:\n  name: x\n", Error{File: "a.yaml", Line: 1}, "object has no kind"},
		{"missing apiVersion from an action", "\n# {{ .App }}\nkind: {{ .App }}\nmetadata:\n  name: x\n",
			Error{File: "a.yaml", RenderedLine: 3}, "object has no apiVersion"},
		{"missing name", "---\n---\napiVersion: v1\nkind: A\nmetadata: {}\n",
			Error{File: "a.yaml", Line: 3}, "object has no metadata.name"},
		{"kind not a string", "apiVersion: v1\nkind: [A]\nmetadata:\n  name: x\n",
			Error{File: "a.yaml", Line: 1}, "kind is a list, not a string"},
		{"not a mapping", "- a\n- b\n", Error{File: "a.yaml", Line: 1}, "document is a list"},
		{"duplicate in one file", okObject + "---\n" + okObject,
			Error{File: "a.yaml", RenderedLine: 6}, "duplicate object ConfigMap web-dev/web, first rendered from a.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := map[string]string{"a.yaml": tt.text, "_h.tpl": "{{ define \"h\" }}\n x: {{ .Nope }}{{ end }}"}
			_, err := renderFiles(t, files, validParams())
			checkError(t, err, tt.want, tt.msg)
		})
	}
}

func TestDuplicateAcrossFiles(t *testing.T) {
	_, err := renderFiles(t, map[string]string{"a.yaml": okObject, "b.yaml": "# same again\n" + okObject}, validParams())
	checkError(t, err, Error{File: "b.yaml", Line: 2}, "duplicate object ConfigMap web-dev/web, first rendered from a.yaml")

	// Same name, other kind or namespace: distinct objects.
	other := "apiVersion: v1\nkind: Secret\nmetadata:\n  name: web\n---\n" +
		"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n  namespace: other\n"
	if _, err := renderFiles(t, map[string]string{"a.yaml": okObject, "b.yaml": other}, validParams()); err != nil {
		t.Errorf("distinct objects rejected: %v", err)
	}
}

func TestErrorMessages(t *testing.T) {
	tests := []struct {
		err  *Error
		want string
	}{
		{&Error{File: "a.yaml", Line: 3, Column: 7, Err: errors.New("boom")}, "a.yaml:3:7: boom"},
		{&Error{File: "a.yaml", Line: 3, Err: errors.New("boom")}, "a.yaml:3: boom"},
		{&Error{File: "a.yaml", RenderedLine: 9, Err: errors.New("boom")}, "a.yaml: line 9 of the rendered output: boom"},
		{&Error{File: "a.yaml", Err: errors.New("boom")}, "a.yaml: boom"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

// checkError wants an *Error at want's location whose message contains msg.
func checkError(t *testing.T, err error, want Error, msg string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v (%T), want an *Error", err, err)
	}
	if e.File != want.File || e.Line != want.Line || e.RenderedLine != want.RenderedLine ||
		(want.Column != 0 && e.Column != want.Column) {
		t.Errorf("error at %s line %d col %d rendered line %d, want %s line %d col %d rendered line %d\n%v",
			e.File, e.Line, e.Column, e.RenderedLine, want.File, want.Line, want.Column, want.RenderedLine, err)
	}
	if !strings.Contains(err.Error(), msg) {
		t.Errorf("err = %q, want it to contain %q", err, msg)
	}
	if !strings.HasPrefix(err.Error(), want.File+":") {
		t.Errorf("err = %q, want it to start with the file name", err)
	}
}
