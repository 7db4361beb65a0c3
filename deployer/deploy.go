package deployer

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/shipbot/shipbot/deployer/config"
	"github.com/shipbot/shipbot/deployer/kube"
	"github.com/shipbot/shipbot/deployer/store"
	"github.com/shipbot/shipbot/templates"
)

// Annotations stamped on every applied object, so that `kubectl get -o yaml`
// tells who deployed it, from which commit, pipeline and job.
const (
	AnnotationDeployment  = "shipbot.io/deployment"
	AnnotationProject     = "shipbot.io/project"
	AnnotationEnvironment = "shipbot.io/environment"
	AnnotationRef         = "shipbot.io/ref"
	AnnotationSHA         = "shipbot.io/sha"
	AnnotationPipeline    = "shipbot.io/pipeline-id"
	AnnotationJob         = "shipbot.io/job-id"
	AnnotationUser        = "shipbot.io/deployed-by"
)

// deploy runs one deployment to its end and records the outcome. Every step
// is idempotent, so a deployment resumed after a crash simply runs again.
func (e *DeployRunner) deploy(ctx context.Context, d store.Deployment) {
	if d.Preview != "" {
		if _, stale := e.previewCurrent(d); stale != "" {
			e.finish(ctx, d, store.StatusSuperseded, stale, ReasonDeploySuperseded)
			return
		}
		e.setPreview(ctx, d, ReasonPreviewDeploying, func(p *store.Preview) error {
			p.Reason = ""
			return p.Transition(store.PreviewDeploying)
		})
	}
	if d.Status == store.StatusPending {
		d.Started = e.now()
		d.Reason = "" // what held it, if anything, is over
		err := d.Transition(store.StatusRunning)
		if err == nil {
			err = e.store.PutDeployment(d)
		}
		if err != nil {
			e.log.Error("start deployment", "id", d.ID, "err", err)
			return
		}
		e.emit(ctx, Event{Reason: ReasonDeployStarted, Deployment: d})
	}
	err := e.rollout(ctx, d)
	if ctx.Err() != nil {
		// Leave it running: the next start resumes it.
		e.log.Info("deployment interrupted; it resumes on restart", "id", d.ID, "err", errors.Join(errStopped, err))
		return
	}
	switch {
	case errors.Is(err, errStale):
		e.finish(ctx, d, store.StatusSuperseded, err.Error(), ReasonDeploySuperseded)
	case err != nil:
		e.finish(ctx, d, store.StatusFailed, err.Error(), ReasonDeployFailed)
	default:
		e.finish(ctx, d, store.StatusSucceeded, "", ReasonDeploySucceeded)
	}
	if d.Preview != "" {
		e.endPreview(ctx, d, err)
	}
}

// endPreview records a preview deploy's outcome on its preview. A deploy
// that went stale on the way still ends: its preview leaves "deploying" and
// the event says so, so that nothing it opened on GitLab stays running.
func (e *DeployRunner) endPreview(ctx context.Context, d store.Deployment, err error) {
	var done bool
	if err != nil {
		done = e.setPreview(ctx, d, ReasonPreviewFailed, func(p *store.Preview) error {
			p.Reason = err.Error()
			return p.Transition(store.PreviewFailed)
		})
	} else {
		app, _ := e.apps().App(ctx, d.App, d.Project, d.SHA)
		done = e.setPreview(ctx, d, ReasonPreviewReady, func(p *store.Preview) error {
			p.Reason, p.DeployedSHA = "", d.SHA
			if p.URL == "" {
				p.URL = "https://" + PreviewHost(app.Name, p.IID, e.cfg.Load().Previews.Domain)
			}
			return p.Transition(store.PreviewReady)
		})
	}
	if !done {
		e.stalePreview(ctx, d)
	}
}

// finish records a deployment's end and reports it.
func (e *DeployRunner) finish(ctx context.Context, d store.Deployment, status store.Status, reason string, ev Reason) {
	err := d.Transition(status)
	d.Reason, d.Finished = reason, e.now()
	if d.Started.IsZero() {
		d.Started = d.Finished
	}
	if err == nil {
		err = e.store.PutDeployment(d)
	}
	if err != nil {
		e.log.Error("record deployment result", "id", d.ID, "err", err)
		return
	}
	e.emit(ctx, Event{Reason: ev, Deployment: d, Message: reason})
}

// apps finds deployments' apps, shipbot's or their repository's.
func (e *DeployRunner) apps() Apps { return Apps{Config: e.cfg, Sources: e.sources} }

// rollout renders, applies and waits.
func (e *DeployRunner) rollout(ctx context.Context, d store.Deployment) error {
	app, err := e.apps().App(ctx, d.App, d.Project, d.SHA)
	if err != nil {
		return err
	}
	client := e.clusters[d.Cluster]
	if client == nil {
		return fmt.Errorf("cluster %s is no longer configured", d.Cluster)
	}
	objs, err := e.Render(ctx, app, d)
	if err != nil {
		return err
	}
	if d.Preview != "" {
		rec, stale := e.previewCurrent(d)
		if stale != "" {
			return fmt.Errorf("not deployed: %s: %w", stale, errStale)
		}
		err = e.ensurePreviewNamespace(ctx, rec)
	} else {
		err = client.EnsureNamespace(ctx, d.Namespace, map[string]string{LabelManagedBy: "shipbot"})
	}
	if err != nil {
		return err
	}
	if err := client.Apply(ctx, objs); err != nil {
		return err
	}
	for _, o := range objs {
		if o.GetKind() == "Deployment" && o.GroupVersionKind().Group == "apps" {
			if err := client.WaitRollout(ctx, o.GetNamespace(), o.GetName(), app.RolloutTimeout.Duration); err != nil {
				return err
			}
		}
	}
	return nil
}

// Render produces the objects of one deployment, stamped with its
// traceability annotations.
func (e *DeployRunner) Render(ctx context.Context, app config.App, d store.Deployment) ([]*unstructured.Unstructured, error) {
	p, ok := app.ParamsFor(d.Environment)
	if !ok {
		return nil, fmt.Errorf("app %s does not deploy to environment %s", app.Name, d.Environment)
	}
	if d.Preview != "" {
		rec, err := e.store.Preview(d.Preview)
		if err != nil {
			return nil, err
		}
		p = e.previewParams(app, p, rec.IID)
	}
	files, err := e.sources.Files(ctx, app, d.Project, d.SHA)
	if err != nil {
		return nil, err
	}
	objs, err := e.sources.RenderApp(ctx, files, app, p, d)
	if err != nil {
		return nil, err
	}
	out := make([]*unstructured.Unstructured, len(objs))
	for i, o := range objs {
		out[i] = o.Obj
	}
	return out, nil
}

// TemplateParams maps an app's configured parameters onto template values.
func TemplateParams(app config.App, p config.Params, d store.Deployment) templates.Params {
	replicas := int32(1)
	if p.Replicas != nil {
		replicas = *p.Replicas
	}
	tp := templates.Params{
		App: app.Name, Project: app.Project, Environment: d.Environment, Namespace: d.Namespace,
		Image: d.Image, Replicas: replicas, Host: p.Host, Config: p.Config, Values: p.Values,
		Resources: templates.Resources{
			Requests: templates.Quantities{CPU: p.Resources.CPURequest, Memory: p.Resources.MemoryRequest},
			Limits:   templates.Quantities{CPU: p.Resources.CPULimit, Memory: p.Resources.MemoryLimit},
		},
	}
	for _, port := range p.Ports {
		tp.Ports = append(tp.Ports, templates.Port{Name: port.Name, Port: port.Port, Protocol: port.Protocol})
	}
	for _, k := range sortedKeys(p.Env) {
		tp.Env = append(tp.Env, templates.EnvVar{Name: k, Value: p.Env[k]})
	}
	return tp
}

// stamp annotates an object with the deployment that applies it.
func stamp(o *unstructured.Unstructured, d store.Deployment) {
	annotate(o, map[string]string{
		AnnotationDeployment: d.ID, AnnotationProject: d.Project, AnnotationEnvironment: d.Environment,
		AnnotationRef: d.Ref, AnnotationSHA: d.SHA, AnnotationPipeline: strconv.FormatInt(d.PipelineID, 10),
		AnnotationJob: strconv.FormatInt(d.JobID, 10), AnnotationUser: d.User,
	})
}

func annotate(o *unstructured.Unstructured, add map[string]string) {
	a := o.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	maps.Copy(a, add)
	o.SetAnnotations(a)
}

// ErrRollout is matched by errors.As against *kube.RolloutError.
type ErrRollout = kube.RolloutError
