package govern

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/shipbot/shipbot/bot/gitlab"
	"github.com/shipbot/shipbot/bot/ops"
	"github.com/shipbot/shipbot/deployer"
	"github.com/shipbot/shipbot/deployer/config"
	"github.com/shipbot/shipbot/deployer/release"
	"github.com/shipbot/shipbot/deployer/store"
)

// BuildFinder is what Deploys asks of GitLab; *gitlab.Client has it.
type BuildFinder interface {
	ProjectID(ctx context.Context, path string) (int64, error)
	FindBuild(ctx context.Context, projectID int64, ref string) (gitlab.Build, error)
}

var _ BuildFinder = (*gitlab.Client)(nil)

// Gatekeeper checks who may deploy where; *ops.Service is it.
type Gatekeeper interface {
	AuthorizeEnvironment(ctx context.Context, a ops.Actor, project, env string, action ops.EnvAction) error
	CheckEnvironmentLock(ctx context.Context, a ops.Actor, env string) error
}

var _ Gatekeeper = (*ops.Service)(nil)

// Deploys releases a chosen tag or commit to an environment: `/deploy
// v1.3.0 to prod2` on an MR, `shipbot deploy` and the API. It records the
// releases; the engine runs them with the environment's stages and gates.
type Deploys struct {
	GitLab BuildFinder
	Ops    Gatekeeper
	Config config.Current // loaded at each deploy
	Store  *store.Store
	Wake   func()           // steps new releases at once; the scheduler's Wake
	Now    func() time.Time // time.Now when nil
	Log    *slog.Logger     // slog.Default() when nil
}

// Deploy checks that a may deploy to env (its access role on project, and
// no one else's lock), finds ref's build in GitLab, whose pipeline must
// have succeeded, and records its releases.
func (d *Deploys) Deploy(ctx context.Context, a ops.Actor, project, ref, env string) ([]release.Release, error) {
	if err := d.Ops.AuthorizeEnvironment(ctx, a, project, env, ops.EnvDeploy); err != nil {
		return nil, err
	}
	if err := d.Ops.CheckEnvironmentLock(ctx, a, env); err != nil {
		return nil, err
	}
	b, err := d.build(ctx, project, ref)
	if err != nil {
		return nil, err
	}
	b.User = a.Username
	var out []release.Release
	cfg := d.Config.Load()
	_, err = d.Store.Update(func(tx *store.Tx) (err error) {
		out, err = deployer.DeployVersion(tx, cfg, b, env, d.now())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("deploy %s to %s: %w", ref, env, err)
	}
	if d.Wake != nil {
		d.Wake()
	}
	d.log().Info("version deploy recorded", "project", project, "ref", ref, "sha", b.SHA, "pipeline", b.PipelineID,
		"environment", env, "actor", a.Username, "surface", a.Surface, "releases", len(out))
	return out, nil
}

// build finds ref's successful build, as deployer.Build.
func (d *Deploys) build(ctx context.Context, project, ref string) (deployer.Build, error) {
	pid, err := d.GitLab.ProjectID(ctx, project)
	if err != nil {
		return deployer.Build{}, fmt.Errorf("deploy %s: %w", ref, err)
	}
	gb, err := d.GitLab.FindBuild(ctx, pid, ref)
	switch {
	case errors.Is(err, gitlab.ErrNoSuccessfulPipeline):
		return deployer.Build{}, fmt.Errorf("%w: %s has no successful pipeline; shipbot deploys only what CI built and passed", deployer.ErrInvalid, ref)
	case errors.Is(err, gitlab.ErrNotFound):
		return deployer.Build{}, fmt.Errorf("%w: %s has no tag or commit %s", deployer.ErrInvalid, project, ref)
	case err != nil:
		return deployer.Build{}, err
	}
	return deployer.Build{Kind: deployer.TriggerPipeline, ProjectID: pid, Project: project, Ref: gb.Ref, Tag: gb.Tag,
		SHA: gb.SHA, PipelineID: gb.PipelineID}, nil
}

func (d *Deploys) now() time.Time {
	if d.Now == nil {
		return time.Now()
	}
	return d.Now()
}

func (d *Deploys) log() *slog.Logger {
	if d.Log == nil {
		return slog.Default()
	}
	return d.Log
}
