package kubestore

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/shipbot/shipbot/deployer/store"
)

// Blobs is the resource of the Blob CRD (deploy/crds/blobs.yaml): the
// parts of a value too big to sit in its Journal or record, such as the
// history of a release that ran for weeks.
var Blobs = schema.GroupVersionResource{Group: "shipbot.io", Version: "v1alpha1", Resource: "blobs"}

// blobPartBytes is how much of a value one Blob holds. Base64 makes it a
// third bigger: about 1 MiB, under etcd's 1.5 MiB request limit with room
// for the object's metadata.
const blobPartBytes = 768 << 10

// maxRecordValue is the largest value a record (a Record, or an object of
// a bucket's kind) holds itself; a bigger one
// goes to Blobs.
const maxRecordValue = 768 << 10

// blobGrace is how old an unreferenced Blob must be before Compact deletes
// it: the leader writes a transaction's Blobs before its Journal, and a
// Blob younger than this may belong to a Journal being written.
const blobGrace = 10 * time.Minute

// blobRef stands, in a Journal's or record's write, for a value kept in
// Blobs. Each value written gets Blobs of its own, named Name-<part>, never
// ones that exist already: an old set that nothing refers to may be
// deleted at any moment, so a new write must not come to rely on it.
type blobRef struct {
	Name   string `json:"name"`   // b-<24 hex of the digest>-<8 random hex>
	Digest string `json:"digest"` // sha256 of the value, hex
	Size   int    `json:"size"`
	Parts  int    `json:"parts"`
}

// entry is a store write as a Journal or record holds it: with its value,
// or with the reference to the Blobs that hold the value.
type entry struct {
	store.Write `json:",inline"`
	Blob        *blobRef `json:"blob,omitempty"`
}

type blobObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              blobSpec `json:"spec"`
}

type blobSpec struct {
	Digest string `json:"digest"`
	Part   int    `json:"part"`
	Data   []byte `json:"data"`
}

func blobName(set string, part int) string { return fmt.Sprintf("%s-%d", set, part) }

// blobSet is the set a Blob belongs to: its name without the part.
func blobSet(name string) string {
	if i := strings.LastIndexByte(name, '-'); i > 0 {
		return name[:i]
	}
	return name
}

// toBlob writes e's value as a new set of Blobs and leaves the reference
// in its place.
func (c resources) toBlob(ctx context.Context, e *entry) error {
	sum := sha256.Sum256(e.Value)
	digest := hex.EncodeToString(sum[:])
	ref := &blobRef{Name: "b-" + digest[:24] + "-" + hex.EncodeToString(randBytes(4)), Digest: digest, Size: len(e.Value)}
	for data := range slices.Chunk(e.Value, blobPartBytes) {
		obj := blobObject{
			TypeMeta:   metav1.TypeMeta{APIVersion: Blobs.GroupVersion().String(), Kind: "Blob"},
			ObjectMeta: metav1.ObjectMeta{Name: blobName(ref.Name, ref.Parts), Namespace: c.ns},
			Spec:       blobSpec{Digest: ref.Digest, Part: ref.Parts, Data: data},
		}
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&obj)
		if err != nil {
			return err
		}
		if _, err := c.blobs.Create(ctx, &unstructured.Unstructured{Object: u}, metav1.CreateOptions{}); err != nil {
			return unavailable(fmt.Errorf("blob %s: %w", obj.Name, err))
		}
		ref.Parts++
	}
	e.Value, e.Blob = nil, ref
	return nil
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return b
}

// resolve reads back into e the value its Blobs hold, checking its size
// and digest.
func (c resources) resolve(ctx context.Context, e *entry) error {
	if e.Blob == nil {
		return nil
	}
	ref := *e.Blob
	var value bytes.Buffer
	for part := range ref.Parts {
		name := blobName(ref.Name, part)
		u, err := c.blobs.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return unavailable(fmt.Errorf("blob %s of %s: %w", name, e.Write, err))
		}
		var obj blobObject
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &obj); err != nil {
			return fmt.Errorf("blob %s/%s: %w", c.ns, name, err)
		}
		value.Write(obj.Spec.Data)
	}
	sum := sha256.Sum256(value.Bytes())
	if value.Len() != ref.Size || hex.EncodeToString(sum[:]) != ref.Digest {
		return fmt.Errorf("the blobs of %s hold %d bytes that do not match its reference (%d bytes, sha256 %s)", e.Write, value.Len(), ref.Size, ref.Digest)
	}
	e.Value, e.Blob = value.Bytes(), nil
	return nil
}

// collectBlobs deletes the Blobs that no Journal or record refers to and
// that are older than grace. It lists the Blobs before the Journals and
// records, so that a Blob written after the listing is not judged by it;
// grace covers one written just before, whose Journal may not exist yet.
// Since every write makes Blobs of its own, one found unreferenced and
// older than grace is never referred to again.
func (c resources) collectBlobs(ctx context.Context, now time.Time, grace time.Duration) (int, error) {
	list, err := c.blobs.List(ctx, metav1.ListOptions{})
	if err != nil {
		return 0, unavailable(fmt.Errorf("list blobs in namespace %s: %w", c.ns, err))
	}
	if len(list.Items) == 0 {
		return 0, nil
	}
	used := map[string]bool{}
	records, err := c.recordEntries(ctx)
	if err != nil {
		return 0, err
	}
	specs, err := c.journalSpecs(ctx)
	if err != nil {
		return 0, err
	}
	for _, s := range specs {
		records = append(records, s.Writes...)
	}
	for _, e := range records {
		if e.Blob != nil {
			used[e.Blob.Name] = true
		}
	}
	deleted := 0
	for _, b := range list.Items {
		if used[blobSet(b.GetName())] || now.Sub(b.GetCreationTimestamp().Time) < grace {
			continue
		}
		if err := c.blobs.Delete(ctx, b.GetName(), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return deleted, unavailable(fmt.Errorf("delete blob %s: %w", b.GetName(), err))
		}
		deleted++
	}
	return deleted, nil
}
