package kubestore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"

	"github.com/shipbot/shipbot/deployer/store"
	"github.com/shipbot/shipbot/deployer/store/storetest"
)

// table reads resource in namespace ns as kubectl get shows it: the
// apiserver fills the columns from the CRD's printer columns.
func table(t *testing.T, rc *rest.Config, ns, resource string) map[string]map[string]any {
	t.Helper()
	hc, err := rest.HTTPClientFor(rc)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, fmt.Sprintf("%s/apis/shipbot.io/v1alpha1/namespaces/%s/%s", rc.Host, ns, resource), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tab metav1.Table
	if err := json.NewDecoder(resp.Body).Decode(&tab); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("get %s as a table: %s: %v", resource, resp.Status, err)
	}
	rows := map[string]map[string]any{}
	for _, r := range tab.Rows {
		row := map[string]any{}
		for i, c := range tab.ColumnDefinitions {
			row[c.Name] = r.Cells[i]
		}
		rows[fmt.Sprint(row["Name"])] = row
	}
	return rows
}

// The records of deployments, previews, releases and notes are objects of
// their own kinds, which kubectl shows with their fields, and they load
// back as the store held them.
func TestRecordsAreObjectsOfTheirBucketsKinds(t *testing.T) {
	cluster := requireCluster(t)
	ns, rc := cluster.NewNamespace(t), cluster.RESTConfig()
	st := journaledStore(t, rc, ns, 1)
	storetest.Workload(t, st, time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC))
	id, err := st.CreateRelease(func(id string) ([]byte, error) {
		return fmt.Appendf(nil, `{"id":%q,"app":"shop","environment":"prod1","to":{"name":"v1-2-0"},"phase":"Running","percent":10}`, id), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutNote("slack/msg/"+id, []byte("1733570000.000100")); err != nil {
		t.Fatal(err)
	}
	if _, err := Compact(t.Context(), rc, ns); err != nil {
		t.Fatal(err)
	}

	row := table(t, rc, ns, "releases")[id]
	for col, want := range map[string]any{"App": "shop", "Environment": "prod1", "Version": "v1-2-0", "Phase": "Running", "Percent": float64(10)} {
		if row[col] != want {
			t.Errorf("kubectl get releases: release %s shows %s %v, want %v (row %v)", id, col, row[col], want, row)
		}
	}

	var web bool
	for _, row := range table(t, rc, ns, "deployments") {
		web = web || row["App"] == "web" && row["Environment"] == "dev"
	}
	if !web {
		t.Error("kubectl get deployments.shipbot.io shows no deployment of web to dev")
	}
	for name, row := range table(t, rc, ns, "previews") {
		if _, ok := row["MR"].(float64); !ok {
			t.Errorf("kubectl get previews.shipbot.io shows preview %s without its MR: %v", name, row)
		}
	}

	c, err := connect(rc, ns)
	if err != nil {
		t.Fatal(err)
	}
	note, err := c.typed["notes"].Get(t.Context(), typedName("notes", []byte("slack/msg/"+id)), metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the note of a key that is no object name, under its hashed name: %v", err)
	}
	if v, _, _ := unstructured.NestedString(note.Object, "spec", "value"); v == "" || note.Object["spec"].(map[string]any)["record"] != nil {
		t.Errorf("a note that is not a JSON object: spec %v, want its bytes in spec.value", note.Object["spec"])
	}

	want := map[string]int{}
	if err := st.Contents(func(w store.Write) error {
		if _, ok := kinds[w.Bucket]; ok && w.Key != nil {
			want[w.Bucket]++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for bucket, n := range want {
		list, err := c.typed[bucket].List(t.Context(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Items) != n {
			t.Errorf("%d objects of the kind of %s, want the store's %d", len(list.Items), bucket, n)
		}
	}
	if len(want) != len(kinds) {
		t.Errorf("the store holds records of %d of the %d buckets with a kind: the workload misses some", len(want), len(kinds))
	}
	records, err := listAs[recordObject](t.Context(), c.records, ns, "record")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range records {
		if _, ok := kinds[r.Spec.Bucket]; ok && r.Spec.Key != nil {
			t.Errorf("record %s of bucket %s key %q: a bucket with a kind keeps only its sequence in Records", r.Name, r.Spec.Bucket, r.Spec.Key)
		}
	}
	loadsAs(t, rc, ns, st, "from the kinds' objects")
}

// A store written before the kinds existed holds every record in Records.
// It loads as it is; the next compaction moves the records of buckets with
// a kind to that kind, and a key deleted after that stays deleted.
func TestRecordsOfAnOlderStoreMoveToTheirKinds(t *testing.T) {
	cluster := requireCluster(t)
	ns, rc := cluster.NewNamespace(t), cluster.RESTConfig()
	src := openStore(t)
	storetest.Workload(t, src, time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC))
	for key, value := range map[string]string{"slack/msg/r000000000001": "1733570000.000100", "dingtalk/used/abc": `{"by":"alice"}`} {
		if err := src.PutNote(key, []byte(value)); err != nil {
			t.Fatal(err)
		}
	}
	c, err := connect(rc, ns)
	if err != nil {
		t.Fatal(err)
	}
	var notes [][]byte
	if err := src.Contents(func(w store.Write) error {
		if w.Bucket == "notes" && w.Key != nil {
			notes = append(notes, w.Key)
		}
		return c.foldRecord(t.Context(), entry{Write: w}) // as an older version folded it
	}); err != nil {
		t.Fatal(err)
	}
	// A Record written before the bucket label existed has none.
	unlabel := []byte(`{"metadata":{"labels":null}}`)
	if _, err := c.records.Patch(t.Context(), recordName("notes", notes[0]), types.MergePatchType, unlabel, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	loadsAs(t, rc, ns, src, "the older store")

	moved, err := c.moveRecords(t.Context())
	if err != nil || moved == 0 {
		t.Fatalf("moved %d records: %v", moved, err)
	}
	loadsAs(t, rc, ns, src, "after the move")
	if again, err := c.moveRecords(t.Context()); err != nil || again != 0 {
		t.Errorf("a second move moved %d: %v, want none", again, err)
	}

	// A key deleted after the move: no Record of it is left to bring it back.
	if err := c.fold(t.Context(), entry{Write: store.Write{Bucket: "notes", Key: notes[0], Deleted: true}}); err != nil {
		t.Fatal(err)
	}
	l, err := Load(t.Context(), rc, ns)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := rebuild(t, l).Note(string(notes[0])); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("note %s deleted after the move loads as %q, %v", notes[0], v, err)
	}
}

// A key that has both a Record and an object of its kind, as a move
// stopped between the two leaves it, loads as the kind's object holds it.
func TestTheKindsObjectIsNewerThanARecordOfTheSameKey(t *testing.T) {
	cluster := requireCluster(t)
	ns, rc := cluster.NewNamespace(t), cluster.RESTConfig()
	c, err := connect(rc, ns)
	if err != nil {
		t.Fatal(err)
	}
	key := []byte("r000000000001")
	if err := c.foldRecord(t.Context(), entry{Write: store.Write{Bucket: "releases", Key: key, Value: []byte(`{"phase":"Running"}`)}}); err != nil {
		t.Fatal(err)
	}
	if err := c.fold(t.Context(), entry{Write: store.Write{Bucket: "releases", Key: key, Value: []byte(`{"phase":"Succeeded"}`)}}); err != nil {
		t.Fatal(err)
	}
	l, err := Load(t.Context(), rc, ns)
	if err != nil {
		t.Fatal(err)
	}
	got := string(rebuildRelease(t, l, string(key)))
	if got != `{"phase":"Succeeded"}` {
		t.Errorf("loaded %s, want the kind's object's", got)
	}
}

func rebuildRelease(t *testing.T, l Loaded, id string) []byte {
	t.Helper()
	v, err := rebuild(t, l).Release(id)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestDocument(t *testing.T) {
	for value, want := range map[string]bool{
		`{"app":"shop","percent":10,"threshold":0.25,"history":[{"at":"2026-12-07T10:00:00Z"}]}`: true,
		` {"a":null}`:                      true,
		`{"big":9223372036854775807}`:      true,  // int64's top
		`{"big":18446744073709551615}`:     false, // a uint64 the apiserver would round
		`{"huge":1e400}`:                   false, // beyond float64
		`{"a":1}{"b":2}`:                   false,
		`["a"]`:                            false,
		`"a"`:                              false,
		`1733570000.000100`:                false,
		``:                                 false,
		`{"a":`:                            false,
		`{"a":1}]`:                         false, // trailing bytes after the object
		"{\"a\":\"\xff\"}":                 false, // not UTF-8
		`{"a":"\ud800"}`:                   false, // a lone surrogate, escaped
		`{"a":1,"a":2}`:                    false, // a key twice
		`{"a":{"b":1,"b":2}}`:              false,
		`{"a":[{"b":1},{"b":2}],"b":3}`:    true, // one key in different objects
		`{"name":"café ☕","esc":"\u00e9"}`: true,
	} {
		if got := document([]byte(value)); got != want {
			t.Errorf("document(%s) = %v, want %v", value, got, want)
		}
	}
}

func TestTypedNames(t *testing.T) {
	for _, c := range []struct{ bucket, key, want string }{
		{"releases", "r000000000012", "r000000000012"},
		{"deployments", "d000000000007", "d000000000007"},
		{"previews", "42!7", recordName("previews", []byte("42!7"))},
		{"notes", "slack/msg/r000000000012", recordName("notes", []byte("slack/msg/r000000000012"))},
		{"notes", "r-0123", recordName("notes", []byte("r-0123"))}, // it could be a hashed name
	} {
		if got := typedName(c.bucket, []byte(c.key)); got != c.want {
			t.Errorf("typedName(%s, %q) = %s, want %s", c.bucket, c.key, got, c.want)
		}
	}
}

func TestSummaryLeavesOutTheBiggestFields(t *testing.T) {
	doc := `{"app":"shop","history":["` + strings.Repeat("h", 300) + `"],"checks":["` + strings.Repeat("c", 200) + `"],"intents":["` + strings.Repeat("i", 50) + `"],"phase":"Running"}`
	for _, c := range []struct {
		limit  int
		want   string
		elided []string
	}{
		{1000, `{"app":"shop","checks":["` + strings.Repeat("c", 200) + `"],"history":["` + strings.Repeat("h", 300) + `"],"intents":["` + strings.Repeat("i", 50) + `"],"phase":"Running"}`, nil},
		{300, `{"app":"shop","intents":["` + strings.Repeat("i", 50) + `"],"phase":"Running"}`, []string{"checks", "history"}},
		{40, `{"app":"shop","phase":"Running"}`, []string{"checks", "history", "intents"}},
		{10, `{}`, []string{"app", "checks", "history", "intents", "phase"}},
	} {
		got, elided, err := summary([]byte(doc), c.limit)
		if err != nil || string(got) != c.want || !slices.Equal(elided, c.elided) {
			t.Errorf("summary in %d bytes: %s, eliding %v (%v); want %s, eliding %v", c.limit, got, elided, err, c.want, c.elided)
		}
	}
}

// The leader's Compactor moves an earlier version's Records to their
// kinds, then compacts on every tick.
func TestCompactorMovesThenCompactsOnEveryTick(t *testing.T) {
	cluster := requireCluster(t)
	ns, rc := cluster.NewNamespace(t), cluster.RESTConfig()
	c, err := connect(rc, ns)
	if err != nil {
		t.Fatal(err)
	}
	old := store.Write{Bucket: "notes", Key: []byte("slack/msg/r000000000001"), Value: []byte("1733570000.000100")}
	if err := c.foldRecord(t.Context(), entry{Write: old}); err != nil { // as an earlier version folded it
		t.Fatal(err)
	}
	st := journaledStore(t, rc, ns, 2)
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Compactor{Config: rc, Namespace: ns, Every: 50 * time.Millisecond, Log: slog.New(slog.DiscardHandler)}.Run(ctx)
	}()
	defer func() { stop(); <-done }()

	for round := range 2 {
		id, err := st.CreateRelease(func(id string) ([]byte, error) { return fmt.Appendf(nil, `{"id":%q}`, id), nil })
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			specs, err := c.journalSpecs(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.typed["releases"].Get(t.Context(), id, metav1.GetOptions{})
			if len(specs) == 1 && err == nil { // only the term's fence left, and the release folded
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: %d journals left and release %s: %v, 10 s after it was written", round, len(specs), id, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if _, err := c.records.Get(t.Context(), recordName(old.Bucket, old.Key), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the earlier version's Record of a note: %v, want it moved", err)
	}
	if _, err := c.typed["notes"].Get(t.Context(), typedName(old.Bucket, old.Key), metav1.GetOptions{}); err != nil {
		t.Errorf("the note's object: %v", err)
	}
}
