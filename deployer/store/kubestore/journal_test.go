package kubestore

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shipbot/shipbot/deployer/store"
	"github.com/shipbot/shipbot/deployer/store/storetest"
)

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
// exactly what it held.
func TestAStoreIsRebuiltFromItsJournal(t *testing.T) {
	cluster := requireCluster(t)
	ns := cluster.NewNamespace(t)
	j, err := StartTerm(t.Context(), cluster.RESTConfig(), ns, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(t.TempDir(), "leader.db"), store.Options{Journal: j})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
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
	j, err := StartTerm(t.Context(), rc, ns, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(t.TempDir(), "leader.db"), store.Options{Journal: j})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
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
