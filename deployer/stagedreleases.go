package deployer

import (
	"cmp"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/shipbot/shipbot/deployer/config"
	"github.com/shipbot/shipbot/deployer/release"
	"github.com/shipbot/shipbot/deployer/store"
)

// staged reports whether a build reaches an app's environment through a
// staged release rather than a plain deploy: tag builds of apps with a
// release spec for that environment.
func staged(app config.App, env string, b Build) (release.Spec, bool) {
	if !b.Tag {
		return release.Spec{}, false
	}
	return app.ReleaseFor(env)
}

// stagedReleases turns tag builds into staged releases.
type stagedReleases struct{ Config *config.Config }

// Build creates, inside tx, the releases a tag build asks for: for each app
// of the project with a release spec, one release per environment whose tag
// rules match and per cluster of it, chained in config order so that each
// starts only once the one before it has succeeded (prod1, then prod2). A
// spec with a group releases every cluster of an environment at once, in
// one group (release.Group) with the other apps of the build that name the
// same group there; the next environment waits for the first cluster's.
// Each also queues behind, or supersedes, the active release of its own
// target. It returns the ids of the releases it created or asked to stop.
func (p stagedReleases) Build(tx *store.Tx, b Build, now time.Time) ([]string, error) {
	var touched []string
	for _, app := range p.Config.Apps {
		if app.Project != b.Project || string(app.Trigger) != string(b.Kind) {
			continue
		}
		prev := ""
		for _, env := range p.Config.Environments {
			spec, ok := staged(app, env.Name, b)
			if !ok || !matches(env, b) {
				continue
			}
			requires, first := prev, ""
			for _, cluster := range env.Clusters {
				r, err := p.release(app, env, cluster, spec, b, now)
				if err != nil {
					return nil, err
				}
				if dup, err := alreadyReleased(tx, r); err != nil || dup {
					if err != nil {
						return nil, err
					}
					continue
				}
				r.Requires = requires
				if spec.Group != "" {
					r.Group = groupID(b, spec.Group, env.Name)
				}
				r, stopped, err := release.Enqueue(tx, r, release.OnNewer(spec.OnNewer), now)
				if err != nil {
					return nil, fmt.Errorf("release %s %s to %s on %s: %w", app.Name, b.Ref, env.Name, cluster, err)
				}
				if spec.Group == "" {
					requires = r.ID // one cluster after the other
				}
				first, prev = cmp.Or(first, r.ID), r.ID
				touched = append(append(touched, r.ID), stopped...)
			}
			if spec.Group != "" && first != "" {
				prev = first
			}
		}
	}
	return touched, nil
}

// groupID names the group of one build's releases in one environment.
func groupID(b Build, group, env string) string {
	return fmt.Sprintf("%s/%s@%s/%s/%d", b.Project, group, env, short(b.SHA), b.PipelineID)
}

func (p stagedReleases) release(app config.App, env config.Environment, cluster string, spec release.Spec, b Build, now time.Time) (release.Release, error) {
	params, _ := app.ParamsFor(env.Name)
	image, err := app.ImageFor(config.ImageData{Project: b.Project, App: app.Name, SHA: b.SHA, ShortSHA: short(b.SHA), Ref: b.Ref, Environment: env.Name})
	if err != nil {
		return release.Release{}, fmt.Errorf("app %s: %w", app.Name, err)
	}
	d := store.Deployment{Environment: env.Name, Namespace: env.Namespace, Image: image}
	r := release.Release{
		App: app.Name, Project: b.Project, Environment: env.Name, Cluster: cluster, Namespace: env.Namespace,
		To:          release.Revision{Name: RevisionName(b.Ref, b.SHA), Image: image, SHA: b.SHA, Ref: b.Ref},
		Params:      TemplateParams(app, params, d),
		TriggeredBy: b.User, PipelineID: b.PipelineID, JobID: buildJob(b.Jobs, app.Job), JobName: app.Job,
		ResolveFrom: true,
	}
	spec.Configure(&r)
	if r.Replicas == 0 {
		r.Replicas = r.Params.Replicas
	}
	return release.Prepare(r, now)
}

// alreadyReleased reports whether a release of the same commit and
// pipeline to the same target exists: a pipeline whose jobs were retried
// sends a second success for the same build.
func alreadyReleased(tx *store.Tx, r release.Release) (bool, error) {
	found := false
	err := tx.Releases(func(_ string, raw []byte) error {
		o, err := release.Decode(raw)
		if err != nil {
			return err
		}
		if o.App == r.App && o.Environment == r.Environment && o.Cluster == r.Cluster &&
			o.To.SHA == r.To.SHA && o.PipelineID == r.PipelineID {
			found = true
		}
		return nil
	})
	return found, err
}

var notLabel = regexp.MustCompile(`[^a-z0-9-]+`)

// RevisionName turns a tag such as v1.4.0 into a DNS label naming the
// revision (v1-4-0). A ref that leaves nothing falls back to the short sha.
func RevisionName(ref, sha string) string {
	n := strings.Trim(notLabel.ReplaceAllString(strings.ToLower(ref), "-"), "-")
	if len(n) > 40 {
		n = strings.Trim(n[:40], "-")
	}
	if n == "" {
		return "r-" + short(sha)
	}
	return n
}
