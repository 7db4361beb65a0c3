package release

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/shipbot/shipbot/test/cluster"
)

func awaitDeployment(t *testing.T, h *harness, name, image string) {
	t.Helper()
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: h.ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}},
			},
		},
	}
	if _, err := h.cluster.Kube.Kube.AppsV1().Deployments(h.ns).Create(t.Context(), d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// AwaitRollout reports a rollout as it completes, and reports nothing for
// one that cannot complete before its context ends.
func TestAwaitRollout(t *testing.T) {
	h := newHarness(t)
	awaitDeployment(t, h, "good", "nginx:1.27")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	ok, err := h.e.AwaitRollout(ctx, Rollout{Cluster: "local", Namespace: h.ns, Deployment: "good"})
	if err != nil || !ok {
		t.Fatalf("good rollout: %v, %v; want true", ok, err)
	}
	d, err := h.cluster.Kube.Kube.AppsV1().Deployments(h.ns).Get(t.Context(), "good", metav1.GetOptions{})
	if err != nil || d.Status.AvailableReplicas != 2 {
		t.Errorf("AwaitRollout returned before the pods were available: %+v, %v", d.Status, err)
	}

	awaitDeployment(t, h, "bad", cluster.BadImageRegistry+"app:1")
	ctx, cancel = context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	start := time.Now()
	ok, err = h.e.AwaitRollout(ctx, Rollout{Cluster: "local", Namespace: h.ns, Deployment: "bad"})
	if err != nil || ok || time.Since(start) < 2*time.Second {
		t.Errorf("stuck rollout: %v, %v after %s; want false when the context ends", ok, err, time.Since(start))
	}
}
