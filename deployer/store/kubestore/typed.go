package kubestore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/dynamic"

	"github.com/shipbot/shipbot/deployer/store"
)

// kind is the resource that holds the records of one bucket whose values
// are documents, so that `kubectl get releases.shipbot.io` shows releases
// rather than Records of a bucket (deploy/crds/<plural>.yaml).
type kind struct {
	Kind string
	GVR  schema.GroupVersionResource
}

// kinds are the buckets with a resource of their own; every other
// bucket's records, and every bucket's sequence, are Records.
var kinds = map[string]kind{
	"deployments": {"Deployment", gvr("deployments")},
	"previews":    {"Preview", gvr("previews")},
	"releases":    {"Release", gvr("releases")},
	"notes":       {"Note", gvr("notes")},
}

func gvr(plural string) schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: "shipbot.io", Version: "v1alpha1", Resource: plural}
}

// typedName names the object of a key: the key itself when it is a valid
// object name (a release's r000000000012, a deployment's d000000000007),
// so that kubectl shows it; otherwise, as a Record is named, by a hash.
// A key that looks like a hashed name is hashed too, so two keys never
// share a name.
func typedName(bucket string, key []byte) string {
	k := string(key)
	if len(validation.IsDNS1123Subdomain(k)) == 0 && !strings.HasPrefix(k, "r-") {
		return k
	}
	return recordName(bucket, key)
}

// typedSpec is the spec of a record in its bucket's resource: the key,
// and the value as the document it is (record) when it is a JSON object
// the apiserver keeps as it is, else as bytes (value), or where the Blobs
// hold it (blob).
type typedSpec struct {
	Key    []byte          `json:"key"`
	Record json.RawMessage `json:"record,omitempty"`
	Value  []byte          `json:"value,omitempty"`
	Blob   *blobRef        `json:"blob,omitempty"`
	// Elided, with Blob, names the fields of the document that Record
	// leaves out: a record in Blobs keeps the rest here, so that kubectl
	// still shows it (summary).
	Elided []string `json:"elided,omitempty"`
}

// maxSummary bounds the document that the object of a record kept in
// Blobs holds for kubectl.
const maxSummary = 64 << 10

// summary is doc, a document too big for its object, without its biggest
// top-level fields until it takes at most limit bytes, and the names of
// those fields: a release without its weeks of history.
func summary(doc []byte, limit int) (json.RawMessage, []string, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(doc, &fields); err != nil {
		return nil, nil, err
	}
	var elided []string
	for {
		out, err := json.Marshal(fields)
		if err != nil || len(out) <= limit {
			slices.Sort(elided)
			return out, elided, err
		}
		biggest, found := "", false
		for name, v := range fields {
			if b := fields[biggest]; !found || len(v) > len(b) || len(v) == len(b) && name < biggest {
				biggest, found = name, true
			}
		}
		delete(fields, biggest)
		elided = append(elided, biggest)
	}
}

type typedObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              typedSpec `json:"spec"`
}

// document reports whether value is a JSON object that reads back from
// the apiserver as the same document. The apiserver decodes a number to an
// int64, or to a float64 when it is not an integer that fits: an integer
// beyond int64 (a uint64's top half) would come back rounded, and a number
// beyond float64 is refused. It turns bytes that are not UTF-8, and an
// escaped lone surrogate, into U+FFFD, and keeps one of a key given twice.
// A value with any of these is kept as bytes, as is one that is not a
// single JSON object, and, to keep the check simple, one with any escaped
// surrogate, even a pair (or what looks like one after an escaped
// backslash). shipbot's own documents (json.Marshal of its types)
// have none of them; a note's bytes may.
func document(value []byte) bool {
	trimmed := bytes.TrimLeft(value, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' || !json.Valid(value) || !utf8.Valid(value) || surrogate.Match(value) {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.UseNumber()
	type level struct {
		keys  map[string]bool // nil in an array
		onKey bool            // the next string is a key
	}
	var stack []level
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return true
		}
		if err != nil {
			return false
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				stack = append(stack, level{keys: map[string]bool{}, onKey: true})
				continue
			case '[':
				stack = append(stack, level{})
				continue
			}
			stack = stack[:len(stack)-1]
		case string:
			if top := len(stack) - 1; stack[top].onKey {
				if stack[top].keys[t] {
					return false // a key given twice
				}
				stack[top].keys[t], stack[top].onKey = true, false
				continue
			}
		case json.Number:
			if !numberFits(t) {
				return false
			}
		}
		if top := len(stack) - 1; top >= 0 && stack[top].keys != nil {
			stack[top].onKey = true // a value ended: a key or the end comes next
		}
	}
}

// surrogate matches an escaped UTF-16 surrogate, which json.Marshal never
// writes (it writes the character itself).
var surrogate = regexp.MustCompile(`\\[uU][dD][89abAB]`)

func numberFits(n json.Number) bool {
	if _, err := n.Int64(); err == nil {
		return true
	}
	if !strings.ContainsAny(string(n), ".eE") {
		return false // an integer beyond int64
	}
	_, err := n.Float64()
	return err == nil
}

// foldTyped applies w, a write to a key of a bucket with a kind, to that
// kind's object.
func (c resources) foldTyped(ctx context.Context, k kind, w entry) error {
	ri := c.typed[w.Bucket]
	name := typedName(w.Bucket, w.Key)
	if w.Deleted {
		if err := ri.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return unavailable(fmt.Errorf("delete %s %s: %w", k.GVR.Resource, name, err))
		}
		return nil
	}
	value := w.Value // the whole value, for a summary when it goes to Blobs
	switch {
	case w.Blob != nil: // a journal's value in Blobs
		whole := w
		if err := c.resolve(ctx, &whole); err != nil {
			return err
		}
		value = whole.Value
	case len(w.Value) > maxRecordValue:
		if err := c.toBlob(ctx, &w); err != nil {
			return err
		}
	}
	obj := typedObject{
		TypeMeta:   metav1.TypeMeta{APIVersion: k.GVR.GroupVersion().String(), Kind: k.Kind},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: c.ns},
		Spec:       typedSpec{Key: w.Key, Blob: w.Blob},
	}
	switch {
	case !document(value):
		obj.Spec.Value = w.Value // nil when in Blobs
	case w.Blob == nil:
		obj.Spec.Record = value
	default:
		var err error
		if obj.Spec.Record, obj.Spec.Elided, err = summary(value, maxSummary); err != nil {
			return fmt.Errorf("%s %s: %w", k.GVR.Resource, name, err)
		}
	}
	if err := applyTyped(ctx, ri, obj); err != nil {
		return unavailable(fmt.Errorf("apply %s %s: %w", k.GVR.Resource, name, err))
	}
	return nil
}

func applyTyped(ctx context.Context, ri dynamic.ResourceInterface, obj typedObject) error {
	raw, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	force := true
	_, err = ri.Patch(ctx, obj.Name, types.ApplyPatchType, raw, metav1.PatchOptions{FieldManager: "shipbot", Force: &force})
	return err
}

// typedEntries reads every object of the buckets' kinds, as the entries
// that recreate them.
func (c resources) typedEntries(ctx context.Context) ([]entry, error) {
	var out []entry
	for _, bucket := range slices.Sorted(maps.Keys(kinds)) {
		k := kinds[bucket]
		list, err := c.typed[bucket].List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, unavailable(fmt.Errorf("list %s in namespace %s: %w", k.GVR.Resource, c.ns, err))
		}
		for _, item := range list.Items {
			e, err := typedEntry(bucket, item)
			if err != nil {
				return nil, fmt.Errorf("%s %s/%s: %w", k.GVR.Resource, c.ns, item.GetName(), err)
			}
			out = append(out, e)
		}
	}
	return out, nil
}

// typedEntry is the entry that recreates item, an object of bucket's kind.
func typedEntry(bucket string, item unstructured.Unstructured) (entry, error) {
	var obj typedObject
	record, found, err := unstructured.NestedFieldNoCopy(item.Object, "spec", "record")
	if err != nil {
		return entry{}, err
	}
	spec := item.Object["spec"]
	if found { // the converter cannot fill a RawMessage; the document is read apart
		spec = maps.Clone(item.Object["spec"].(map[string]any))
		delete(spec.(map[string]any), "record")
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(map[string]any{"spec": spec}, &obj); err != nil {
		return entry{}, err
	}
	if item.GetName() != typedName(bucket, obj.Spec.Key) {
		return entry{}, fmt.Errorf("its name is not that of its key %q", obj.Spec.Key)
	}
	e := entry{Write: store.Write{Bucket: bucket, Key: obj.Spec.Key, Value: obj.Spec.Value}, Blob: obj.Spec.Blob}
	if found && e.Blob == nil { // with Blobs, the record is a summary
		if e.Value, err = json.Marshal(record); err != nil {
			return entry{}, err
		}
	}
	return e, nil
}

// moveRecords moves the Records of buckets that have a kind, as a store
// written before the kinds existed holds them, to their kind's objects:
// each is applied there, then its Record deleted. Until then Load reads
// both, the kind's object last. It lists every Record, since one written
// before the bucket label existed has none. It returns how many it moved.
func (c resources) moveRecords(ctx context.Context) (int, error) {
	list, err := c.records.List(ctx, metav1.ListOptions{})
	if err != nil {
		return 0, unavailable(fmt.Errorf("list records in namespace %s: %w", c.ns, err))
	}
	moved := 0
	for _, item := range list.Items {
		var obj recordObject
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(item.Object, &obj); err != nil {
			return moved, fmt.Errorf("record %s/%s: %w", c.ns, item.GetName(), err)
		}
		k, ok := kinds[obj.Spec.Bucket]
		if !ok || obj.Spec.Key == nil {
			continue // a sequence stays a Record
		}
		if err := c.foldTyped(ctx, k, obj.Spec); err != nil {
			return moved, err
		}
		if err := c.records.Delete(ctx, obj.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return moved, unavailable(fmt.Errorf("delete record %s: %w", obj.Name, err))
		}
		moved++
	}
	return moved, nil
}
