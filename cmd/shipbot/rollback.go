package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/shipbot/shipbot/bot/api"
	"github.com/shipbot/shipbot/deployer/release"
)

// lastGood is the one target `shipbot rollback --to` knows.
const lastGood = "last-good"

// newRollbackCmd is `shipbot rollback --to last-good`: it shows what going
// back to each environment's last good version changes, asks, then does it.
func newRollbackCmd(c *releasesCLI) *cobra.Command {
	var to, project, env, reason string
	var yes bool
	cmd := &cobra.Command{
		Use:   "rollback --to last-good --project PROJECT",
		Short: "Put back, in every environment, the last version that succeeded there, after confirmation",
		Example: `  shipbot rollback --to last-good --project shop/web
  shipbot rollback --to last-good --project shop/web --env prod2 --reason "v1.2.0 leaks memory" --yes`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if to != lastGood {
				return fmt.Errorf("--to %q: the only target is %s", to, lastGood)
			}
			cl, err := c.client(cmd, true)
			if err != nil {
				return err
			}
			plan, err := cl.PlanLastGood(cmd.Context(), project, env)
			if err != nil {
				return err
			}
			if c.output == "json" && !yes {
				return writeJSON(cmd.OutOrStdout(), plan)
			}
			printPlan(cmd.OutOrStdout(), plan.Plan)
			if !hasWork(plan.Plan) {
				return nil
			}
			if !yes && !confirm(cmd.InOrStdin(), cmd.OutOrStdout()) {
				return errors.New("not confirmed; nothing was done")
			}
			out, err := cl.RestoreLastGood(cmd.Context(), api.RestoreRequest{Project: project, Environment: env, Digest: plan.Digest, Reason: reason})
			if err != nil {
				return err
			}
			for _, r := range out.Releases {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %s in %s on %s · %s\n", r.ID, r.App, r.Environment, r.Cluster, r.Summary)
			}
			return nil
		},
	}
	c.connectionFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&to, "to", "", "where to go back to: "+lastGood+" (required)")
	f.StringVar(&project, "project", "", "the GitLab project, e.g. shop/web (required)")
	f.StringVar(&env, "env", "", "only this environment")
	f.StringVar(&reason, "reason", "", "why, kept in the history of every release it touches")
	f.BoolVar(&yes, "yes", false, "do not ask: apply the plan as shown")
	f.StringVar(&c.as, "as", "", "who is acting (default $USER); a personal GitLab token acts as its owner instead")
	_ = cmd.MarkFlagRequired("to")
	_ = cmd.MarkFlagRequired("project")
	return cmd
}

func hasWork(plan []release.Restore) bool {
	for _, rs := range plan {
		if rs.Path != release.PathNone {
			return true
		}
	}
	return false
}

// printPlan shows each target's change: versions, how, and the diff.
func printPlan(w io.Writer, plan []release.Restore) {
	if len(plan) == 0 {
		fmt.Fprintln(w, "No release of this project has succeeded: there is no good version to go back to.")
		return
	}
	for _, rs := range plan {
		fmt.Fprintf(w, "%s on %s: %s %s → %s", rs.Environment, rs.Cluster, rs.App, orDash(rs.Current.Name), rs.Good.Name)
		switch rs.Path {
		case release.PathNone:
			fmt.Fprintln(w, " (already serving it)")
			continue
		case release.PathRollback:
			fmt.Fprintf(w, " (rollback of %s)\n", rs.Active)
		default:
			fmt.Fprintf(w, " (a release in one stage, as %s left it)\n", rs.GoodRelease)
		}
		if rs.Diff.Image != "" {
			fmt.Fprintf(w, "  image:   %s\n", rs.Diff.Image)
		}
		for _, p := range rs.Diff.Params {
			fmt.Fprintf(w, "  param:   %s\n", p)
		}
		for _, o := range rs.Diff.Objects {
			fmt.Fprintf(w, "  object:  %s\n", o)
		}
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// confirm asks on w and reads the answer from r; only "yes" confirms.
func confirm(r io.Reader, w io.Writer) bool {
	fmt.Fprint(w, "Go back to these versions? Type yes to confirm: ")
	line, _ := bufio.NewReader(r).ReadString('\n')
	return strings.TrimSpace(strings.ToLower(line)) == "yes"
}
