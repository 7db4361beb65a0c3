package kubestore

import (
	"strings"
	"testing"

	"k8s.io/client-go/dynamic"

	"github.com/shipbot/shipbot/deployer/store"
	"github.com/shipbot/shipbot/deployer/store/storetest"
	"github.com/shipbot/shipbot/test/cluster"
)

var testCluster *cluster.Cluster

func TestMain(m *testing.M) { cluster.Main(m, cluster.Options{Shipbot: true}, &testCluster) }

func newInbox(t *testing.T) *Inbox {
	t.Helper()
	cluster.Require(t, testCluster)
	dyn, err := dynamic.NewForConfig(testCluster.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	return NewInbox(dyn, testCluster.NewNamespace(t))
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
