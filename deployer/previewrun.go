package deployer

import (
	"context"
	"errors"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/shipbot/shipbot/deployer/config"
	"github.com/shipbot/shipbot/deployer/kube"
	"github.com/shipbot/shipbot/deployer/store"
)

// namespaceGone bounds the wait for a deleted preview namespace to disappear.
const namespaceGone = 3 * time.Minute

// previewCurrent re-reads a preview deployment's record: a deployment runs
// only while its preview is wanted and its sha is still the merge request's
// head, so an older pipeline can never overwrite a newer deploy.
func (e *DeployRunner) previewCurrent(d store.Deployment) (store.Preview, string) {
	rec, err := e.store.Preview(d.Preview)
	switch {
	case err != nil:
		return rec, "preview record: " + err.Error()
	case !rec.Wanted:
		return rec, "the preview was stopped (" + rec.StopReason + ")"
	case rec.HeadSHA != d.SHA:
		return rec, "the merge request's head moved on to " + short(rec.HeadSHA)
	}
	return rec, ""
}

// setPreview updates a preview's status when the deployment is still its
// current one, and reports the event. It says whether it did.
func (e *DeployRunner) setPreview(ctx context.Context, d store.Deployment, reason Reason, f func(*store.Preview) error) bool {
	rec, err := e.store.UpdatePreview(d.Preview, func(p *store.Preview) error {
		if !p.Wanted || p.HeadSHA != d.SHA {
			return errStale
		}
		p.Updated = e.now()
		return f(p)
	})
	if err != nil {
		if err != errStale {
			e.log.Error("update preview", "preview", d.Preview, "err", err)
		}
		return false
	}
	e.emit(ctx, Event{Reason: reason, Deployment: d, Preview: &rec, Message: rec.Reason})
	return true
}

// stalePreview ends a preview deploy that is no longer the preview's
// current one. A preview left "deploying" by it waits for the new head's
// pipeline instead; a stopped one is the teardown's to finish.
func (e *DeployRunner) stalePreview(ctx context.Context, d store.Deployment) {
	var why string
	rec, err := e.store.UpdatePreview(d.Preview, func(p *store.Preview) error {
		why = "the preview was stopped (" + p.StopReason + ")"
		if p.Wanted {
			why = "the merge request's head moved on to " + short(p.HeadSHA)
			if p.Status == store.PreviewDeploying {
				p.Reason, p.Updated = why, e.now()
				return p.Transition(store.PreviewWaiting)
			}
		}
		return nil
	})
	if err != nil {
		e.log.Error("update preview", "preview", d.Preview, "err", err)
		return
	}
	e.emit(ctx, Event{Reason: ReasonPreviewStale, Deployment: d, Preview: &rec, Message: why})
}

// errStale marks work for a preview deploy that is no longer current.
var errStale = errors.New("superseded")

// previewParams are an app's preview-environment parameters plus what makes
// them the MR's own: one replica and a host of its own.
func (e *DeployRunner) previewParams(app config.App, p config.Params, iid int64) config.Params {
	one := int32(1)
	p.Replicas = &one
	p.Host = PreviewHost(app.Name, iid, e.cfg.Load().Previews.Domain)
	return p
}

// ensurePreviewNamespace creates or updates the namespace with its labels,
// quota and limit range.
func (e *DeployRunner) ensurePreviewNamespace(ctx context.Context, rec store.Preview) error {
	pc := e.cfg.Load().Previews
	spec, err := namespaceSpec(rec, pc)
	if err != nil {
		return err
	}
	return e.clusters[rec.Cluster].ApplyNamespace(ctx, spec)
}

func namespaceSpec(rec store.Preview, pc config.Previews) (kube.NamespaceSpec, error) {
	quota, err := kube.ResourceList(map[corev1.ResourceName]string{
		corev1.ResourceRequestsCPU: pc.Quota.CPU, corev1.ResourceRequestsMemory: pc.Quota.Memory, corev1.ResourcePods: pc.Quota.Pods,
	})
	if err != nil {
		return kube.NamespaceSpec{}, err
	}
	def, err := kube.ResourceList(map[corev1.ResourceName]string{corev1.ResourceCPU: pc.Limits.DefaultCPU, corev1.ResourceMemory: pc.Limits.DefaultMemory})
	if err != nil {
		return kube.NamespaceSpec{}, err
	}
	req, err := kube.ResourceList(map[corev1.ResourceName]string{corev1.ResourceCPU: pc.Limits.DefaultCPURequest, corev1.ResourceMemory: pc.Limits.DefaultMemoryRequest})
	if err != nil {
		return kube.NamespaceSpec{}, err
	}
	ceiling, err := kube.ResourceList(map[corev1.ResourceName]string{corev1.ResourceCPU: pc.Limits.MaxCPU, corev1.ResourceMemory: pc.Limits.MaxMemory})
	if err != nil {
		return kube.NamespaceSpec{}, err
	}
	return kube.NamespaceSpec{
		Name:   rec.Namespace,
		Labels: previewLabels(rec),
		Owner:  previewOwner(rec),
		Annotations: map[string]string{
			"shipbot.io/project-path": rec.Project, "shipbot.io/source-branch": rec.SourceBranch, "shipbot.io/merge-request": rec.WebURL,
		},
		Quota: quota, Default: def, DefaultReq: req, Max: ceiling,
	}, nil
}

// sweepPreviews removes what should not be there: previews marked for
// removal, idle ones past their TTL, and labelled namespaces with no wanted
// preview (a lost store, a missed webhook). It starts one teardown per preview.
func (e *DeployRunner) sweepPreviews(ctx context.Context) {
	if !(Previewer{Config: e.cfg.Load()}).Enabled() {
		return
	}
	recs, err := e.store.Previews(nil)
	if err != nil {
		e.log.Error("read previews", "err", err)
		return
	}
	ttl := e.cfg.Load().Previews.TTL.Duration
	for _, rec := range recs {
		if rec.Wanted && ttl > 0 && e.now().Sub(rec.LastActivity) > ttl && !hasLabel(rec.Labels, e.cfg.Load().Previews.KeepLabel) {
			rec = e.expire(rec)
		}
		if !rec.Wanted && rec.Status != store.PreviewStopped {
			e.startTeardown(ctx, rec)
		}
	}
	e.startOrphanSweep(ctx)
}

// startOrphanSweep runs sweepOrphans in the background once per GC interval.
func (e *DeployRunner) startOrphanSweep(ctx context.Context) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.running["orphans"] || e.now().Sub(e.lastOrphanSweep) < e.cfg.Load().Previews.GCInterval.Duration {
		return
	}
	e.running["orphans"], e.lastOrphanSweep = true, e.now()
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		e.sweepOrphans(ctx)
		e.mu.Lock()
		delete(e.running, "orphans")
		e.mu.Unlock()
	}()
}

func (e *DeployRunner) expire(rec store.Preview) store.Preview {
	out, err := e.store.UpdatePreview(rec.Key, func(p *store.Preview) error {
		p.Wanted, p.StopReason = false, StopTTL
		return nil
	})
	if err != nil {
		e.log.Error("expire preview", "preview", rec.Key, "err", err)
		return rec
	}
	e.log.Info("preview idle past its TTL", "preview", rec.Key, "lastActivity", rec.LastActivity, "ttl", e.cfg.Load().Previews.TTL.Duration)
	return out
}

func hasLabel(labels []string, want string) bool {
	for _, l := range labels {
		if strings.EqualFold(l, want) {
			return true
		}
	}
	return false
}

// startTeardown removes a preview unless a deploy into it is in hand; the
// next sweep tries again then.
func (e *DeployRunner) startTeardown(ctx context.Context, rec store.Preview) {
	lock := "preview/" + rec.Key
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.running[lock] || e.busyNamespace(rec.Namespace) {
		return
	}
	e.running[lock] = true
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		e.teardown(ctx, rec)
		e.mu.Lock()
		delete(e.running, lock)
		e.mu.Unlock()
	}()
}

// busyNamespace reports whether a deploy into ns runs; callers hold e.mu.
func (e *DeployRunner) busyNamespace(ns string) bool {
	for target, busy := range e.running {
		if busy && strings.HasSuffix(target, "/"+ns) {
			return true
		}
	}
	return false
}

func (e *DeployRunner) teardown(ctx context.Context, rec store.Preview) {
	key := rec.Key // rec is zero when an update fails
	rec, err := e.store.UpdatePreview(key, func(p *store.Preview) error {
		return p.Transition(store.PreviewStopping)
	})
	if err != nil {
		e.log.Error("stop preview", "preview", key, "err", err)
		return
	}
	client := e.clusters[rec.Cluster]
	if client == nil {
		e.log.Error("stop preview: cluster no longer configured", "preview", key, "cluster", rec.Cluster)
		return
	}
	switch err := client.DeleteNamespace(ctx, rec.Namespace, previewOwner(rec), namespaceGone); {
	case errors.Is(err, kube.ErrNotOwned):
		// Someone else's namespace took the name: it is not this preview's
		// to delete, and the preview has nothing else to remove.
		e.log.Warn("stop preview: its namespace is not shipbot's; leaving it", "preview", key, "err", err)
	case err != nil:
		e.log.Warn("stop preview; retrying on the next sweep", "preview", key, "err", err)
		return
	}
	rec, err = e.store.UpdatePreview(key, func(p *store.Preview) error {
		if p.Wanted { // redeployed while we were deleting: leave it to the deploy
			return errStale
		}
		p.URL, p.DeployedSHA, p.Updated = "", "", e.now()
		return p.Transition(store.PreviewStopped)
	})
	if err != nil {
		if !errors.Is(err, errStale) {
			e.log.Error("stop preview", "preview", key, "err", err)
		}
		return
	}
	e.metrics.previewsRemoved.WithLabelValues(rec.StopReason).Inc()
	e.emit(ctx, Event{Reason: ReasonPreviewStopped, Preview: &rec, Message: rec.StopReason})
}

// orphanMinAge spares namespaces a deploy is creating right now, before its
// preview record could be read.
const orphanMinAge = time.Minute

// sweepOrphans deletes labelled preview namespaces that no preview claims.
func (e *DeployRunner) sweepOrphans(ctx context.Context) {
	cluster, _ := e.cfg.Load().PreviewCluster()
	client := e.clusters[cluster]
	if client == nil {
		return
	}
	recs, err := e.store.Previews(nil)
	if err != nil {
		e.log.Error("read previews", "err", err)
		return
	}
	claimed := map[string]bool{}
	for _, r := range recs {
		if r.Wanted || r.Status != store.PreviewStopped {
			claimed[r.Namespace] = true
		}
	}
	nss, err := client.Namespaces(ctx, LabelPreview+"=true")
	if err != nil {
		e.log.Warn("list preview namespaces", "err", err)
		return
	}
	for _, ns := range nss {
		// Only namespaces under this shipbot's prefix: another shipbot may
		// share the cluster with previews of its own.
		mine := strings.HasPrefix(ns.Name, e.cfg.Load().Previews.NamespacePrefix)
		if !mine || claimed[ns.Name] || ns.DeletionTimestamp != nil || e.now().Sub(ns.CreationTimestamp.Time) < orphanMinAge {
			continue
		}
		e.log.Info("removing orphaned preview namespace", "namespace", ns.Name, "reason", StopOrphan)
		// Deleted only while it still carries the labels it was found by.
		owner := map[string]string{LabelPreview: "true", LabelManagedBy: "shipbot"}
		if err := client.DeleteNamespace(ctx, ns.Name, owner, namespaceGone); err != nil {
			e.log.Warn("remove orphaned preview namespace", "namespace", ns.Name, "err", err)
			continue
		}
		e.metrics.previewsRemoved.WithLabelValues(StopOrphan).Inc()
	}
}
