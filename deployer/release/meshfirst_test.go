package release

import (
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// denyMeshWrites makes the apiserver refuse every write of a
// VirtualService or DestinationRule in h's namespace (a
// ValidatingAdmissionPolicy, as a cluster's own policy might), and waits
// until it does.
func denyMeshWrites(h *harness) {
	h.t.Helper()
	name := "deny-mesh-" + h.ns
	fail := admissionv1.Fail
	policy := &admissionv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: &fail,
			MatchConstraints: &admissionv1.MatchResources{ResourceRules: []admissionv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionv1.RuleWithOperations{
					Operations: []admissionv1.OperationType{admissionv1.Create, admissionv1.Update},
					Rule: admissionv1.Rule{APIGroups: []string{"networking.istio.io"}, APIVersions: []string{"*"},
						Resources: []string{"virtualservices", "destinationrules"}},
				},
			}}},
			Validations: []admissionv1.Validation{{Expression: "false", Message: "mesh routes are frozen in this namespace"}},
		},
	}
	binding := &admissionv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        name,
			ValidationActions: []admissionv1.ValidationAction{admissionv1.Deny},
			MatchResources: &admissionv1.MatchResources{NamespaceSelector: &metav1.LabelSelector{
				MatchLabels: map[string]string{"kubernetes.io/metadata.name": h.ns}}},
		},
	}
	api := h.tc.Client().AdmissionregistrationV1()
	if _, err := api.ValidatingAdmissionPolicies().Create(h.t.Context(), policy, metav1.CreateOptions{}); err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { _ = api.ValidatingAdmissionPolicies().Delete(h.t.Context(), name, metav1.DeleteOptions{}) })
	if _, err := api.ValidatingAdmissionPolicyBindings().Create(h.t.Context(), binding, metav1.CreateOptions{}); err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() {
		_ = api.ValidatingAdmissionPolicyBindings().Delete(h.t.Context(), name, metav1.DeleteOptions{})
	})
	// The policy is in force once a dry-run write is refused by it.
	dr := h.cluster.Istio.NetworkingV1().DestinationRules(h.ns)
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := dr.Patch(h.t.Context(), "web", types.MergePatchType, []byte(`{"metadata":{"labels":{"probe":"x"}}}`), metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}})
		if apierrors.IsInvalid(err) || apierrors.IsForbidden(err) {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("the policy refusing mesh writes is not in force after 30s (last dry run: %v)", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A canary's routes are split by version before its new version has a
// Deployment: when the apiserver refuses the mesh's write, the step fails
// with no new pod anywhere, rather than with pods that the Service's
// unsplit route would send a share of the requests to.
func TestACanaryWhoseRoutesAreRefusedStartsNoPods(t *testing.T) {
	h := newHarness(t)
	h.initial(Canary, 2)
	denyMeshWrites(h)
	r := canaryV2(h, Stage{Target: 10}, Stage{Target: 100})
	var err error
	for range 3 { // the first step starts the release; Ensure comes after
		if _, err = h.e.Step(t.Context(), r.ID); err != nil {
			break
		}
	}
	if err == nil {
		t.Fatalf("the release stepped with its routes refused; history:\n%s", history(h.get(r.ID)))
	}
	_, getErr := h.tc.Client().AppsV1().Deployments(h.ns).Get(t.Context(), "web-v2-0-0", metav1.GetOptions{})
	if !apierrors.IsNotFound(getErr) {
		t.Fatalf("with the routes refused (%v), web-v2-0-0: %v; want no Deployment", err, getErr)
	}
}
