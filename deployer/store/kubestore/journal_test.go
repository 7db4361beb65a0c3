package kubestore

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/shipbot/shipbot/deployer/store"
	"github.com/shipbot/shipbot/deployer/store/storetest"
)

// journaledStore is a store of the test's own that journals, as term's
// leader, into namespace ns.
func journaledStore(t *testing.T, rc *rest.Config, ns string, term int64) *store.Store {
	t.Helper()
	j, err := StartTerm(t.Context(), rc, ns, term, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(t.TempDir(), "leader.db"), store.Options{Journal: j})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// loadsAs checks that the store in namespace ns loads as want holds it.
func loadsAs(t *testing.T, rc *rest.Config, ns string, want *store.Store, what string) {
	t.Helper()
	l, err := Load(t.Context(), rc, ns)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if w, got := storetest.Contents(t, want), storetest.Contents(t, rebuild(t, l)); !slices.Equal(got, w) {
		t.Errorf("%s: rebuilt %d records, want %d, or they differ", what, len(got), len(w))
	}
}

func rebuild(t *testing.T, l Loaded) *store.Store {
	t.Helper()
	st := openStore(t)
	for _, ws := range l.Sets {
		if err := st.Apply(ws); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

// A store journaled in the apiserver is rebuilt, by the next leader, to
// what it held (storetest.Contents).
func TestAStoreIsRebuiltFromItsJournal(t *testing.T) {
	cluster := requireCluster(t)
	ns := cluster.NewNamespace(t)
	st := journaledStore(t, cluster.RESTConfig(), ns, 1)
	storetest.Workload(t, st, time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC))

	l, err := Load(t.Context(), cluster.RESTConfig(), ns)
	if err != nil {
		t.Fatal(err)
	}
	want, got := storetest.Contents(t, st), storetest.Contents(t, rebuild(t, l))
	if !slices.Equal(got, want) {
		t.Errorf("rebuilt from %d journals: %d records, want the leader's %d", len(l.Sets), len(got), len(want))
	}
	if l.Seen[1] == 0 || l.Ignored != 0 {
		t.Errorf("loaded: seen %v, ignored %d", l.Seen, l.Ignored)
	}
}

// A journal an old leader writes after the next term began, from what it
// loaded, is left out of every later rebuild; and a term starts once.
func TestAnOldLeadersLateWriteIsFencedOff(t *testing.T) {
	cluster := requireCluster(t)
	ns, rc := cluster.NewNamespace(t), cluster.RESTConfig()
	old, err := StartTerm(t.Context(), rc, ns, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	put := func(j *Journal, key string) error {
		return j.Record(t.Context(), []store.Write{{Bucket: "notes", Key: []byte(key), Value: []byte("v")}})
	}
	if err := put(old, "before"); err != nil {
		t.Fatal(err)
	}
	l, err := Load(t.Context(), rc, ns)
	if err != nil {
		t.Fatal(err)
	}
	next, err := StartTerm(t.Context(), rc, ns, 2, l.Seen)
	if err != nil {
		t.Fatal(err)
	}
	if err := put(old, "late"); err != nil { // the old leader has not noticed yet
		t.Fatal(err)
	}
	if err := put(next, "after"); err != nil {
		t.Fatal(err)
	}
	if _, err := StartTerm(t.Context(), rc, ns, 2, l.Seen); err == nil {
		t.Error("term 2 started twice")
	}
	next.Stop() // it stopped leading
	if err := put(next, "stopped"); err == nil {
		t.Error("a stopped journal took a write")
	}
	select {
	case <-next.Stopped():
	default:
		t.Error("Stopped is not closed after Stop")
	}
	l, err = Load(t.Context(), rc, ns)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, ws := range l.Sets {
		for _, w := range ws {
			keys = append(keys, string(w.Key))
		}
	}
	if !slices.Equal(keys, []string{"before", "after"}) || l.Ignored != 1 {
		t.Errorf("loaded %v (ignored %d), want [before after] with the late write ignored", keys, l.Ignored)
	}
}

// Compaction folds the journal into Records and deletes what it folded,
// keeping each term's fence; a store rebuilt after it, and after more
// writes on top, holds what the leader holds.
func TestCompactionKeepsTheStore(t *testing.T) {
	cluster := requireCluster(t)
	ns, rc := cluster.NewNamespace(t), cluster.RESTConfig()
	st := journaledStore(t, rc, ns, 3)
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	storetest.Workload(t, st, now)
	folded, err := Compact(t.Context(), rc, ns)
	if err != nil || folded == 0 {
		t.Fatalf("compact folded %d journals: %v", folded, err)
	}
	c, err := connect(rc, ns)
	if err != nil {
		t.Fatal(err)
	}
	left, err := c.journalSpecs(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left[0].Seq != 0 {
		t.Errorf("%d journals left after compaction, want only the term's fence", len(left))
	}
	storetest.Workload(t, st, now.Add(time.Hour)) // more on top, some over the same keys
	l, err := Load(t.Context(), rc, ns)
	if err != nil {
		t.Fatal(err)
	}
	want, got := storetest.Contents(t, st), storetest.Contents(t, rebuild(t, l))
	if !slices.Equal(got, want) {
		t.Errorf("rebuilt from Records and %d journals: %d records, want the leader's %d", len(l.Sets)-1, len(got), len(want))
	}
}

// A bbolt store imported into an empty namespace loads back equal; a
// namespace that holds a store already is refused.
func TestImportCopiesEveryRecord(t *testing.T) {
	cluster := requireCluster(t)
	ns, rc := cluster.NewNamespace(t), cluster.RESTConfig()
	src := openStore(t)
	storetest.Workload(t, src, time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC))
	var writes []store.Write
	if err := src.Contents(func(w store.Write) error { writes = append(writes, w); return nil }); err != nil {
		t.Fatal(err)
	}
	n, err := Import(t.Context(), rc, ns, writes)
	if err != nil || n != len(writes) {
		t.Fatalf("imported %d records of %d: %v", n, len(writes), err)
	}
	l, err := Load(t.Context(), rc, ns)
	if err != nil {
		t.Fatal(err)
	}
	if want, got := storetest.Contents(t, src), storetest.Contents(t, rebuild(t, l)); !slices.Equal(got, want) {
		t.Errorf("loaded %d records after the import, want the %d of the source", len(got), len(want))
	}
	if _, err := Import(t.Context(), rc, ns, writes); err == nil || !strings.Contains(err.Error(), "already holds a store") {
		t.Errorf("a second import: %v, want a refusal", err)
	}
}

// history is a release record of about size bytes: a long history, as a
// release that ran for weeks has, each entry different.
func history(size int) []byte {
	var b strings.Builder
	b.WriteString(`{"app":"shop","phase":"Running","history":[`)
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, `{"at":"2026-12-06T10:%02d:%02dZ","kind":"retry","message":"step failed (%d); trying again in 30s"},`, i/60%60, i%60, i)
	}
	b.WriteString(`{}]}`)
	return []byte(b.String())
}

func blobNames(t *testing.T, c resources) []string {
	t.Helper()
	list, err := c.blobs.List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, b := range list.Items {
		names = append(names, b.GetName())
	}
	return names
}

// A release record of 3 MiB, more than one object holds, is journaled with
// its value in Blobs, folded into a Record that refers to the same Blobs,
// loaded back as it was, and imported the same way; once nothing
// refers to them, compaction deletes the Blobs.
func TestAValueTooBigForOneObjectGoesToBlobs(t *testing.T) {
	cluster := requireCluster(t)
	ns, rc := cluster.NewNamespace(t), cluster.RESTConfig()
	c, err := connect(rc, ns)
	if err != nil {
		t.Fatal(err)
	}
	st := journaledStore(t, rc, ns, 1)
	id, err := st.CreateRelease(func(id string) ([]byte, error) { return []byte(`{"id":"` + id + `"}`), nil })
	if err != nil {
		t.Fatal(err)
	}
	big := history(3 << 20)
	if err := st.UpdateRelease(id, func([]byte) ([]byte, error) { return big, nil }); err != nil {
		t.Fatalf("a release of %d bytes: %v", len(big), err)
	}
	parts := blobNames(t, c)
	if want := (len(big) + blobPartBytes - 1) / blobPartBytes; len(parts) != want {
		t.Errorf("%d blobs for %d bytes, want %d", len(parts), len(big), want)
	}
	loadsAs(t, rc, ns, st, "from the journal")

	// No grace: nothing else is being written.
	if _, err := c.compact(t.Context(), 0); err != nil {
		t.Fatal(err)
	}
	records, err := c.recordEntries(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	refs := 0
	for _, e := range records {
		if e.Blob != nil {
			refs++
		}
	}
	if refs != 1 || !slices.Equal(blobNames(t, c), parts) {
		t.Errorf("after compaction %d records refer to blobs %v, want the release's record to keep %v", refs, blobNames(t, c), parts)
	}
	row := table(t, rc, ns, "releases")[id]
	if row["App"] != "shop" || row["Phase"] != "Running" {
		t.Errorf("kubectl get releases shows the release in Blobs as %v, want its app and phase", row)
	}
	rel, err := c.typed["releases"].Get(t.Context(), id, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if elided, _, _ := unstructured.NestedStringSlice(rel.Object, "spec", "elided"); !slices.Equal(elided, []string{"history"}) {
		t.Errorf("the release in Blobs elides %v from its summary, want its history", elided)
	}
	loadsAs(t, rc, ns, st, "from the records")
	releases, err := c.typed["releases"].List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(releases.Items) != 1 || releases.Items[0].GetName() != id {
		t.Errorf("%d Releases, want the one named %s", len(releases.Items), id)
	}
	sequences, err := c.records.List(t.Context(), metav1.ListOptions{LabelSelector: LabelBucket + "=releases"})
	if err != nil {
		t.Fatal(err)
	}
	if len(sequences.Items) != 1 { // the bucket's sequence
		t.Errorf("%d Records labelled as releases, want the sequence's", len(sequences.Items))
	}

	other := cluster.NewNamespace(t)
	var writes []store.Write
	if err := st.Contents(func(w store.Write) error { writes = append(writes, w); return nil }); err != nil {
		t.Fatal(err)
	}
	if n, err := Import(t.Context(), rc, other, writes); err != nil || n != len(writes) {
		t.Fatalf("imported %d of %d records: %v", n, len(writes), err)
	}
	if l, err := Load(t.Context(), rc, other); err != nil {
		t.Fatal(err)
	} else if got, want := storetest.Contents(t, rebuild(t, l)), storetest.Contents(t, st); !slices.Equal(got, want) {
		t.Errorf("imported: loaded %d records, want %d, or they differ", len(got), len(want))
	}

	// The same bytes written again get Blobs of their own: the old ones,
	// unreferenced once the first release shrinks, may go at any time.
	again, err := st.CreateRelease(func(string) ([]byte, error) { return big, nil })
	if err != nil {
		t.Fatal(err)
	}
	if err := st.UpdateRelease(id, func([]byte) ([]byte, error) { return []byte(`{"done":true}`), nil }); err != nil {
		t.Fatal(err)
	}
	if n := len(blobNames(t, c)); n != 2*len(parts) {
		t.Errorf("%d blobs after the same value was written again, want a second set of %d", n, len(parts))
	}
	if _, err := c.compact(t.Context(), 0); err != nil {
		t.Fatal(err)
	}
	left := blobNames(t, c)
	if len(left) != len(parts) || slices.ContainsFunc(left, func(n string) bool { return slices.Contains(parts, n) }) {
		t.Errorf("blobs %v left, want only the second release's, none of %v", left, parts)
	}
	loadsAs(t, rc, ns, st, "after the first release shrank")
	if err := st.UpdateRelease(again, func([]byte) ([]byte, error) { return []byte(`{"done":true}`), nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := c.compact(t.Context(), 0); err != nil {
		t.Fatal(err)
	}
	if left := blobNames(t, c); len(left) != 0 {
		t.Errorf("blobs %v left once no record refers to them", left)
	}
	loadsAs(t, rc, ns, st, "after both shrank")
}

// A transaction too big for a Journal even with its values in Blobs (many
// small writes) is refused as a whole; the journal is not broken by it, so
// the leader stays, and the next transaction is journaled.
func TestATransactionOfTooManyWritesIsRefusedAndTheJournalGoesOn(t *testing.T) {
	cluster := requireCluster(t)
	ns, rc := cluster.NewNamespace(t), cluster.RESTConfig()
	j, err := StartTerm(t.Context(), rc, ns, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	var many []store.Write
	for i := range 20000 {
		many = append(many, store.Write{Bucket: "deployments", Key: fmt.Appendf(nil, "d-%08d", i), Value: []byte(`{"status":"succeeded"}`)})
	}
	err = j.Record(t.Context(), many)
	if err == nil || errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "more than the") {
		t.Fatalf("20,000 writes in one transaction: %v, want a refusal that is not ErrUnavailable", err)
	}
	select {
	case <-j.Stopped():
		t.Fatal("the journal stopped after a refusal")
	default:
	}
	if err := j.Record(t.Context(), many[:10]); err != nil {
		t.Fatalf("the next transaction: %v", err)
	}
	l, err := Load(t.Context(), rc, ns)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Sets) != 1 || len(l.Sets[0]) != 10 {
		t.Errorf("loaded %d transactions, want the one of 10 writes", len(l.Sets))
	}
}

// failDeletes is a journals client whose Delete fails once n have gone
// through, as a compactor killed midway leaves them.
type failDeletes struct {
	dynamic.ResourceInterface
	n int
}

func (f *failDeletes) Delete(ctx context.Context, name string, opts metav1.DeleteOptions, sub ...string) error {
	if f.n == 0 {
		return errors.New("the compactor was killed")
	}
	f.n--
	return f.ResourceInterface.Delete(ctx, name, opts, sub...)
}

// Compaction folds each record's last write only, so the Records can be
// ahead of journals not deleted yet. A compaction stopped halfway through
// its deletes still loads as the whole journal would, because the journals
// left are the newest; the next compaction finishes the work.
func TestACompactionStoppedMidwayLoadsTheSame(t *testing.T) {
	cluster := requireCluster(t)
	ns, rc := cluster.NewNamespace(t), cluster.RESTConfig()
	st := journaledStore(t, rc, ns, 1)
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	storetest.Workload(t, st, now)
	storetest.Workload(t, st, now.Add(time.Hour)) // the same keys, written again
	c, err := connect(rc, ns)
	if err != nil {
		t.Fatal(err)
	}
	specs, err := c.journalSpecs(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	killed := c
	killed.journals = &failDeletes{ResourceInterface: c.journals, n: len(specs) / 2}
	if _, err := killed.compact(t.Context(), blobGrace); err == nil {
		t.Fatal("the compaction went through")
	}
	loadsAs(t, rc, ns, st, "after a compaction stopped midway")
	if _, err := c.compact(t.Context(), blobGrace); err != nil {
		t.Fatal(err)
	}
	if left, err := c.journalSpecs(t.Context()); err != nil || len(left) != 1 {
		t.Fatalf("%d journals left after the next compaction, want the fence (%v)", len(left), err)
	}
	loadsAs(t, rc, ns, st, "after the next compaction")
}

// Retention that finds more to delete than one Journal holds (here 20,000
// delivery keys, as after retention is shortened on a busy store) prunes
// all of it, in several transactions, each journaled; one transaction
// would be refused, and then every later prune with it.
func TestAPruneBiggerThanOneJournalIsJournaledInParts(t *testing.T) {
	cluster := requireCluster(t)
	ns, rc := cluster.NewNamespace(t), cluster.RESTConfig()
	j, err := StartTerm(t.Context(), rc, ns, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(t.TempDir(), "leader.db"), store.Options{Journal: j})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const keys = 20000
	received := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for from := 0; from < keys; from += 2000 {
		var chunk []store.Write
		for i := from; i < from+2000; i++ {
			chunk = append(chunk, store.Write{Bucket: "delivery-keys", Key: fmt.Appendf(nil, "uuid:%08d-7d3c-4b1e-9f2a-5c6d7e8f9a0b", i),
				Value: fmt.Appendf(nil, `{"seq":%d,"receivedAt":%q}`, i+1, received.Format(time.RFC3339))})
		}
		if err := j.Record(t.Context(), chunk); err != nil {
			t.Fatal(err)
		}
		if err := st.Apply(chunk); err != nil {
			t.Fatal(err)
		}
	}
	pruned, err := st.Prune(received.Add(30*24*time.Hour), store.Retention{Deliveries: 7 * 24 * time.Hour})
	if err != nil || pruned.Deliveries != keys {
		t.Fatalf("prune: %d delivery keys, %v; want all %d", pruned.Deliveries, err, keys)
	}
	select {
	case <-j.Stopped():
		t.Fatal("the journal stopped")
	default:
	}
	loadsAs(t, rc, ns, st, "after the prune")
	if left := storetest.Contents(t, st); len(left) != 0 {
		t.Errorf("%d records left after the prune, want none", len(left))
	}
}
