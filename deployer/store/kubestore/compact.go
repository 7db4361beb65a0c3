package kubestore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/shipbot/shipbot/deployer/store"
)

// Records is the resource of the Record CRD (deploy/crds/records.yaml).
var Records = schema.GroupVersionResource{Group: "shipbot.io", Version: "v1alpha1", Resource: "records"}

// LabelBucket labels each Record with its bucket, so that one kind of
// record can be listed: kubectl get records -l shipbot.io/bucket=claims.
const LabelBucket = "shipbot.io/bucket"

type recordObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              entry `json:"spec"`
}

// recordName names the Record of a bucket's key, or of its sequence when
// key is nil.
func recordName(bucket string, key []byte) string {
	if key == nil {
		sum := sha256.Sum256([]byte(bucket))
		return "s-" + hex.EncodeToString(sum[:20])
	}
	sum := sha256.Sum256(append([]byte(bucket+"\x00"), key...))
	return "r-" + hex.EncodeToString(sum[:20])
}

// resources are the journal's, the records', the kinds' and the blobs'
// resources in one namespace.
type resources struct {
	journals, records, blobs dynamic.ResourceInterface
	typed                    map[string]dynamic.ResourceInterface // by bucket
	ns                       string
}

func connect(rc *rest.Config, ns string) (resources, error) {
	dyn, err := unthrottled(rc)
	if err != nil {
		return resources{}, fmt.Errorf("store in namespace %s: %w", ns, err)
	}
	typed := make(map[string]dynamic.ResourceInterface, len(kinds))
	for b, k := range kinds {
		typed[b] = dyn.Resource(k.GVR).Namespace(ns)
	}
	return resources{
		journals: dyn.Resource(Journals).Namespace(ns),
		records:  dyn.Resource(Records).Namespace(ns),
		blobs:    dyn.Resource(Blobs).Namespace(ns),
		typed:    typed,
		ns:       ns,
	}, nil
}

// unthrottled is a dynamic client without a client-side rate limit: every
// webhook ack and store write waits for its requests, and the apiserver's
// API Priority and Fairness protects the apiserver instead.
func unthrottled(rc *rest.Config) (dynamic.Interface, error) {
	rc = rest.CopyConfig(rc)
	rc.QPS, rc.Burst, rc.RateLimiter = -1, 0, nil
	return dynamic.NewForConfig(rc)
}

// Compact folds the journals into records (Records, and the objects of
// the buckets that have a kind) and then deletes them. It first moves to
// their kinds the Records that a version before the kinds wrote
// (moveRecords). It folds each record's net change only: of all the
// writes to one key in the journals it read, the last. A term's fence
// (its first journal) is kept, to exclude a late write of an earlier term
// whenever it comes; the journals a fence leaves out are deleted unfolded.
// Last, it deletes the Blobs nothing refers to any more (collectBlobs),
// when it folded anything. It returns how many journals it folded.
//
// A crash midway is safe because the journals go oldest first, after
// every fold: what is left is always a newest part of them, and Load,
// applying it over records that already hold the net change, ends where
// the whole journal would have.
func Compact(ctx context.Context, rc *rest.Config, ns string) (int, error) {
	c, err := connect(rc, ns)
	if err != nil {
		return 0, err
	}
	if _, err := c.moveRecords(ctx); err != nil {
		return 0, err
	}
	return c.compact(ctx, blobGrace)
}

// compact is Compact after the move, collecting unreferenced Blobs older
// than grace.
func (c resources) compact(ctx context.Context, grace time.Duration) (int, error) {
	specs, err := c.journalSpecs(ctx)
	if err != nil {
		return 0, err
	}
	keep, err := fenced(specs)
	if err != nil {
		return 0, err
	}
	last := map[string]entry{} // by record name: the last write to it
	var done []journalSpec     // oldest first
	folded := 0
	for _, s := range specs {
		if s.Seq == 0 {
			continue
		}
		if keep(s) {
			for _, w := range s.Writes {
				last[recordName(w.Bucket, w.Key)] = w
			}
			folded++
		}
		done = append(done, s)
	}
	for _, name := range slices.Sorted(maps.Keys(last)) {
		if err := c.fold(ctx, last[name]); err != nil {
			return 0, fmt.Errorf("fold the journals: %w", err)
		}
	}
	for _, s := range done {
		name := journalName(s.Term, s.Seq)
		if err := c.journals.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return folded, unavailable(fmt.Errorf("delete journal %s: %w", name, err))
		}
	}
	if folded == 0 {
		return 0, nil // the Blobs are looked at when something is folded
	}
	_, err = c.collectBlobs(ctx, time.Now(), grace)
	return folded, err
}

// fold applies one write to the Records, or to the object of its
// bucket's kind, its value in Blobs when it is too big for the object.
func (c resources) fold(ctx context.Context, w entry) error {
	if k, ok := kinds[w.Bucket]; ok && w.Key != nil {
		return c.foldTyped(ctx, k, w)
	}
	return c.foldRecord(ctx, w)
}

// foldRecord applies one write to the Records.
func (c resources) foldRecord(ctx context.Context, w entry) error {
	name := recordName(w.Bucket, w.Key)
	if w.Deleted {
		if err := c.records.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return unavailable(fmt.Errorf("delete record %s: %w", name, err))
		}
		return nil
	}
	if w.Blob == nil && len(w.Value) > maxRecordValue {
		if err := c.toBlob(ctx, &w); err != nil {
			return err
		}
	}
	obj := recordObject{
		TypeMeta:   metav1.TypeMeta{APIVersion: Records.GroupVersion().String(), Kind: "Record"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: c.ns, Labels: map[string]string{LabelBucket: w.Bucket}},
		Spec:       w,
	}
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&obj)
	if err != nil {
		return err
	}
	_, err = c.records.Apply(ctx, name, &unstructured.Unstructured{Object: u}, metav1.ApplyOptions{FieldManager: "shipbot", Force: true})
	if err != nil {
		return unavailable(fmt.Errorf("apply record %s: %w", name, err))
	}
	return nil
}

// recordEntries reads every Record and every object of the buckets'
// kinds, as the entries that recreate them. The kinds' come last: a key
// whose Record is not yet moved to its kind (moveRecords) and that was
// written since has both, and the kind's is the newer.
func (c resources) recordEntries(ctx context.Context) ([]entry, error) {
	objs, err := listAs[recordObject](ctx, c.records, c.ns, "record")
	if err != nil {
		return nil, err
	}
	out := make([]entry, 0, len(objs))
	for _, obj := range objs {
		if obj.Name != recordName(obj.Spec.Bucket, obj.Spec.Key) {
			return nil, fmt.Errorf("record %s/%s: its name is not that of its bucket and key", c.ns, obj.Name)
		}
		out = append(out, obj.Spec)
	}
	typed, err := c.typedEntries(ctx)
	return append(out, typed...), err
}

// listAs reads every object of ri in namespace ns, decoded as T; what
// names the kind in errors.
func listAs[T any](ctx context.Context, ri dynamic.ResourceInterface, ns, what string) ([]T, error) {
	list, err := ri.List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, unavailable(fmt.Errorf("list %ss in namespace %s: %w", what, ns, err))
	}
	out := make([]T, len(list.Items))
	for i := range list.Items {
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(list.Items[i].Object, &out[i]); err != nil {
			return nil, fmt.Errorf("%s %s/%s: %w", what, ns, list.Items[i].GetName(), err)
		}
	}
	return out, nil
}

// Compactor compacts the journal every Every until its context ends.
type Compactor struct {
	Config    *rest.Config
	Namespace string
	Every     time.Duration // a minute when zero
	Log       *slog.Logger
}

// Run compacts until ctx ends. It moves an earlier version's Records to
// their kinds once, before it first compacts: no later write of this
// version, nor of another leader of it, makes such a Record.
func (c Compactor) Run(ctx context.Context) {
	every := c.Every
	if every <= 0 {
		every = time.Minute
	}
	res, err := connect(c.Config, c.Namespace)
	if err != nil {
		c.Log.Error("compact the store's journal: no client", "namespace", c.Namespace, "err", err)
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	moved := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var n int
		var err error // this tick's
		if !moved {
			_, err = res.moveRecords(ctx)
			moved = err == nil
		}
		if err == nil {
			n, err = res.compact(ctx, blobGrace)
		}
		switch {
		case err != nil && ctx.Err() == nil:
			c.Log.Warn("compact the store's journal", "namespace", c.Namespace, "folded", n, "err", err)
		case n > 0:
			c.Log.Debug("compacted the store's journal", "namespace", c.Namespace, "folded", n)
		}
	}
}

// Import writes a store's contents (store.Store.Contents) as the records
// of an empty namespace, for `shipbot store migrate`; it refuses a
// namespace that already holds a store. It returns how many records the
// namespace holds after, which is len(writes) when all went in.
func Import(ctx context.Context, rc *rest.Config, ns string, writes []store.Write) (int, error) {
	c, err := connect(rc, ns)
	if err != nil {
		return 0, err
	}
	existing, err := c.recordEntries(ctx)
	if err != nil {
		return 0, err
	}
	specs, err := c.journalSpecs(ctx)
	if err != nil {
		return 0, err
	}
	if len(existing) > 0 || len(specs) > 0 {
		return 0, fmt.Errorf("namespace %s already holds a store (%d records, %d journals); migrate into an empty one", ns, len(existing), len(specs))
	}
	for _, w := range writes {
		if err := c.fold(ctx, entry{Write: w}); err != nil {
			return 0, err
		}
	}
	after, err := c.recordEntries(ctx)
	return len(after), err
}
