package cluster_test

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// A client with its own user shows up in the audit log with exactly the
// requests it made, and the admin's requests do not.
func TestAuditRequestsCountsOneUser(t *testing.T) {
	admin, ns := setup(t)
	path, err := testCluster.KubeconfigFor("auditor")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "audited", Namespace: ns}}
	if _, err := c.CoreV1().ConfigMaps(ns).Create(t.Context(), cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CoreV1().ConfigMaps(ns).Get(t.Context(), "audited", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CoreV1().ConfigMaps(ns).Get(t.Context(), "absent", metav1.GetOptions{}); err == nil {
		t.Fatal("got a ConfigMap that was never created")
	}
	if _, err := admin.CoreV1().ConfigMaps(ns).Get(t.Context(), "audited", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := testCluster.AuditRequests("auditor")
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	for _, r := range got {
		if r.Namespace == ns {
			seen = append(seen, fmt.Sprintf("%s %s/%s %d", r.Verb, r.Resource, r.Name, r.Code))
		}
	}
	want := []string{"create configmaps/audited 201", "get configmaps/audited 200", "get configmaps/absent 404"}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("audit log for auditor in %s: %q, want %q", ns, seen, want)
	}
}
