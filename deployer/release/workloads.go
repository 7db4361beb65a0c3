package release

import (
	"cmp"
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/shipbot/shipbot/deployer/kube"
	"github.com/shipbot/shipbot/templates"
)

// Labels and annotations shipbot sets on release objects.
const (
	// LabelVersion tells the pods of one revision apart; DestinationRule
	// subsets and blue-green Service selectors select on it.
	LabelVersion = "version"
	// AnnotationRelease names the release that last applied an object.
	AnnotationRelease = "shipbot.io/release"
	// LabelApp marks the Deployment of each version with the app's name,
	// whatever the app's own labels are.
	LabelApp = "shipbot.io/app"
)

// workloads applies, scales and reads an app's Deployments and Service.
type workloads struct {
	kube   *kube.Client
	view   *view // reads, from the Scheduler's informers when it runs them
	render Renderer
	// spare are Deployments in their scale-down delay: an ended release
	// scales each down when the delay has passed, so they are no strays.
	spare map[string]bool
}

// rendered is one revision's objects, sorted by the part they play.
type rendered struct {
	deploy, service *unstructured.Unstructured
	others          []*unstructured.Unstructured // ConfigMap, Ingress, ...
}

// renderRev renders rev and finds its workload and the Service in front of
// it, whose names a render of To records on r.
func (w *workloads) renderRev(ctx context.Context, r *Release, rev Revision) (rendered, error) {
	objs, err := w.render.Render(ctx, r, rev)
	if err != nil {
		return rendered{}, err
	}
	var out rendered
	out.deploy, err = templates.Workload(objs)
	if err == nil {
		out.service, err = templates.ServiceOf(objs, out.deploy)
	}
	if err != nil {
		return rendered{}, fmt.Errorf("render %s %s: %w: %w", r.App, rev.Name, ErrInvalid, err)
	}
	for _, o := range objs {
		if o != out.deploy && o != out.service {
			out.others = append(out.others, o)
		}
	}
	if rev == r.To {
		r.Workload, r.Service = out.deploy.GetName(), out.service.GetName()
	}
	return out, nil
}

// versionName is the Deployment of one revision in the strategies that run
// versions side by side.
func versionName(r *Release, rev Revision) string { return r.App + "-" + rev.Name }

// workloadName is the app's own Deployment, which rolling updates.
func (r *Release) workloadName() string { return cmp.Or(r.Workload, r.App) }

// serviceName is the Service in front of the app's pods.
func (r *Release) serviceName() string { return cmp.Or(r.Service, r.App) }

// applyVersion server-side applies rev's own Deployment, app-<rev>, whose
// selector and pods carry version=<rev>, at the given size.
func (w *workloads) applyVersion(ctx context.Context, r *Release, rev Revision, replicas int32) error {
	objs, err := w.renderRev(ctx, r, rev)
	if err != nil {
		return err
	}
	d := objs.deploy
	d.SetName(versionName(r, rev))
	setLabel(d, rev.Name, "metadata", "labels")
	l := d.GetLabels()
	l[LabelApp] = r.App // setLabel made the map
	d.SetLabels(l)
	setLabel(d, rev.Name, "spec", "selector", "matchLabels")
	setLabel(d, rev.Name, "spec", "template", "metadata", "labels")
	setReplicas(d, replicas)
	annotate(d, r)
	return w.apply(ctx, d)
}

// applyPlain server-side applies rev as the app's single Deployment, under
// the name it renders with, so that its image change is a rolling update.
func (w *workloads) applyPlain(ctx context.Context, r *Release, rev Revision) error {
	objs, err := w.renderRev(ctx, r, rev)
	if err != nil {
		return err
	}
	setLabel(objs.deploy, rev.Name, "spec", "template", "metadata", "labels")
	setReplicas(objs.deploy, r.Replicas)
	annotate(objs.deploy, r)
	return w.apply(ctx, objs.deploy)
}

// applyShared applies the Service and the other objects To renders. With a
// version, the Service selects only that version's pods (blue-green);
// without, it selects every version of the app.
func (w *workloads) applyShared(ctx context.Context, r *Release, version string) error {
	objs, err := w.renderRev(ctx, r, r.To)
	if err != nil {
		return err
	}
	if version != "" {
		setLabel(objs.service, version, "spec", "selector")
	}
	annotate(objs.service, r)
	return w.apply(ctx, append([]*unstructured.Unstructured{objs.service}, objs.others...)...)
}

func setLabel(obj *unstructured.Unstructured, version string, path ...string) {
	m, _, _ := unstructured.NestedStringMap(obj.Object, path...)
	if m == nil {
		m = map[string]string{}
	}
	m[LabelVersion] = version
	_ = unstructured.SetNestedStringMap(obj.Object, m, path...) // path holds maps only
}

func setReplicas(obj *unstructured.Unstructured, n int32) {
	_ = unstructured.SetNestedField(obj.Object, int64(n), "spec", "replicas") // spec is a map
}

func annotate(obj *unstructured.Unstructured, r *Release) {
	a := obj.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	a[AnnotationRelease] = r.ID
	obj.SetAnnotations(a)
}

// scale sets a Deployment's replicas, leaving every other field as the
// release that applied it left it. A missing Deployment counts as scaled
// to 0. The patch carries no resourceVersion: replicas is the one field it
// sets, so it needs no read first and cannot conflict.
func (w *workloads) scale(ctx context.Context, r *Release, name string, replicas int32) error {
	d, err := w.view.deployment(ctx, name)
	if apierrors.IsNotFound(err) && replicas == 0 {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cluster %s: read deployment %s/%s: %w", w.kube.Name, r.Namespace, name, err)
	}
	if ptr.Deref(d.Spec.Replicas, 1) == replicas {
		return nil
	}
	patch := fmt.Appendf(nil, `{"spec":{"replicas":%d}}`, replicas)
	out, err := w.kube.Kube.AppsV1().Deployments(r.Namespace).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: kube.FieldManager})
	if apierrors.IsNotFound(err) && replicas == 0 {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cluster %s: scale %s/%s to %d: %w", w.kube.Name, r.Namespace, name, replicas, err)
	}
	w.view.wrote(ctx, kindDeployment, out)
	return nil
}

// deployState is what a release needs to know of one Deployment.
type deployState struct {
	name      string
	found     bool
	spec      int32 // desired replicas
	pods      int32 // pods of any revision of this Deployment
	available int32 // available pods of the newest revision
	done      bool  // rolled out: every pod is of the newest revision and available
	failure   string
}

// String says how far the Deployment is, e.g. "web-v2: 3/10 available".
func (s deployState) String() string {
	if !s.found {
		return s.name + ": not created yet"
	}
	return fmt.Sprintf("%s: %d/%d available", s.name, s.available, s.spec)
}

func (w *workloads) state(ctx context.Context, r *Release, name string) (deployState, error) {
	d, err := w.view.deployment(ctx, name)
	if apierrors.IsNotFound(err) {
		return deployState{name: name}, nil
	}
	if err != nil {
		return deployState{}, fmt.Errorf("cluster %s: read deployment %s/%s: %w", w.kube.Name, r.Namespace, name, err)
	}
	return stateOf(d), nil
}

// stateOf judges a Deployment as `kubectl rollout status` does.
func stateOf(d *appsv1.Deployment) deployState {
	s := deployState{name: d.Name, found: true, spec: 1, pods: d.Status.Replicas}
	if d.Spec.Replicas != nil {
		s.spec = *d.Spec.Replicas
	}
	if d.Generation > d.Status.ObservedGeneration {
		return s // the controller has not seen the latest spec: its status is stale
	}
	s.available = min(d.Status.UpdatedReplicas, d.Status.AvailableReplicas)
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Reason == "ProgressDeadlineExceeded" {
			s.failure = "progress deadline exceeded"
		}
		if c.Type == appsv1.DeploymentReplicaFailure && c.Status == corev1.ConditionTrue {
			s.failure = c.Reason + ": " + c.Message
		}
	}
	st := d.Status
	s.done = st.UpdatedReplicas >= s.spec && st.Replicas == st.UpdatedReplicas && st.AvailableReplicas >= s.spec
	return s
}

// diagnose explains why a Deployment's pods are not available.
func (w *workloads) diagnose(ctx context.Context, r *Release, name string) []string {
	d, err := w.view.deployment(ctx, name)
	if err != nil {
		return []string{"cannot read deployment " + name + ": " + err.Error()}
	}
	return w.kube.Diagnose(ctx, d)
}

// readiness turns a Deployment's state into a Readiness.
func readiness(s deployState) Readiness {
	if s.done {
		return Readiness{Done: true}
	}
	return Readiness{Waiting: s.String(), Stuck: s.name, Failure: s.failure}
}

// scaleUp raises a Deployment to at least replicas; it never lowers it. A
// missing Deployment cannot be brought back by scaling, so that is invalid.
func (w *workloads) scaleUp(ctx context.Context, r *Release, name string, replicas int32) error {
	s, err := w.state(ctx, r, name)
	if err != nil {
		return err
	}
	if !s.found {
		return fmt.Errorf("deployment %s/%s: %w: it does not exist", r.Namespace, name, ErrInvalid)
	}
	if s.spec >= replicas {
		return nil
	}
	return w.scale(ctx, r, name, replicas)
}

// settle leaves keep as the only running version: keep scaled up to the
// release's size and available first, then gone scaled to 0 and its pods
// gone, so that availability never dips.
func (w *workloads) settle(ctx context.Context, r *Release, keep, gone string) (bool, error) {
	if err := w.scaleUp(ctx, r, keep, r.Replicas); err != nil {
		return false, err
	}
	if s, err := w.state(ctx, r, keep); err != nil || !s.done {
		return false, err
	}
	if gone != "" {
		if done, err := w.drain(ctx, r, gone); err != nil || !done {
			return false, err
		}
	}
	return true, w.scaleStrays(ctx, r, keep)
}

// goneNow is the Deployment of gone that settle scales to 0 now: "" when
// there is none, or when it is spare, in its scale-down delay.
func (w *workloads) goneNow(r *Release, gone Revision) string {
	if gone.IsZero() || w.spare[versionName(r, gone)] {
		return ""
	}
	return versionName(r, gone)
}

// drainRev drains gone's Deployment, if there is a gone.
func (w *workloads) drainRev(ctx context.Context, r *Release, gone Revision) (bool, error) {
	if gone.IsZero() {
		return true, nil
	}
	return w.drain(ctx, r, versionName(r, gone))
}

// drain scales a Deployment to 0 and reports whether its pods are gone.
func (w *workloads) drain(ctx context.Context, r *Release, name string) (bool, error) {
	if err := w.scale(ctx, r, name, 0); err != nil {
		return false, err
	}
	g, err := w.state(ctx, r, name)
	return err == nil && g.pods == 0, err
}

// scaleStrays scales to 0 every other version of the app that a release
// left running: one aborted half-way, or a first release superseded before
// it finished. Once a release ends, only the version it leaves serving, and
// those in their scale-down delay, keep endpoints behind the app's Service.
func (w *workloads) scaleStrays(ctx context.Context, r *Release, keep string) error {
	list, err := w.versions(ctx, r)
	if err != nil {
		return err
	}
	for _, d := range list {
		_, ours := d.Annotations[AnnotationRelease]
		if d.Name == keep || w.spare[d.Name] || !ours || d.Spec.Replicas == nil || *d.Spec.Replicas == 0 {
			continue
		}
		if err := w.scale(ctx, r, d.Name, 0); err != nil {
			return err
		}
	}
	return nil
}

// versions lists the app's Deployments of one version each.
func (w *workloads) versions(ctx context.Context, r *Release) ([]*appsv1.Deployment, error) {
	p := r.Params
	p.App = r.App
	builtin := labels.SelectorFromSet(p.SelectorLabels()) // versions applied before LabelApp
	versioned, err := labels.NewRequirement(LabelVersion, selection.Exists, nil)
	if err != nil {
		return nil, err
	}
	list, err := w.view.deployments(ctx, labels.NewSelector().Add(*versioned))
	if err != nil {
		return nil, fmt.Errorf("cluster %s: list deployments of %s in %s: %w", w.kube.Name, r.App, r.Namespace, err)
	}
	var out []*appsv1.Deployment
	for _, d := range list {
		if d.Labels[LabelApp] == r.App || builtin.Matches(labels.Set(d.Labels)) {
			out = append(out, d)
		}
	}
	return out, nil
}
