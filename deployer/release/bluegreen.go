package release

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// blueGreen runs To at full size next to From, then flips the Service's
// version selector to To in one step. From keeps running until the release
// is finalized, so a rollback is the same flip back.
type blueGreen struct{ w *workloads }

var _ Driver = (*blueGreen)(nil)

// Ensure applies To at full size and the Service, keeping whichever version
// it selects now: only SetTarget and Rollback flip it.
func (b *blueGreen) Ensure(ctx context.Context, r *Release) error {
	if err := b.w.applyVersion(ctx, r, r.To, r.Replicas); err != nil {
		return err
	}
	served, err := b.served(ctx, r)
	if err != nil {
		return err
	}
	return b.w.applyShared(ctx, r, served)
}

// served is the version the Service selects, From if it selects none yet.
func (b *blueGreen) served(ctx context.Context, r *Release) (string, error) {
	svc, err := b.w.kube.Kube.CoreV1().Services(r.Namespace).Get(ctx, r.serviceName(), metav1.GetOptions{})
	if err == nil && svc.Spec.Selector[LabelVersion] != "" {
		return svc.Spec.Selector[LabelVersion], nil
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return "", fmt.Errorf("cluster %s: read service %s/%s: %w", b.w.kube.Name, r.Namespace, r.serviceName(), err)
	}
	if r.From.IsZero() {
		return r.To.Name, nil
	}
	return r.From.Name, nil
}

// SetTarget flips the Service to To once all of To's pods are available.
func (b *blueGreen) SetTarget(ctx context.Context, r *Release, _ int) error {
	s, err := b.w.state(ctx, r, versionName(r, r.To))
	if err != nil || !s.done {
		return err
	}
	return b.w.applyShared(ctx, r, r.To.Name)
}

// Ready reports To available and selected by the Service.
func (b *blueGreen) Ready(ctx context.Context, r *Release, _ int) (Readiness, error) {
	s, err := b.w.state(ctx, r, versionName(r, r.To))
	if err != nil || !s.done {
		return readiness(s), err
	}
	served, err := b.served(ctx, r)
	if err != nil {
		return Readiness{}, err
	}
	if served != r.To.Name {
		return Readiness{Waiting: "service selects " + served}, nil
	}
	return Readiness{Done: true}, nil
}

// Finalize scales From to 0, or leaves it to ScaleDown after the delay.
func (b *blueGreen) Finalize(ctx context.Context, r *Release) (bool, error) {
	return b.w.settle(ctx, r, versionName(r, r.To), b.w.goneNow(r, r.From))
}

// Rollback makes sure From runs at full size, flips the Service back to it
// and scales To to 0, or leaves that to ScaleDown after the delay.
func (b *blueGreen) Rollback(ctx context.Context, r *Release) (bool, error) {
	from := versionName(r, r.From)
	if err := b.w.scaleUp(ctx, r, from, r.Replicas); err != nil {
		return false, err
	}
	if s, err := b.w.state(ctx, r, from); err != nil || !s.done {
		return false, err
	}
	if err := b.w.applyShared(ctx, r, r.From.Name); err != nil {
		return false, err
	}
	return b.w.settle(ctx, r, from, b.w.goneNow(r, r.To))
}

// ScaleDown scales gone to 0; the Service selects the other version already.
func (b *blueGreen) ScaleDown(ctx context.Context, r *Release, gone, _ Revision) (bool, error) {
	return b.w.drainRev(ctx, r, gone)
}
