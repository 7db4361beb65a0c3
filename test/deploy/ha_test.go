package deploy

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/shipbot/shipbot/deployer/config"
)

// buildHA builds deploy/ with the ha Component, as docs/DEPLOY.md tells
// users to: from a kustomization of their own outside deploy/.
func buildHA(t *testing.T) []manifest {
	t.Helper()
	dir := t.TempDir()
	abs, err := filepath.Abs(deployDir)
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(dir, abs)
	if err != nil {
		t.Fatal(err)
	}
	k := "resources: [" + rel + "]\ncomponents: [" + filepath.Join(rel, "ha") + "]\n"
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build with deploy/ha: %v", err)
	}
	b, err := res.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	return decodeManifests(t, "deploy/ha", b)
}

// The HA variant runs three replicas that roll, spread and stay two at a
// time, each with its working copy in an emptyDir and its address for the
// others, on a config that differs from deploy/'s only in the store and
// the webhook inbox; the apiserver admits all of it.
func TestHAVariant(t *testing.T) {
	ms := buildHA(t)
	d, _ := find[appsv1.Deployment](t, ms, "Deployment", "shipbot")
	if *d.Spec.Replicas != 3 || d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType {
		t.Errorf("deployment: %d replicas, strategy %s; want 3, RollingUpdate", *d.Spec.Replicas, d.Spec.Strategy.Type)
	}
	if a := d.Spec.Template.Spec.Affinity; a == nil || a.PodAntiAffinity == nil {
		t.Error("deployment: no pod anti-affinity")
	}
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == "data" && (v.EmptyDir == nil || v.PersistentVolumeClaim != nil) {
			t.Errorf("volume data: %+v, want an emptyDir", v.VolumeSource)
		}
	}
	if !slices.ContainsFunc(d.Spec.Template.Spec.Containers[0].Env, func(e corev1.EnvVar) bool {
		return e.Name == "SHIPBOT_POD_IP" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "status.podIP"
	}) {
		t.Error("no SHIPBOT_POD_IP from status.podIP: followers could not reach the leader")
	}
	pdb, _ := find[policyv1.PodDisruptionBudget](t, ms, "PodDisruptionBudget", "shipbot")
	if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 {
		t.Errorf("pod disruption budget: maxUnavailable %v, want 1", pdb.Spec.MaxUnavailable)
	}
	for _, m := range ms {
		if m.obj.GetKind() == "PersistentVolumeClaim" {
			t.Errorf("%s: the HA variant keeps no claim", m)
		}
	}

	cm, _ := find[corev1.ConfigMap](t, ms, "ConfigMap", "shipbot-config")
	_, vars := shipbotYAML(t)
	for _, v := range vars {
		t.Setenv(v, "test-value-of-"+v)
	}
	ha, err := config.Parse("deploy/ha/configmap.yaml (shipbot.yaml)", []byte(cm.Data["shipbot.yaml"]))
	if err != nil {
		t.Fatalf("the HA shipbot.yaml does not load:\n%v", err)
	}
	if ha.Store.Backend != config.BackendKubernetes || ha.Webhook.Inbox == nil || ha.Webhook.Inbox.Namespace != namespace {
		t.Errorf("HA config: store %+v, webhook %+v; want backend kubernetes and the inbox in %s", ha.Store, ha.Webhook, namespace)
	}
	base := loadShipbotYAML(t)
	same := *ha
	same.Store.Backend, same.Webhook = base.Store.Backend, base.Webhook
	if !same.SameAs(base) {
		t.Error("deploy/ha/configmap.yaml's shipbot.yaml differs from deploy/configmap.yaml's in more than store.backend and webhook; change both together")
	}

	install(t)
	if err := applyEach(t.Context(), ms, true); err != nil {
		t.Errorf("the apiserver refuses the HA variant (server-side dry run): %v", err)
	}
}

// With the HA Role, shipbot's ServiceAccount may elect a leader and keep
// the store's journal and records in its namespace, and no more.
func TestHAServiceAccountAccess(t *testing.T) {
	install(t)
	var role []manifest
	for _, m := range buildHA(t) {
		if m.obj.GetName() == "shipbot-ha" {
			role = append(role, m)
		}
	}
	if len(role) != 2 {
		t.Fatalf("the HA variant has %d objects named shipbot-ha, want its Role and RoleBinding", len(role))
	}
	if err := applyEach(t.Context(), role, false); err != nil {
		t.Fatal(err)
	}
	type check struct {
		a     access
		allow bool
	}
	var kinds []check // Records, and the records of a bucket with a kind of its own
	for _, r := range []string{"records", "deployments", "previews", "releases", "notes"} {
		kinds = append(kinds,
			check{access{verb: "patch", group: "shipbot.io", resource: r, ns: namespace, why: "kubestore.Compact applies"}, true},
			check{access{verb: "create", group: "shipbot.io", resource: r, ns: namespace, why: "kubestore.Compact applies a new one"}, true},
			check{access{verb: "list", group: "shipbot.io", resource: r, ns: namespace, why: "kubestore.Load"}, true},
			check{access{verb: "delete", group: "shipbot.io", resource: r, ns: namespace, why: "kubestore.Compact folds a delete"}, true},
			check{access{verb: "patch", group: "shipbot.io", resource: r, ns: envNS, why: "the store lives in shipbot's namespace only"}, false},
			check{access{verb: "update", group: "shipbot.io", resource: r, ns: namespace, why: "the compactor applies, it never updates"}, false},
			check{access{verb: "get", group: "shipbot.io", resource: r, ns: namespace, why: "the store lists, it never gets one"}, false})
	}
	for _, c := range append(kinds, []check{
		{access{verb: "get", group: "coordination.k8s.io", resource: "leases", ns: namespace, why: "leader election"}, true},
		{access{verb: "create", group: "coordination.k8s.io", resource: "leases", ns: namespace, why: "leader election"}, true},
		{access{verb: "update", group: "coordination.k8s.io", resource: "leases", ns: namespace, why: "leader election"}, true},
		{access{verb: "create", group: "shipbot.io", resource: "journals", ns: namespace, why: "kubestore.Journal.Record"}, true},
		{access{verb: "list", group: "shipbot.io", resource: "journals", ns: namespace, why: "kubestore.Load"}, true},
		{access{verb: "delete", group: "shipbot.io", resource: "journals", ns: namespace, why: "kubestore.Compact"}, true},
		{access{verb: "create", group: "shipbot.io", resource: "blobs", ns: namespace, why: "kubestore: a value too big for its Journal or Record"}, true},
		{access{verb: "get", group: "shipbot.io", resource: "blobs", ns: namespace, why: "kubestore.Load reads a big value back"}, true},
		{access{verb: "list", group: "shipbot.io", resource: "blobs", ns: namespace, why: "kubestore.Compact finds the unused ones"}, true},
		{access{verb: "delete", group: "shipbot.io", resource: "blobs", ns: namespace, why: "kubestore.Compact deletes the unused ones"}, true},
		{access{verb: "update", group: "shipbot.io", resource: "blobs", ns: namespace, why: "a blob is named by its content and written once"}, false},
		{access{verb: "delete", group: "coordination.k8s.io", resource: "leases", ns: namespace, why: "the lease is released by update, never deleted"}, false},
		{access{verb: "update", group: "coordination.k8s.io", resource: "leases", ns: "kube-system", why: "other components' leader elections"}, false},
		{access{verb: "create", group: "shipbot.io", resource: "journals", ns: envNS, why: "the store lives in shipbot's namespace only"}, false},
		{access{verb: "update", group: "shipbot.io", resource: "journals", ns: namespace, why: "a journal is written once"}, false},
	}...) {
		t.Run(c.a.String(), func(t *testing.T) {
			allowed, reason := review(t, c.a)
			if allowed != c.allow {
				t.Errorf("%s may %s: %v, want %v: %s (%s)", saUser, c.a, allowed, c.allow, c.a.why, reason)
			}
		})
	}
}
