package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/shipbot/shipbot/cmd/shipbot/serve"
	"github.com/shipbot/shipbot/deployer"
	"github.com/shipbot/shipbot/deployer/config"
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
	root.AddCommand(serveCmd(), intakeCmd(), storeCmd(), renderCmd(), planCmd(), checkCmd(), releasesCmd(), deploymentsCmd(), previewsCmd())
	root.AddCommand(governCmds()...)
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
			log := newLogger(cfg.Log, os.Stderr)
			if cfg.Store.Backend == config.BackendKubernetes {
				h := &serve.HA{Config: cfg, Log: log, Watch: true}
				if err := h.Run(cmd.Context()); err != nil {
					return err
				}
				<-cmd.Context().Done()
				log.Info("shutting down")
				return h.Close()
			}
			m := &serve.Main{Config: cfg, Watch: true, Log: log}
			if err := m.Run(cmd.Context()); err != nil {
				return err
			}
			<-cmd.Context().Done()
			m.Log.Info("shutting down")
			return m.Close()
		},
	}
}

func intakeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "intake",
		Short: "Only receive GitLab webhooks, into the cluster inbox (webhook.inbox) that serve takes them from",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			in := &serve.Intake{Config: cfg, Log: newLogger(cfg.Log, os.Stderr)}
			serve.OnHangup(cmd.Context(), func() {
				in.Log.Info("SIGHUP: shipbot intake reads its config at start only; restart it to apply a change", "file", cfg.File())
			})
			if err := in.Run(cmd.Context()); err != nil {
				return err
			}
			<-cmd.Context().Done()
			in.Log.Info("shutting down")
			return in.Close()
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
	var f appFlags
	cmd := &cobra.Command{
		Use:   "render --app NAME --env ENV [--repo-dir DIR]",
		Short: "Print the manifests an app would get in an environment, applying nothing",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, a, files, d, err := f.load(cmd)
			if err != nil {
				return err
			}
			params, ok := a.ParamsFor(f.env)
			if !ok {
				return fmt.Errorf("app %s does not deploy to environment %s", a.Name, f.env)
			}
			objs, err := deployer.Sources{Charts: &source.Charts{}}.RenderApp(cmd.Context(), files, a, params, d)
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
	f.register(cmd)
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
