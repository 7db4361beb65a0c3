// Package deployer is shipbot's deploy engine: it turns a build into
// deployment records, renders and applies each one to its cluster, waits for
// the rollout and records how it ended. It knows nothing of GitLab's payloads
// or of chat; it reports what happens through the Notifier interface.
package deployer

import (
	"fmt"
	"slices"
	"time"

	"github.com/shipbot/shipbot/deployer/config"
	"github.com/shipbot/shipbot/deployer/store"
)

// TriggerKind says what kind of GitLab event a build came from.
type TriggerKind string

// Trigger kinds; they match config.Trigger values.
const (
	TriggerPipeline TriggerKind = TriggerKind(config.TriggerPipeline)
	TriggerPush     TriggerKind = TriggerKind(config.TriggerPush)
)

// Build is a commit that may deploy: a successful pipeline or a push.
type Build struct {
	Kind        TriggerKind
	DeliveryKey string
	ProjectID   int64
	Project     string // path_with_namespace
	Ref         string // branch or tag name
	Tag         bool
	SHA         string
	PipelineID  int64
	Jobs        []Job
	User        string
}

// Job is a pipeline job, for recording which one built the image.
type Job struct {
	ID     int64
	Name   string
	Status string
}

// Plan lists the deployments a build asks for: each app of the project whose
// trigger matches, in each environment whose ref rules match, in each of the
// environment's clusters, in config order. It does no I/O.
func Plan(cfg *config.Config, b Build, now time.Time) ([]store.Deployment, error) {
	var out []store.Deployment
	for _, app := range cfg.Apps {
		if app.Project != b.Project || string(app.Trigger) != string(b.Kind) {
			continue
		}
		for _, env := range cfg.Environments {
			if _, ok := app.Environments[env.Name]; !ok || !matches(env, b) {
				continue
			}
			if _, ok := staged(app, env.Name, b); ok {
				continue // a staged release, see stagedReleases
			}
			image, err := app.ImageFor(config.ImageData{Project: b.Project, App: app.Name, SHA: b.SHA, ShortSHA: short(b.SHA), Ref: b.Ref, Environment: env.Name})
			if err != nil {
				return nil, fmt.Errorf("app %s: %w", app.Name, err)
			}
			for _, cluster := range env.Clusters {
				out = append(out, store.Deployment{
					DeliveryKey: b.DeliveryKey,
					App:         app.Name,
					Project:     b.Project,
					ProjectID:   b.ProjectID,
					Environment: env.Name,
					Cluster:     cluster,
					Namespace:   env.Namespace,
					Ref:         b.Ref,
					Tag:         b.Tag,
					SHA:         b.SHA,
					Image:       image,
					PipelineID:  b.PipelineID,
					JobID:       buildJob(b.Jobs, app.Job),
					User:        b.User,
					Trigger:     string(b.Kind),
					Status:      store.StatusPending,
					Created:     now,
				})
			}
		}
	}
	return out, nil
}

func matches(env config.Environment, b Build) bool {
	if b.Tag {
		return env.MatchTag(b.Ref)
	}
	return env.MatchBranch(b.Ref)
}

// buildJob picks the job recorded as the build: the named one, else the
// successful job that ran last.
func buildJob(jobs []Job, name string) int64 {
	var best int64
	for _, j := range jobs {
		if j.Status != "success" {
			continue
		}
		if name != "" && j.Name == name {
			return j.ID
		}
		if name == "" {
			best = max(best, j.ID)
		}
	}
	return best
}

func short(sha string) string {
	if len(sha) > 8 {
		return sha[:8]
	}
	return sha
}

// newestFirst orders deployments of one target so the newest comes first;
// ids sort by creation.
func newestFirst(ds []store.Deployment) {
	slices.SortFunc(ds, func(a, b store.Deployment) int {
		switch {
		case a.ID > b.ID:
			return -1
		case a.ID < b.ID:
			return 1
		}
		return 0
	})
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// RecordBuild records, inside tx, all that a build means: plain deploys of
// the environments its ref maps to, staged releases when it is a tag of an
// app with a release spec, and the previews of merge requests whose head
// it is when it is a pipeline. It is the one place that answers "what does
// this build do?", so the inbox that calls it decides nothing itself.
func RecordBuild(tx *store.Tx, cfg *config.Config, b Build, now time.Time) error {
	deps, err := Plan(cfg, b, now)
	if err != nil {
		return err
	}
	for _, d := range deps {
		if _, err := tx.AddDeployment(d); err != nil {
			return err
		}
	}
	if b.Tag {
		if _, err := (stagedReleases{Config: cfg}).Build(tx, b, now); err != nil {
			return err
		}
	}
	if b.Kind == TriggerPipeline {
		return Previewer{Config: cfg}.BuildBranch(tx, b, now)
	}
	return nil
}
