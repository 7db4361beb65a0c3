package templates

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"text/template"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/yaml"
)

// Object is one rendered Kubernetes object and the template file it came from.
type Object struct {
	File string                     // template file, relative to the loaded dir
	Obj  *unstructured.Unstructured // unstructured, since templates may render any kind
}

// clusterScoped are kinds that must not get Params.Namespace. It covers the
// common kinds only: whoever applies the objects must go by the scope that API
// discovery reports, which is the truth for custom resources too.
var clusterScoped = map[string]bool{
	"Namespace": true, "Node": true, "PersistentVolume": true, "StorageClass": true,
	"ClusterRole": true, "ClusterRoleBinding": true, "CustomResourceDefinition": true,
	"PriorityClass": true, "IngressClass": true, "RuntimeClass": true, "APIService": true,
	"MutatingWebhookConfiguration": true, "ValidatingWebhookConfiguration": true,
}

// SetDefaultNamespace gives ns to a namespaced object that has no namespace.
// Cluster-scoped kinds are left alone, so one render serves any namespace.
func SetDefaultNamespace(u *unstructured.Unstructured, ns string) {
	if u.GetNamespace() == "" && ns != "" && !clusterScoped[u.GetKind()] {
		u.SetNamespace(ns)
	}
}

// Decoder turns manifest files into objects one file at a time, as Render
// does with what templates print: namespaces defaulted, errors located by
// file and line, and an object that an earlier file had refused.
type Decoder struct {
	Namespace string // set on namespaced objects that have none
	// Rendered says the text is a generator's output, such as a Helm
	// template's, so error lines are those of the output, not of a file.
	Rendered bool
	seen     map[objectKey]string
}

// Decode reads every YAML or JSON document of one file, in order.
func (d *Decoder) Decode(file, text string) ([]Object, error) {
	if d.seen == nil {
		d.seen = map[objectKey]string{}
	}
	r := &rendered{file: file, out: text}
	if !d.Rendered {
		r.src = text
	}
	objs, err := r.objects(d.Namespace, d.seen)
	var e *Error
	if !d.Rendered && errors.As(err, &e) && e.Line == 0 {
		// The file is its own output: a rendered line is the file's line.
		e.Line, e.RenderedLine = e.RenderedLine, 0
	}
	return objs, err
}

// objectKey identifies an object the way the apiserver does.
type objectKey struct {
	gk        schema.GroupKind
	namespace string
	name      string
}

// Render validates p, executes every file with it and returns the objects in file order.
func (t *Template) Render(p Params) ([]Object, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	p = p.withDefaults()
	set, err := t.set.Clone()
	if err != nil {
		return nil, fmt.Errorf("render: %w", err)
	}
	bindInclude(set)
	var objs []Object
	seen := map[objectKey]string{}
	for _, file := range t.files {
		r, err := t.execute(set, file, p)
		if err != nil {
			return nil, err
		}
		fileObjs, err := r.objects(p.Namespace, seen)
		if err != nil {
			return nil, err
		}
		objs = append(objs, fileObjs...)
	}
	return objs, nil
}

// rendered is one file's output, kept with its source to locate errors.
type rendered struct {
	file string
	src  string
	out  string
}

func (t *Template) execute(set *template.Template, file string, p Params) (*rendered, error) {
	var buf cappedBuffer
	if err := set.ExecuteTemplate(&buf, file, p); err != nil {
		return nil, templateError(err, file)
	}
	return &rendered{file: file, src: t.src[file], out: buf.String()}, nil
}

// outputLine returns the 1-based line n of the rendered output, or "".
func (r *rendered) outputLine(n int) string {
	lines := strings.Split(r.out, "\n")
	if n < 1 || n > len(lines) {
		return ""
	}
	return strings.TrimSuffix(lines[n-1], "\r")
}

// objects decodes every non-empty document, defaults its namespace and
// records it in seen, which maps each object to the file that rendered it.
func (r *rendered) objects(namespace string, seen map[objectKey]string) ([]Object, error) {
	var objs []Object
	for _, d := range splitDocuments(r.out) {
		u, err := r.decode(d)
		if err != nil {
			return nil, err
		}
		if u == nil {
			continue
		}
		SetDefaultNamespace(u, namespace)
		key := objectKey{u.GroupVersionKind().GroupKind(), u.GetNamespace(), u.GetName()}
		if first, dup := seen[key]; dup {
			return nil, r.docError(d, fmt.Errorf("duplicate object %s %s, first rendered from %s", key.gk.Kind, qualifiedName(u), first))
		}
		seen[key] = r.file
		objs = append(objs, Object{File: r.file, Obj: u})
	}
	return objs, nil
}

func qualifiedName(u *unstructured.Unstructured) string {
	if u.GetNamespace() == "" {
		return u.GetName()
	}
	return u.GetNamespace() + "/" + u.GetName()
}

// decode returns nil for a document that is only whitespace and comments,
// such as an ingress.yaml whose `if` was false.
func (r *rendered) decode(d document) (*unstructured.Unstructured, error) {
	j, err := yaml.YAMLToJSONStrict([]byte(d.text))
	if err != nil {
		return nil, yamlError(err, r, d)
	}
	if bytes.Equal(j, []byte("null")) {
		return nil, nil
	}
	var v any
	if err := utiljson.Unmarshal(j, &v); err != nil {
		return nil, r.docError(d, err)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, r.docError(d, fmt.Errorf("document is a %s, not a Kubernetes object", yamlType(v)))
	}
	for _, f := range [][]string{{"apiVersion"}, {"kind"}, {"metadata", "name"}} {
		if err := requireString(obj, f...); err != nil {
			return nil, r.docError(d, err)
		}
	}
	return &unstructured.Unstructured{Object: obj}, nil
}

func requireString(obj map[string]any, fields ...string) error {
	name := strings.Join(fields, ".")
	v, found, err := unstructured.NestedFieldNoCopy(obj, fields...)
	if err != nil {
		// Only a parent that is not a mapping makes the lookup fail.
		return fmt.Errorf("object has no %s: %s is not a mapping", name, fields[0])
	}
	s, isString := v.(string)
	switch {
	case !found || v == nil:
		return fmt.Errorf("object has no %s", name)
	case !isString:
		return fmt.Errorf("object's %s is a %s, not a string", name, yamlType(v))
	case s == "":
		return fmt.Errorf("object's %s is empty", name)
	}
	return nil
}

// yamlType names a decoded value's type as a template author knows it.
func yamlType(v any) string {
	switch v.(type) {
	case map[string]any:
		return "mapping"
	case []any:
		return "list"
	case bool:
		return "boolean"
	case int64, float64:
		return "number"
	}
	return fmt.Sprintf("%T", v)
}

// document is one YAML document of a file's rendered output.
type document struct {
	text string
	line int // 1-based line of the rendered output where text starts
}

// splitDocuments cuts at "---" lines itself, rather than using a YAML
// stream decoder, so each document knows where it starts for error messages.
func splitDocuments(out string) []document {
	var docs []document
	var cur strings.Builder
	start := 1
	for i, line := range strings.SplitAfter(out, "\n") {
		if isSeparator(line) {
			docs = append(docs, document{cur.String(), start})
			cur.Reset()
			start = i + 2
			continue
		}
		cur.WriteString(line)
	}
	return append(docs, document{cur.String(), start})
}

// isSeparator reports whether line is "---", optionally followed by a comment.
func isSeparator(line string) bool {
	line = strings.TrimRight(line, "\r\n")
	if !strings.HasPrefix(line, "---") {
		return false
	}
	rest := line[3:]
	trimmed := strings.TrimLeft(rest, " \t")
	return rest == "" || (trimmed != rest && (trimmed == "" || trimmed[0] == '#'))
}

// Manifest prints objs as multi-document YAML, each under a "# Source: file" comment, keys sorted.
func Manifest(objs []Object) ([]byte, error) {
	var b bytes.Buffer
	for _, o := range objs {
		if o.Obj == nil {
			return nil, fmt.Errorf("manifest: object from %s is nil", o.File)
		}
		y, err := yaml.Marshal(o.Obj.Object)
		if err != nil {
			return nil, fmt.Errorf("manifest: %s %s from %s: %w", o.Obj.GetKind(), qualifiedName(o.Obj), o.File, err)
		}
		fmt.Fprintf(&b, "---\n# Source: %s\n", o.File)
		b.Write(y)
	}
	return b.Bytes(), nil
}
