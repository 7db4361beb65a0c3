package cluster_test

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// An apiserver stopped and restarted keeps what etcd holds, and the
// clients made before the outage work again: same port, same certificates.
// The controllers, the scheduler and kwok carry on with it.
func TestAPIServerRestartKeepsState(t *testing.T) {
	client, ns := setup(t)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kept"}, Data: map[string]string{"k": "v"}}
	if _, err := client.CoreV1().ConfigMaps(ns).Create(t.Context(), cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := testCluster.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			_ = testCluster.RestartAPIServer(t.Context())
		}
	})
	if _, err := client.CoreV1().ConfigMaps(ns).Get(t.Context(), "kept", metav1.GetOptions{}); err == nil {
		t.Fatal("the apiserver answered while stopped")
	}
	start := time.Now()
	if err := testCluster.RestartAPIServer(t.Context()); err != nil {
		t.Fatal(err)
	}
	restarted = true
	t.Logf("restarted in %s", time.Since(start).Round(time.Millisecond))
	got, err := client.CoreV1().ConfigMaps(ns).Get(t.Context(), "kept", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("after the restart: %v", err)
	}
	if got.Data["k"] != "v" {
		t.Errorf("after the restart the ConfigMap holds %v", got.Data)
	}
	// The controllers, the scheduler and kwok have reconnected.
	createDeployment(t, client, ns, "web", "nginx:1.27")
	waitRolledOut(t, client, ns, "web", "nginx:1.27")
	t.Logf("rolled out %s after the restart", time.Since(start).Round(time.Millisecond))
}
