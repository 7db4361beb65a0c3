package release

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
)

// Rollout names the Deployment whose pods a waiting release needs available.
type Rollout struct {
	Cluster    string
	Namespace  string
	Deployment string
}

// AwaitRollout watches a Deployment until it is rolled out, as Ready judges
// it, and reports true; it reports false if ctx ends first. A runner uses it
// to step a release as soon as its pods are available, as a controller's
// informer would, rather than up to a poll later.
func (e *Stepper) AwaitRollout(ctx context.Context, p Rollout) (bool, error) {
	c, err := e.clusters.Cluster(ctx, p.Cluster)
	if err != nil {
		return false, err
	}
	// Without a resourceVersion the watch starts with the Deployment as it
	// is now, so a rollout that finished since the step is not missed.
	w, err := c.Kube.Kube.AppsV1().Deployments(p.Namespace).Watch(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("metadata.name", p.Deployment).String(),
	})
	if err != nil {
		return false, fmt.Errorf("cluster %s: watch deployment %s/%s: %w", p.Cluster, p.Namespace, p.Deployment, err)
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return false, nil
		case ev, ok := <-w.ResultChan():
			if !ok {
				return false, nil
			}
			if d, isDeploy := ev.Object.(*appsv1.Deployment); isDeploy && ev.Type != watch.Deleted && stateOf(d).done {
				return true, nil
			}
		}
	}
}
