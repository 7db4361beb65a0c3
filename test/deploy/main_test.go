// Package deploy tests the manifests in deploy/: that a real apiserver
// accepts them and runs the pod, that the config they carry loads, and that
// the ServiceAccount may do exactly what shipbot does, proven both by
// SubjectAccessReviews and by running shipbot's own cluster code with the
// ServiceAccount's token.
package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"

	"github.com/shipbot/shipbot/test/cluster"
)

var kc *cluster.Cluster

// Istio: the ServiceAccount's VirtualService and DestinationRule rules are
// exercised by a real canary release.
func TestMain(m *testing.M) { cluster.Main(m, cluster.Options{Istio: true}, &kc) }

// deployDir is the repository's deploy/ folder, relative to this package.
const deployDir = "../../deploy"

// Names the manifests use and the tests look up.
const (
	namespace      = "shipbot"
	serviceAccount = "shipbot"
	saUser         = "system:serviceaccount:" + namespace + ":" + serviceAccount
)

// optionalFiles are applied too, though kustomization.yaml leaves them out:
// the apiserver must accept them, and the pod needs the Secret to start.
var optionalFiles = []string{"secret.example.yaml", "ingress.yaml", "intake.yaml"}

// kustomization is the part of kustomization.yaml this package understands.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Resources  []string `json:"resources"`
}

// kustomizeResources lists the files deploy/kustomization.yaml names, failing
// on any key the test would silently ignore, such as images or patches.
func kustomizeResources(t testing.TB) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(deployDir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k kustomization
	if err := yaml.UnmarshalStrict(b, &k); err != nil {
		t.Fatalf("deploy/kustomization.yaml: %v (this test applies only `resources`; teach it any transformer you add)", err)
	}
	if len(k.Resources) == 0 {
		t.Fatal("deploy/kustomization.yaml lists no resources")
	}
	return k.Resources
}

// manifest is one object and the file it came from.
type manifest struct {
	file string
	obj  *unstructured.Unstructured
}

func (m manifest) String() string {
	id := m.obj.GetKind() + " " + m.obj.GetName()
	if ns := m.obj.GetNamespace(); ns != "" {
		id = m.obj.GetKind() + " " + ns + "/" + m.obj.GetName()
	}
	return id + " (" + m.file + ")"
}

// readManifests decodes every object of the given files in deploy/, in order.
func readManifests(t testing.TB, files ...string) []manifest {
	t.Helper()
	var out []manifest
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(deployDir, f))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, decodeManifests(t, f, b)...)
	}
	return out
}

// decodeManifests decodes the objects of one YAML stream.
func decodeManifests(t testing.TB, file string, b []byte) []manifest {
	t.Helper()
	var out []manifest
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	for {
		var obj map[string]any
		err := dec.Decode(&obj)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if len(obj) > 0 {
			out = append(out, manifest{file: file, obj: &unstructured.Unstructured{Object: obj}})
		}
	}
}

// find returns the one object of a kind and name, converted to a typed value.
func find[T any](t testing.TB, ms []manifest, kind, name string) (*T, manifest) {
	t.Helper()
	for _, m := range ms {
		if m.obj.GetKind() == kind && m.obj.GetName() == name {
			out := new(T)
			if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(m.obj.Object, out, true); err != nil {
				t.Fatalf("%s: %v", m, err)
			}
			return out, m
		}
	}
	t.Fatalf("no %s %q in deploy/", kind, name)
	return nil, manifest{}
}

// installed applies the manifests once per test binary; every test that
// needs them installed calls it, in any order.
var installed struct {
	once  sync.Once
	start time.Time
	took  time.Duration
	err   error
}

func install(t *testing.T) {
	t.Helper()
	cluster.Require(t, kc)
	// Read before Once: a t.Fatal inside it would leave it done without an error.
	ms := readManifests(t, append(kustomizeResources(t), optionalFiles...)...)
	pvc, _ := find[corev1.PersistentVolumeClaim](t, ms, "PersistentVolumeClaim", "shipbot-data")
	installed.once.Do(func() {
		installed.start = time.Now()
		installed.err = installAll(ms, pvc)
		installed.took = time.Since(installed.start)
	})
	if installed.err != nil {
		t.Fatalf("install deploy/: %v", installed.err)
	}
}

// installAll server-side applies kustomization.yaml's resources and the
// optional files as the cluster admin, and gives the PersistentVolumeClaim a
// volume to bind to: the test cluster has no storage provisioner.
func installAll(ms []manifest, pvc *corev1.PersistentVolumeClaim) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := applyAll(ctx, ms); err != nil {
		return err
	}
	return provideVolume(ctx, pvc)
}

func applyAll(ctx context.Context, ms []manifest) error {
	return applyEach(ctx, ms, false)
}

// applyEach server-side applies ms in order; with dryRun the apiserver
// validates and admits each without storing it.
func applyEach(ctx context.Context, ms []manifest, dryRun bool) error {
	dyn, err := dynamic.NewForConfig(kc.RESTConfig())
	if err != nil {
		return err
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(kc.Client().Discovery()))
	for _, m := range ms {
		gvk := m.obj.GroupVersionKind()
		mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			return fmt.Errorf("%s: %w", m, err)
		}
		var ri dynamic.ResourceInterface = dyn.Resource(mapping.Resource)
		if ns := m.obj.GetNamespace(); ns != "" {
			ri = dyn.Resource(mapping.Resource).Namespace(ns)
		}
		opts := metav1.ApplyOptions{FieldManager: "shipbot-deploy-test", Force: true}
		if dryRun {
			opts.DryRun = []string{metav1.DryRunAll}
		}
		if _, err := ri.Apply(ctx, m.obj.GetName(), m.obj, opts); err != nil {
			return fmt.Errorf("apply %s: %w", m, err)
		}
	}
	return nil
}

// provideVolume creates a hostPath PersistentVolume and binds the claim of
// pvc.yaml to it the way the persistentvolume-binder controller would: the
// test cluster runs neither that controller nor a storage provisioner.
func provideVolume(ctx context.Context, want *corev1.PersistentVolumeClaim) error {
	pvcs := kc.Client().CoreV1().PersistentVolumeClaims(want.Namespace)
	pvc, err := pvcs.Get(ctx, want.Name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("read claim %s/%s: %w", want.Namespace, want.Name, err)
	}
	if pvc.Status.Phase == corev1.ClaimBound {
		return nil
	}
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "shipbot-deploy-test"},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:    corev1.ResourceList{corev1.ResourceStorage: *pvc.Spec.Resources.Requests.Storage()},
			AccessModes: pvc.Spec.AccessModes,
			ClaimRef:    &corev1.ObjectReference{Kind: "PersistentVolumeClaim", Namespace: pvc.Namespace, Name: pvc.Name, UID: pvc.UID},
			PersistentVolumeSource: corev1.PersistentVolumeSource{
				HostPath: &corev1.HostPathVolumeSource{Path: filepath.Join(kc.Dir(), "shipbot-data")},
			},
		},
	}
	pvs := kc.Client().CoreV1().PersistentVolumes()
	if pv, err = pvs.Create(ctx, pv, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create the volume for %s/%s: %w", pvc.Namespace, pvc.Name, err)
	}
	pv.Status.Phase = corev1.VolumeBound
	if _, err := pvs.UpdateStatus(ctx, pv, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("bind volume %s: %w", pv.Name, err)
	}
	pvc.Spec.VolumeName = pv.Name
	metav1.SetMetaDataAnnotation(&pvc.ObjectMeta, "pv.kubernetes.io/bind-completed", "yes")
	if pvc, err = pvcs.Update(ctx, pvc, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("bind claim %s: %w", pvc.Name, err)
	}
	pvc.Status = corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound, AccessModes: pv.Spec.AccessModes, Capacity: pv.Spec.Capacity}
	if _, err := pvcs.UpdateStatus(ctx, pvc, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("bind claim %s: %w", pvc.Name, err)
	}
	return nil
}

// waitAvailable waits for a Deployment's Available condition and explains,
// from the namespace's events and the pods, why it is not.
func waitAvailable(t *testing.T, ns, name string, within time.Duration) *appsv1.Deployment {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		d, err := kc.Client().AppsV1().Deployments(ns).Get(t.Context(), name, metav1.GetOptions{})
		if err == nil && available(d) {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("deployment %s/%s not available after %s (read error: %v):\n%s", ns, name, within, err, describe(t, ns))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func available(d *appsv1.Deployment) bool {
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentAvailable {
			return c.Status == corev1.ConditionTrue && d.Status.ObservedGeneration >= d.Generation
		}
	}
	return false
}

// describe summarises a namespace for a failure message: claims, pods and events.
func describe(t *testing.T, ns string) string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 10*time.Second)
	defer cancel()
	var b strings.Builder
	if pvcs, err := kc.Client().CoreV1().PersistentVolumeClaims(ns).List(ctx, metav1.ListOptions{}); err == nil {
		for _, p := range pvcs.Items {
			fmt.Fprintf(&b, "  claim %s: %s\n", p.Name, p.Status.Phase)
		}
	}
	if pods, err := kc.Client().CoreV1().Pods(ns).List(ctx, metav1.ListOptions{}); err == nil {
		for _, p := range pods.Items {
			fmt.Fprintf(&b, "  pod %s: %s %s\n", p.Name, p.Status.Phase, p.Status.Message)
		}
	}
	if evs, err := kc.Client().CoreV1().Events(ns).List(ctx, metav1.ListOptions{}); err == nil {
		for _, e := range evs.Items {
			fmt.Fprintf(&b, "  event %s %s/%s %s: %s\n", e.Type, e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Reason, e.Message)
		}
	}
	return b.String()
}
