package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/shipbot/shipbot/deployer"
	"github.com/shipbot/shipbot/deployer/config"
	"github.com/shipbot/shipbot/deployer/kube"
	"github.com/shipbot/shipbot/deployer/store"
	"github.com/shipbot/shipbot/templates/source"
)

// appFlags name the app a command renders and where its files are.
type appFlags struct {
	app, env, ref, sha, repoDir, project string
}

func (f *appFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.app, "app", "", "app name (required)")
	cmd.Flags().StringVar(&f.env, "env", "", "environment name (required)")
	cmd.Flags().StringVar(&f.ref, "ref", "main", "ref to render for")
	cmd.Flags().StringVar(&f.sha, "sha", strings.Repeat("0", 40), "commit sha to render for")
	cmd.Flags().StringVar(&f.repoDir, "repo-dir", "", "a checkout of the app's repository: its files for a source from: repo, and its .shipbot.yaml")
	cmd.Flags().StringVar(&f.project, "project", "", "the project whose checkout --repo-dir is, to read apps from its .shipbot.yaml")
	_ = cmd.MarkFlagRequired("app")
	_ = cmd.MarkFlagRequired("env")
}

// load loads the config and resolves the app in it.
func (f *appFlags) load(cmd *cobra.Command) (*config.Config, config.App, fs.FS, store.Deployment, error) {
	cfg, err := loadConfig(cmd)
	if err != nil {
		return nil, config.App{}, nil, store.Deployment{}, err
	}
	a, files, d, err := f.resolve(cfg)
	return cfg, a, files, d, err
}

// resolve finds the app, in shipbot.yaml or the checkout's .shipbot.yaml,
// the files its source reads, and the deployment to render.
func (f *appFlags) resolve(cfg *config.Config) (config.App, fs.FS, store.Deployment, error) {
	var files fs.FS = deployer.LocalFiles
	if f.repoDir != "" {
		files = os.DirFS(f.repoDir)
	}
	a, ok := cfg.App(f.app)
	if !ok && f.repoDir != "" && f.project != "" {
		b, err := os.ReadFile(filepath.Join(f.repoDir, config.RepoFile))
		if err != nil {
			return a, nil, store.Deployment{}, err
		}
		apps, err := cfg.ParseRepo(f.project, b)
		if err != nil {
			return a, nil, store.Deployment{}, err
		}
		a, ok = cfg.WithApps(apps).App(f.app)
	}
	if !ok {
		return a, nil, store.Deployment{}, fmt.Errorf("no app %q in %s (one declared by a repository needs --repo-dir and --project)", f.app, cfg.File())
	}
	if a.Source.FromRepo() && f.repoDir == "" {
		return a, nil, store.Deployment{}, fmt.Errorf("app %s reads its repository (source.from: repo): give a checkout with --repo-dir", a.Name)
	}
	if !a.Source.FromRepo() {
		files = deployer.LocalFiles
	}
	e, ok := cfg.Environment(f.env)
	if !ok {
		return a, nil, store.Deployment{}, fmt.Errorf("no environment %q in %s", f.env, cfg.File())
	}
	image, err := a.ImageFor(config.ImageData{Project: a.Project, App: a.Name, SHA: f.sha, ShortSHA: f.sha[:min(8, len(f.sha))], Ref: f.ref, Environment: f.env})
	if err != nil {
		return a, nil, store.Deployment{}, err
	}
	d := store.Deployment{ID: "render", App: a.Name, Project: a.Project, Environment: f.env, Namespace: e.Namespace, Ref: f.ref, SHA: f.sha, Image: image, User: "render"}
	return a, files, d, nil
}

func planCmd() *cobra.Command {
	var f appFlags
	cmd := &cobra.Command{
		Use:   "plan --app NAME --env ENV [--repo-dir DIR]",
		Short: "Show what deploying an app would change in each cluster of an environment, applying nothing",
		Long: "Renders the app as render does, then server-side applies it with dryRun=All in each of the\n" +
			"environment's clusters and prints, per cluster, how many objects would be created, changed\n" +
			"and left unchanged, with a unified diff of each change (Secrets only as changed or unchanged).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, a, files, d, err := f.load(cmd)
			if err != nil {
				return err
			}
			clusters, err := planClusters(cfg, f.env)
			if err != nil {
				return err
			}
			diffs, err := deployer.Sources{Charts: &source.Charts{}}.DiffApp(cmd.Context(), cfg, clusters, files, a, d)
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(cmd.OutOrStdout(), deployer.PlanText(diffs))
			return err
		},
	}
	f.register(cmd)
	return cmd
}

// planClusters connects to the environment's clusters.
func planClusters(cfg *config.Config, env string) (map[string]*kube.Client, error) {
	e, ok := cfg.Environment(env)
	if !ok {
		return nil, fmt.Errorf("no environment %q in %s", env, cfg.File())
	}
	out := map[string]*kube.Client{}
	for _, name := range e.Clusters {
		c, _ := cfg.Cluster(name)
		rc, err := kube.RESTConfig(kube.Source{Name: c.Name, Kubeconfig: c.Kubeconfig, Context: c.Context, InCluster: c.InCluster})
		if err != nil {
			return nil, err
		}
		if out[name], err = kube.New(name, rc); err != nil {
			return nil, err
		}
	}
	return out, nil
}
