package kubestore

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"

	"github.com/shipbot/shipbot/deployer/store"
)

// Journals is the resource of the Journal CRD (deploy/crds/journals.yaml).
var Journals = schema.GroupVersionResource{Group: "shipbot.io", Version: "v1alpha1", Resource: "journals"}

// maxJournalBytes bounds one Journal's writes, under etcd's 1.5 MiB
// request limit with room for base64 and the object's metadata.
const maxJournalBytes = 1 << 20

type journalObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              journalSpec `json:"spec"`
}

type journalSpec struct {
	Term   int64            `json:"term"`
	Seq    int64            `json:"seq"`
	Fence  map[string]int64 `json:"fence,omitempty"` // term → last seq seen
	Writes []entry          `json:"writes,omitempty"`
}

func journalName(term, seq int64) string { return fmt.Sprintf("j-%010d-%012d", term, seq) }

// Journal writes the store's transactions of one leader's term as Journal
// objects, in order. It implements store.Journal.
type Journal struct {
	res  resources
	term int64

	mu      sync.Mutex
	seq     int64
	broken  error         // set when a write's outcome is unknown: nothing more may be written
	stopped chan struct{} // closed when broken is set
}

var _ store.Journal = (*Journal)(nil)

// StartTerm begins term's journal, after the store was rebuilt from what
// Load read: it first records which journals of earlier terms that was
// (seen), so that one an earlier leader writes after this moment is
// ignored by every later Load. A term can start once.
func StartTerm(ctx context.Context, rc *rest.Config, ns string, term int64, seen map[int64]int64) (*Journal, error) {
	c, err := connect(rc, ns)
	if err != nil {
		return nil, err
	}
	fence := map[string]int64{}
	for t, s := range seen {
		if t < term {
			fence[strconv.FormatInt(t, 10)] = s
		}
	}
	j := &Journal{res: c, term: term, stopped: make(chan struct{})}
	if err := j.create(ctx, journalSpec{Term: term, Seq: 0, Fence: fence}); err != nil {
		return nil, fmt.Errorf("start term %d of the journal: %w", term, err)
	}
	return j, nil
}

// Record writes one transaction's changes as the term's next Journal, the
// biggest values first written to Blobs when the whole would not fit in
// one object (fit). A transaction that does not fit even so is refused,
// and the journal goes on. When the apiserver's answer to the Journal's
// create is lost (a timeout, a broken connection) the object may or may
// not exist, and the store's file would not match it either way; the
// journal then refuses every later write, and the leader must step down
// so that the next one rebuilds.
func (j *Journal) Record(ctx context.Context, writes []store.Write) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.broken != nil {
		return fmt.Errorf("%w: the journal stopped after a write of unknown outcome: %w", store.ErrUnavailable, j.broken)
	}
	entries, err := j.res.fit(ctx, writes)
	if err != nil {
		return err // no Journal written: the transaction fails, and the journal goes on
	}
	if size, err := jsonSize(entries); err != nil || size > maxJournalBytes {
		return cmp.Or(err, fmt.Errorf("a transaction of %d writes takes %d bytes with its big values in Blobs, more than the %d a Journal holds", len(entries), size, maxJournalBytes))
	}
	spec := journalSpec{Term: j.term, Seq: j.seq + 1, Writes: entries}
	err = j.create(ctx, spec)
	var status apierrors.APIStatus
	switch {
	case err == nil:
		j.seq++
		return nil
	case apierrors.IsAlreadyExists(err):
		return fmt.Errorf("journal %s exists: another replica writes term %d: %w", journalName(j.term, spec.Seq), j.term, err)
	case errors.As(err, &status) && status.Status().Code >= 400 && status.Status().Code < 500 && status.Status().Code != 429:
		return fmt.Errorf("journal %s refused: %w", journalName(j.term, spec.Seq), err) // not created
	}
	j.broken = err
	close(j.stopped)
	return unavailable(fmt.Errorf("journal %s: %w", journalName(j.term, spec.Seq), err))
}

// Stop makes the journal refuse every later write: the leader calls it as
// soon as it stops leading, so that nothing it still has in hand lands
// after the next leader may have rebuilt.
func (j *Journal) Stop() {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.broken == nil {
		j.broken = errors.New("this replica no longer leads")
		close(j.stopped)
	}
}

// Stopped is closed when the journal stops taking writes, after one of
// unknown outcome: its leader should step down, so that the next one
// rebuilds from what the apiserver holds.
func (j *Journal) Stopped() <-chan struct{} { return j.stopped }

// Term is the leader's term the journal writes.
func (j *Journal) Term() int64 { return j.term }

func (j *Journal) create(ctx context.Context, spec journalSpec) error {
	obj := journalObject{
		TypeMeta:   metav1.TypeMeta{APIVersion: Journals.GroupVersion().String(), Kind: "Journal"},
		ObjectMeta: metav1.ObjectMeta{Name: journalName(spec.Term, spec.Seq), Namespace: j.res.ns},
		Spec:       spec,
	}
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&obj)
	if err != nil {
		return err
	}
	_, err = j.res.journals.Create(ctx, &unstructured.Unstructured{Object: u}, metav1.CreateOptions{})
	return err
}

// Loaded is what a replica that takes over rebuilds its store from.
type Loaded struct {
	// Sets are the transactions to apply, in the order they committed.
	Sets [][]store.Write
	// Seen is the last journal of each term that Sets include: StartTerm's
	// fence.
	Seen map[int64]int64
	// Ignored counts journals of a term written after a later term began.
	Ignored int
}

// Load reads the records (the Records and the objects of the buckets'
// kinds) and the journal left, leaving out what a fence excludes.
func Load(ctx context.Context, rc *rest.Config, ns string) (Loaded, error) {
	c, err := connect(rc, ns)
	if err != nil {
		return Loaded{}, err
	}
	records, err := c.recordEntries(ctx)
	if err != nil {
		return Loaded{}, err
	}
	specs, err := c.journalSpecs(ctx)
	if err != nil {
		return Loaded{}, err
	}
	keep, err := fenced(specs)
	if err != nil {
		return Loaded{}, err
	}
	out := Loaded{Seen: map[int64]int64{}}
	if len(records) > 0 {
		ws, err := c.writes(ctx, records)
		if err != nil {
			return Loaded{}, err
		}
		out.Sets = append(out.Sets, ws)
	}
	for _, s := range specs {
		if !keep(s) {
			out.Ignored++
			continue
		}
		out.Seen[s.Term] = s.Seq
		if len(s.Writes) > 0 {
			ws, err := c.writes(ctx, s.Writes)
			if err != nil {
				return Loaded{}, fmt.Errorf("journal %s: %w", journalName(s.Term, s.Seq), err)
			}
			out.Sets = append(out.Sets, ws)
		}
	}
	return out, nil
}

// writes are entries as the store writes them, with the values that Blobs
// hold read back.
func (c resources) writes(ctx context.Context, entries []entry) ([]store.Write, error) {
	out := make([]store.Write, len(entries))
	for i, e := range entries {
		if err := c.resolve(ctx, &e); err != nil {
			return nil, err
		}
		out[i] = e.Write
	}
	return out, nil
}

// fit returns a transaction's writes as a Journal's entries, moving the
// biggest values to Blobs until the entries fit in one Journal.
func (c resources) fit(ctx context.Context, writes []store.Write) ([]entry, error) {
	entries := make([]entry, len(writes))
	for i, w := range writes {
		entries[i] = entry{Write: w}
	}
	size, err := jsonSize(entries)
	if err != nil || size <= maxJournalBytes {
		return entries, err
	}
	biggest := make([]int, len(entries))
	for i := range biggest {
		biggest[i] = i
	}
	slices.SortFunc(biggest, func(a, b int) int { return cmp.Compare(len(entries[b].Value), len(entries[a].Value)) })
	for _, i := range biggest {
		if len(entries[i].Value) < minBlobValue || size <= maxJournalBytes {
			break
		}
		if err := c.toBlob(ctx, &entries[i]); err != nil {
			return nil, err
		}
		if size, err = jsonSize(entries); err != nil {
			return nil, err
		}
	}
	return entries, nil // Record refuses what still does not fit
}

// minBlobValue is the smallest value fit moves to Blobs: below it, the
// reference saves too little to be worth the objects.
const minBlobValue = 4 << 10

func jsonSize(entries []entry) (int, error) {
	raw, err := json.Marshal(entries)
	return len(raw), err
}

// journalSpecs lists the journals in the order they were written.
func (c resources) journalSpecs(ctx context.Context) ([]journalSpec, error) {
	objs, err := listAs[journalObject](ctx, c.journals, c.ns, "journal")
	if err != nil {
		return nil, err
	}
	specs := make([]journalSpec, 0, len(objs))
	for _, obj := range objs {
		if obj.Name != journalName(obj.Spec.Term, obj.Spec.Seq) {
			return nil, fmt.Errorf("journal %s/%s: its name is not that of term %d seq %d", c.ns, obj.Name, obj.Spec.Term, obj.Spec.Seq)
		}
		specs = append(specs, obj.Spec)
	}
	slices.SortFunc(specs, func(a, b journalSpec) int { return cmp.Or(cmp.Compare(a.Term, b.Term), cmp.Compare(a.Seq, b.Seq)) })
	return specs, nil
}

// fenced says which journals count: all but those of a term written after
// a later term's fence.
func fenced(specs []journalSpec) (func(journalSpec) bool, error) {
	last := map[int64]int64{} // per term, the most any later fence allows
	for _, s := range specs {
		for t, seq := range s.Fence {
			term, err := strconv.ParseInt(t, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("journal %s: fence term %q: %w", journalName(s.Term, s.Seq), t, err)
			}
			if old, ok := last[term]; !ok || seq < old {
				last[term] = seq
			}
		}
	}
	return func(s journalSpec) bool {
		limit, fenced := last[s.Term]
		return !fenced || s.Seq <= limit
	}, nil
}
