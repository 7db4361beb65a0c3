package release

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
)

// prune deletes the app's old Deployments at 0 replicas beyond the
// release's revision history, the least recently used first, as a
// Deployment keeps only so many old ReplicaSets. It never deletes a
// version a release still needs (keptVersions: the one serving, those an
// active release uses, those in their scale-down delay) nor one someone
// scaled up again. It is best effort: what fails is logged, and the next
// release's end tries again.
func (s *stepper) prune(ctx context.Context) {
	if err := s.pruneOld(ctx); err != nil && ctx.Err() == nil {
		s.e.log.Warn("release: delete old versions beyond the revision history", "release", s.r.ID, "err", err)
	}
}

func (s *stepper) pruneOld(ctx context.Context) error {
	r := s.r
	all, err := s.e.all(ctx)
	if err != nil {
		return err
	}
	t := targetOf(*r)
	kept := map[string]bool{}
	used := map[string]string{} // Deployment → the last release that moved from or to it
	for _, o := range all {
		if targetOf(o) == t {
			used[versionName(r, o.From)], used[versionName(r, o.To)] = o.ID, o.ID
		}
	}
	for _, v := range keptVersions(all)[t] {
		kept[versionName(r, Revision{Name: v})] = true
	}
	list, err := s.w.versions(ctx, r)
	if err != nil {
		return err
	}
	old := slices.DeleteFunc(list, func(d *appsv1.Deployment) bool {
		_, ours := d.Annotations[AnnotationRelease]
		return !ours || kept[d.Name] || ptr.Deref(d.Spec.Replicas, 1) != 0
	})
	lastUse := func(d *appsv1.Deployment) string { return cmp.Or(used[d.Name], d.Annotations[AnnotationRelease]) }
	slices.SortFunc(old, func(a, b *appsv1.Deployment) int { return cmp.Compare(lastUse(b), lastUse(a)) })
	limit := int(r.revisionHistory())
	if len(old) <= limit {
		return nil
	}
	var errs error
	for _, d := range old[limit:] {
		deleted, err := s.w.deleteAsRead(ctx, r, d)
		if err != nil {
			errs = err
		}
		if !deleted {
			continue
		}
		r.note(EntryCleanup, fmt.Sprintf("deleted Deployment %s: revisionHistory keeps %d old versions at 0 replicas", d.Name, limit))
	}
	if err := s.save(ctx, "prune"); err != nil {
		return err
	}
	return errs
}

// deleteAsRead deletes Deployment d if it is still an old version at 0
// replicas: the preconditions make sure no Deployment recreated, or scaled
// up, since it was read is deleted. When it changed in between (the
// deployment controller writes its status after a scale-down), it is read
// again from the apiserver and deleted if it is still that old version at
// 0. It reports whether it deleted d; one already gone counts as deleted.
func (w *workloads) deleteAsRead(ctx context.Context, r *Release, d *appsv1.Deployment) (bool, error) {
	deploys := w.kube.Kube.AppsV1().Deployments(r.Namespace)
	deleted := false
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		err := deploys.Delete(ctx, d.Name, metav1.DeleteOptions{
			Preconditions:     &metav1.Preconditions{UID: &d.UID, ResourceVersion: &d.ResourceVersion},
			PropagationPolicy: ptr.To(metav1.DeletePropagationBackground),
		})
		if !apierrors.IsConflict(err) {
			deleted = err == nil || apierrors.IsNotFound(err)
			return err
		}
		now, gerr := deploys.Get(ctx, d.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(gerr):
			deleted = true
			return nil
		case gerr != nil:
			return gerr
		case now.UID != d.UID || ptr.Deref(now.Spec.Replicas, 1) != 0 || now.Annotations[AnnotationRelease] == "":
			return nil // recreated, scaled up or taken over since: wanted again
		}
		d = now
		return err
	})
	switch {
	case apierrors.IsNotFound(err):
		return true, nil
	case apierrors.IsConflict(err):
		return false, fmt.Errorf("deployment %s kept changing while being deleted: %w", d.Name, err)
	case err != nil:
		return false, fmt.Errorf("cluster %s: delete deployment %s/%s: %w", w.kube.Name, r.Namespace, d.Name, err)
	}
	return deleted, nil
}
