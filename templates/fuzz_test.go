package templates

import (
	"errors"
	"testing"
)

// FuzzRender feeds arbitrary template text through Load, Render and Manifest.
// None may panic, every render error must name a file, and rendered objects
// must print as a manifest that decodes back into as many objects.
func FuzzRender(f *testing.F) {
	for _, name := range []string{"deployment.yaml", "service.yaml", "ingress.yaml", "configmap.yaml"} {
		b, err := builtinFS.ReadFile("builtin/web-service/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	for _, seed := range []string{
		okObject,
		okObject + "---\n" + okObject,
		"{{ range list 1 2 }}---\napiVersion: v1\nkind: A\nmetadata:\n  name: a{{ . }}\n{{ end }}",
		"{{ include \"h\" . }}",
		"{{ if .Host }}x{{ end }}",
		"a: {{ .App }}: b",
		"{{ toYaml .Values | nindent 2 }}",
		"- {{ .Values.x }}",
		"{{ define \"r\" }}{{ include \"r\" . }}{{ end }}{{ include \"r\" . }}",
		"apiVersion: v1\nkind: [A]\nmetadata: x\n",
	} {
		f.Add(seed)
	}
	helpers := `{{ define "h" }}apiVersion: v1
kind: Secret
metadata:
  name: {{ .App }}-h
{{ end }}`
	f.Fuzz(func(t *testing.T, text string) {
		tmpl, err := Load(mapFS(map[string]string{"a.yaml": text, "_h.tpl": helpers}), "t")
		if err != nil {
			return
		}
		p := validParams()
		p.Host = "web.example.com"
		p.Config = map[string]string{"k": "v"}
		p.Values = map[string]any{"x": "y", "n": 3}
		objs, err := tmpl.Render(p)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.File == "" {
				t.Fatalf("render error names no file: %v", err)
			}
			return
		}
		m, err := Manifest(objs)
		if err != nil {
			t.Fatalf("rendered objects do not print: %v", err)
		}
		back, err := (&rendered{file: "manifest", out: string(m)}).objects("", map[objectKey]string{})
		if err != nil || len(back) != len(objs) {
			t.Fatalf("manifest decodes to %d objects (%v), want %d:\n%s", len(back), err, len(objs), m)
		}
	})
}
