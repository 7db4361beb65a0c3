package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/shipbot/shipbot/cmd/shipbot/serve"
	"github.com/shipbot/shipbot/deployer"
	"github.com/shipbot/shipbot/deployer/config"
	"github.com/shipbot/shipbot/deployer/store"
	"github.com/shipbot/shipbot/templates"
	"github.com/shipbot/shipbot/templates/source"
)

func rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "shipbot",
		Short:         "Continuous delivery to Kubernetes from GitLab, driven by chat",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringP("config", "c", "shipbot.yaml", "path to shipbot.yaml")
	root.AddCommand(serveCmd(), renderCmd(), checkCmd(), releasesCmd(), deploymentsCmd(), previewsCmd())
	return root
}

func loadConfig(cmd *cobra.Command) (*config.Config, error) {
	path, _ := cmd.Flags().GetString("config")
	return config.Load(path)
}

func serveCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Receive GitLab webhooks and deploy",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			m := &serve.Main{Config: cfg, Log: newLogger(cfg.Log, os.Stderr)}
			if err := m.Run(cmd.Context()); err != nil {
				return err
			}
			<-cmd.Context().Done()
			m.Log.Info("shutting down")
			return m.Close()
		},
	}
}

func checkCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "check",
		Short: "Validate the config file and every app's source files, then exit",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			for _, a := range cfg.Apps {
				if err := (deployer.Sources{}).CheckSource(a); err != nil {
					return err
				}
			}
			if err := checkClusters(cfg); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: ok (%d clusters, %d environments, %d apps)\n", cfg.File(), len(cfg.Clusters), len(cfg.Environments), len(cfg.Apps))
			return nil
		},
	}
}

func renderCmd() *cobra.Command {
	var appName, env, ref, sha, repoDir string
	cmd := &cobra.Command{
		Use:   "render --app NAME --env ENV",
		Short: "Print the manifests an app would get in an environment, applying nothing",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			a, ok := cfg.App(appName)
			if !ok {
				return fmt.Errorf("no app %q in %s", appName, cfg.File())
			}
			e, ok := cfg.Environment(env)
			if !ok {
				return fmt.Errorf("no environment %q in %s", env, cfg.File())
			}
			image, err := a.ImageFor(config.ImageData{Project: a.Project, App: a.Name, SHA: sha, ShortSHA: sha[:min(8, len(sha))], Ref: ref, Environment: env})
			if err != nil {
				return err
			}
			d := store.Deployment{ID: "render", App: a.Name, Project: a.Project, Environment: env, Namespace: e.Namespace, Ref: ref, SHA: sha, Image: image, User: "render"}
			params, ok := a.ParamsFor(env)
			if !ok {
				return fmt.Errorf("app %s does not deploy to environment %s", a.Name, env)
			}
			files := deployer.LocalFiles
			if a.Source.FromRepo() {
				if repoDir == "" {
					return fmt.Errorf("app %s reads its repository (source.from: repo): give a checkout with --repo-dir", a.Name)
				}
				files = os.DirFS(repoDir)
			}
			srcs := deployer.Sources{Charts: &source.Charts{}}
			objs, err := srcs.RenderApp(cmd.Context(), files, a, params, d)
			if err != nil {
				return err
			}
			b, err := templates.Manifest(objs)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(b)
			return err
		},
	}
	cmd.Flags().StringVar(&appName, "app", "", "app name (required)")
	cmd.Flags().StringVar(&env, "env", "", "environment name (required)")
	cmd.Flags().StringVar(&ref, "ref", "main", "ref to render for")
	cmd.Flags().StringVar(&sha, "sha", strings.Repeat("0", 40), "commit sha to render for")
	cmd.Flags().StringVar(&repoDir, "repo-dir", "", "a checkout of the app's repository, for an app whose source is from: repo")
	_ = cmd.MarkFlagRequired("app")
	_ = cmd.MarkFlagRequired("env")
	return cmd
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
