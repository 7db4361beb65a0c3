package kubestore

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"

	"github.com/shipbot/shipbot/deployer/store"
	"github.com/shipbot/shipbot/deployer/store/storetest"
	"github.com/shipbot/shipbot/test/cluster"
)

var testCluster *cluster.Cluster

func TestMain(m *testing.M) { cluster.Main(m, cluster.Options{Shipbot: true}, &testCluster) }

// requireCluster skips t without a control plane, and returns it.
func requireCluster(t *testing.T) *cluster.Cluster {
	t.Helper()
	cluster.Require(t, testCluster)
	return testCluster
}

func newInbox(t *testing.T) *Inbox {
	t.Helper()
	cluster.Require(t, testCluster)
	in, err := NewInbox(testCluster.RESTConfig(), testCluster.NewNamespace(t))
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func TestInboxConforms(t *testing.T) {
	storetest.TestInbox(t, func(t *testing.T) storetest.Inbox { return newInbox(t) })
}

func TestAcceptRefusesABodyNoObjectHolds(t *testing.T) {
	in := newInbox(t)
	_, _, err := in.Accept(t.Context(), store.Delivery{Key: "big", Event: "Push Hook", Body: make([]byte, MaxBody+1)})
	if err == nil || !strings.Contains(err.Error(), "more than the 786432 a Delivery object holds") {
		t.Fatalf("accept of %d bytes: %v, want a refusal that names the limit", MaxBody+1, err)
	}
}

// removeOnGet removes the object just before the first read of it, as the
// relay does when it takes a delivery between a replica's create (which
// found it) and that replica's read.
type removeOnGet struct {
	dynamic.ResourceInterface
	done bool
}

func (r *removeOnGet) Get(ctx context.Context, name string, opts metav1.GetOptions, sub ...string) (*unstructured.Unstructured, error) {
	if !r.done {
		r.done = true
		if err := r.ResourceInterface.Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			return nil, err
		}
	}
	return r.ResourceInterface.Get(ctx, name, opts, sub...)
}

// A redelivery whose first copy is relayed away while it is being stored
// is stored again, not refused: the engine's inbox dedupes it.
func TestAcceptStoresAgainWhatWasRelayedMeanwhile(t *testing.T) {
	in := newInbox(t)
	d := store.Delivery{Key: "uuid-race", Event: "Push Hook", Body: []byte(`{}`), ReceivedAt: time.Now().UTC()}
	if _, _, err := in.Accept(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	in.client = &removeOnGet{ResourceInterface: in.client}
	if _, dup, err := in.Accept(t.Context(), d); err != nil || dup {
		t.Fatalf("redelivery: dup %v, %v; want it stored anew", dup, err)
	}
	if got, err := in.Pending(t.Context(), 10); err != nil || len(got) != 1 {
		t.Fatalf("pending %d (%v), want the redelivery", len(got), err)
	}
}

// While the apiserver is down, Accept says the store is unavailable (the
// intake answers 503) and stores again once it is back. A journal write
// fails as unavailable too, and the journal then refuses writes until the
// leader starts a new term: the lost write's outcome is unknown. (One
// outage for both: the control plane's controller manager does not always
// live through a second.)
func TestWritesWhileTheAPIServerIsDown(t *testing.T) {
	in := newInbox(t)
	j, err := StartTerm(t.Context(), testCluster.RESTConfig(), testCluster.NewNamespace(t), 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	note := func(ctx context.Context, key string) error {
		return j.Record(ctx, []store.Write{{Bucket: "notes", Key: []byte(key), Value: []byte("v")}})
	}
	if err := testCluster.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	_, _, acceptErr := in.Accept(ctx, store.Delivery{Key: "down", Event: "Push Hook", Body: []byte(`{}`), ReceivedAt: time.Now().UTC()})
	journalErr := note(ctx, "k")
	cancel()
	restart, stop := context.WithTimeout(context.Background(), time.Minute)
	defer stop()
	if err := testCluster.RestartAPIServer(restart); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(acceptErr, store.ErrUnavailable) {
		t.Errorf("accept with the apiserver down: %v, want store.ErrUnavailable", acceptErr)
	}
	if !errors.Is(journalErr, store.ErrUnavailable) {
		t.Errorf("journal write with the apiserver down: %v, want store.ErrUnavailable", journalErr)
	}
	if _, dup, err := in.Accept(t.Context(), store.Delivery{Key: "down", Event: "Push Hook", Body: []byte(`{}`), ReceivedAt: time.Now().UTC()}); err != nil || dup {
		t.Errorf("accept once it is back: dup %v, %v", dup, err)
	}
	if err := note(t.Context(), "k2"); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("journal write after the apiserver came back: %v, want a refusal until a new term", err)
	}
}

// A request the apiserver refuses as wrong is not "unavailable": trying
// again would not help.
func TestAcceptRefusedIsNotUnavailable(t *testing.T) {
	in := newInbox(t)
	_, _, err := in.Accept(t.Context(), store.Delivery{Key: "x", Event: strings.Repeat("x", 200), Body: []byte(`{}`), ReceivedAt: time.Now()}) // the schema allows 128
	if err == nil || errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("accept refused by the schema: %v, want an error that is not ErrUnavailable", err)
	}
}
