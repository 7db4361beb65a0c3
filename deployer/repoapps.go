package deployer

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/shipbot/shipbot/deployer/config"
)

// Apps finds the apps a commit deploys: those of shipbot's config, and for
// a project that config opens to it (projects[]), those the project's
// .shipbot.yaml declares at that commit. A commit's files never change, so
// neither do its apps: an engine that looks an app up again later, at the
// same sha, finds the same one.
type Apps struct {
	Config  config.Current // loaded once per call
	Sources Sources
}

// At is the config that a build of project at sha sees: Config itself, or
// a copy holding the apps of the repository's .shipbot.yaml too. A file
// that breaks the policy or fails validation returns its *config.Error
// problems, each with its line; failing to read the repository returns an
// error wrapping ErrRepoFiles.
func (a Apps) At(ctx context.Context, project, sha string) (*config.Config, error) {
	return a.at(ctx, a.Config.Load(), project, sha)
}

func (a Apps) at(ctx context.Context, cfg *config.Config, project, sha string) (*config.Config, error) {
	if p, ok := cfg.Project(project); !ok || !p.OpensRepo() {
		return cfg, nil
	}
	files, err := a.Sources.Repos.Files(ctx, project, sha)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", config.RepoFile, err)
	}
	b, err := fs.ReadFile(files, config.RepoFile)
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, nil // the project declares nothing of its own
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", config.RepoFile, err)
	}
	apps, err := cfg.ParseRepo(project, b)
	if err != nil {
		return nil, err
	}
	return cfg.WithApps(apps), nil
}

// App returns the app called name as a build of project at sha sees it.
func (a Apps) App(ctx context.Context, name, project, sha string) (config.App, error) {
	cfg := a.Config.Load()
	if app, ok := cfg.App(name); ok {
		return app, nil
	}
	cfg, err := a.at(ctx, cfg, project, sha)
	if err != nil {
		return config.App{}, fmt.Errorf("app %s: %w", name, err)
	}
	app, ok := cfg.App(name)
	if !ok || app.Project != project {
		return config.App{}, fmt.Errorf("app %s is no longer configured", name)
	}
	return app, nil
}
