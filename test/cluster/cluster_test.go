package cluster_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/shipbot/shipbot/test/cluster"
)

var testCluster *cluster.Cluster

func TestMain(m *testing.M) {
	cluster.Main(m, cluster.Options{Istio: true, Audit: true, Log: os.Stderr}, &testCluster)
}

// setup returns an admin client and a fresh namespace, skipping without a cluster.
func setup(t *testing.T) (kubernetes.Interface, string) {
	t.Helper()
	cluster.Require(t, testCluster)
	return testCluster.Client(), testCluster.NewNamespace(t)
}

// eventually polls cond every 200ms until it holds, failing t after timeout.
func eventually(t *testing.T, what string, timeout time.Duration, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, timeout, true, cond)
	if err != nil {
		t.Fatalf("%s: not within %s: %v", what, timeout, err)
	}
}

func TestDeploymentBecomesAvailable(t *testing.T) {
	client, ns := setup(t)
	start := time.Now()
	createDeployment(t, client, ns, "web", "nginx:1.27")
	waitRolledOut(t, client, ns, "web", "nginx:1.27")
	t.Logf("3-replica deployment available after %s", time.Since(start).Round(time.Millisecond))
}

func TestImageUpdateRollsOut(t *testing.T) {
	client, ns := setup(t)
	createDeployment(t, client, ns, "web", "nginx:1.27")
	waitRolledOut(t, client, ns, "web", "nginx:1.27")

	d, err := client.AppsV1().Deployments(ns).Get(t.Context(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d.Spec.Template.Spec.Containers[0].Image = "nginx:1.28"
	if _, err := client.AppsV1().Deployments(ns).Update(t.Context(), d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRolledOut(t, client, ns, "web", "nginx:1.28")

	rss, err := client.AppsV1().ReplicaSets(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	replicas := map[string]int32{}
	for _, rs := range rss.Items {
		replicas[rs.Spec.Template.Spec.Containers[0].Image] = rs.Status.ReadyReplicas
	}
	if len(rss.Items) != 2 || replicas["nginx:1.28"] != 3 || replicas["nginx:1.27"] != 0 {
		t.Errorf("ready replicas by ReplicaSet image = %v, want nginx:1.28: 3, nginx:1.27: 0", replicas)
	}
}

func TestBadImageReportsImagePullBackOff(t *testing.T) {
	client, ns := setup(t)
	image := cluster.BadImageRegistry + "app:missing"
	createPod(t, client, ns, "bad", image, nil)

	var waiting *corev1.ContainerStateWaiting
	eventually(t, "container waiting in ImagePullBackOff", 30*time.Second, func(ctx context.Context) (bool, error) {
		pod, err := client.CoreV1().Pods(ns).Get(ctx, "bad", metav1.GetOptions{})
		if err != nil || len(pod.Status.ContainerStatuses) == 0 {
			return false, err
		}
		waiting = pod.Status.ContainerStatuses[0].State.Waiting
		return waiting != nil, nil
	})
	if waiting.Reason != "ImagePullBackOff" || !strings.HasPrefix(waiting.Message, `Back-off pulling image "`+image+`"`) {
		t.Errorf("waiting = %q: %q, want ImagePullBackOff: Back-off pulling image %q...", waiting.Reason, waiting.Message, image)
	}
	wantEvent(t, client, ns, "bad", "Failed", "Failed to pull image")
	wantEvent(t, client, ns, "bad", "Failed", "Error: ImagePullBackOff")
	wantEvent(t, client, ns, "bad", "BackOff", "Back-off pulling image")
	// Give kwok time to (wrongly) play another stage before checking readiness.
	time.Sleep(2 * time.Second)
	pod, err := client.CoreV1().Pods(ns).Get(t.Context(), "bad", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if podReady(pod) || pod.Status.Phase != corev1.PodPending {
		t.Errorf("pod phase %s, ready %v; want Pending and not ready", pod.Status.Phase, podReady(pod))
	}
}

func TestCrashLoopTagReportsCrashLoopBackOff(t *testing.T) {
	client, ns := setup(t)
	createPod(t, client, ns, "crash", "app"+cluster.CrashLoopTag, nil)

	eventually(t, "container waiting in CrashLoopBackOff", 30*time.Second, func(ctx context.Context) (bool, error) {
		pod, err := client.CoreV1().Pods(ns).Get(ctx, "crash", metav1.GetOptions{})
		if err != nil || len(pod.Status.ContainerStatuses) == 0 {
			return false, err
		}
		st := pod.Status.ContainerStatuses[0]
		ok := st.State.Waiting != nil && st.State.Waiting.Reason == "CrashLoopBackOff" &&
			st.LastTerminationState.Terminated != nil && st.LastTerminationState.Terminated.ExitCode == 1
		return ok && st.RestartCount == 1 && !podReady(pod), nil
	})
	wantEvent(t, client, ns, "crash", "BackOff", "Back-off restarting failed container")
}

func TestHugeCPURequestIsUnschedulable(t *testing.T) {
	client, ns := setup(t)
	createPod(t, client, ns, "huge", "nginx:1.27", corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1000")})
	wantEvent(t, client, ns, "huge", "FailedScheduling", "Insufficient cpu")

	// The scheduler records the event and patches the pod's status separately,
	// so the condition may land a moment after the event.
	eventually(t, "pod unscheduled with PodScheduled=False reason Unschedulable", 10*time.Second, func(ctx context.Context) (bool, error) {
		pod, err := client.CoreV1().Pods(ns).Get(ctx, "huge", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if pod.Spec.NodeName != "" {
			return false, fmt.Errorf("pod bound to node %q; want unscheduled", pod.Spec.NodeName)
		}
		return hasCondition(pod, corev1.PodScheduled, corev1.ConditionFalse, "Unschedulable"), nil
	})
}

func TestRBACIsEnforced(t *testing.T) {
	client, ns := setup(t)
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: "nobody",
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: ns, Verb: "patch", Group: "apps", Resource: "deployments",
		},
	}}
	got, err := client.AuthorizationV1().SubjectAccessReviews().Create(t.Context(), sar, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status.Allowed {
		t.Errorf("user nobody may patch deployments; RBAC is not enforced")
	}
}

func TestIstioCRDsAreEstablished(t *testing.T) {
	cluster.Require(t, testCluster)
	dyn, err := dynamic.NewForConfig(testCluster.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"virtualservices.networking.istio.io", "destinationrules.networking.istio.io"} {
		crd, err := dyn.Resource(cluster.CRDResource).Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			t.Errorf("get CRD %s: %v", name, err)
			continue
		}
		if !cluster.Established(crd) {
			t.Errorf("CRD %s is not Established: %v", name, crd.Object["status"])
		}
	}
}

func createDeployment(t *testing.T, client kubernetes.Interface, ns, name, image string) {
	t.Helper()
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: new(int32(3)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}},
			},
		},
	}
	if _, err := client.AppsV1().Deployments(ns).Create(t.Context(), d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// waitRolledOut waits until the deployment runs image on all 3 replicas and is Available.
func waitRolledOut(t *testing.T, client kubernetes.Interface, ns, name, image string) {
	t.Helper()
	eventually(t, "deployment "+name+" rolled out with "+image, time.Minute, func(ctx context.Context) (bool, error) {
		d, err := client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		s := d.Status
		return s.ObservedGeneration == d.Generation && d.Spec.Template.Spec.Containers[0].Image == image &&
			s.UpdatedReplicas == 3 && s.AvailableReplicas == 3 && s.Replicas == 3 &&
			hasDeploymentCondition(d, appsv1.DeploymentAvailable), nil
	})
	pods, err := client.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{
		LabelSelector: labels.SelectorFromSet(map[string]string{"app": name}).String(),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && (p.Spec.NodeName != cluster.NodeName || !podReady(&p)) {
			t.Errorf("pod %s on node %q ready=%v, want ready on %s", p.Name, p.Spec.NodeName, podReady(&p), cluster.NodeName)
		}
	}
}

func createPod(t *testing.T, client kubernetes.Interface, ns, name, image string, requests corev1.ResourceList) {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app", Image: image, Resources: corev1.ResourceRequirements{Requests: requests},
		}}},
	}
	if _, err := client.CoreV1().Pods(ns).Create(t.Context(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// wantEvent waits for an event about the pod with the reason and a message containing msg.
func wantEvent(t *testing.T, client kubernetes.Interface, ns, pod, reason, msg string) {
	t.Helper()
	var seen []string
	eventually(t, "event "+reason+" "+msg+" for pod "+pod, 30*time.Second, func(ctx context.Context) (bool, error) {
		evs, err := client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + pod})
		if err != nil {
			return false, err
		}
		seen = seen[:0]
		for _, e := range evs.Items {
			seen = append(seen, e.Reason+": "+e.Message)
			if e.Reason == reason && strings.Contains(e.Message, msg) {
				return true, nil
			}
		}
		return false, nil
	})
	t.Logf("events for pod %s: %q", pod, seen)
}

func podReady(p *corev1.Pod) bool {
	return hasCondition(p, corev1.PodReady, corev1.ConditionTrue, "")
}

func hasCondition(p *corev1.Pod, typ corev1.PodConditionType, status corev1.ConditionStatus, reason string) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == typ {
			return c.Status == status && (reason == "" || c.Reason == reason)
		}
	}
	return false
}

func hasDeploymentCondition(d *appsv1.Deployment, typ appsv1.DeploymentConditionType) bool {
	for _, c := range d.Status.Conditions {
		if c.Type == typ {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// A namespace being deleted, pods and all, is waited for until it is gone.
func TestWaitNamespacesGoneWaitsForATeardown(t *testing.T) {
	client, ns := setup(t)
	createDeployment(t, client, ns, "web", "nginx:1.27")
	waitRolledOut(t, client, ns, "web", "nginx:1.27")
	if err := client.CoreV1().Namespaces().Delete(t.Context(), ns, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	n, err := testCluster.WaitNamespacesGone(ctx)
	if err != nil || n < 1 {
		t.Fatalf("waited for %d namespaces: %v; want at least the one deleted", n, err)
	}
	if _, err := client.CoreV1().Namespaces().Get(t.Context(), ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("namespace %s after the wait: %v, want it gone", ns, err)
	}
}
