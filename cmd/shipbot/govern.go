package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/shipbot/shipbot/bot/api"
	"github.com/shipbot/shipbot/deployer/release"
)

// governCmds are `shipbot lock`, `unlock` and `locks`: environment locks
// through a running shipbot's API.
func governCmds() []*cobra.Command {
	c := func() *releasesCLI { return &releasesCLI{now: time.Now, loc: time.Local} }
	return []*cobra.Command{newLockCmd(c()), newUnlockCmd(c()), newLocksCmd(c()), newDeployCmd(c()), newRollbackCmd(c())}
}

// lockFlags are what lock and unlock take besides the connection.
func (c *releasesCLI) lockFlags(cmd *cobra.Command, req *api.LockRequest) {
	c.connectionFlags(cmd)
	cmd.PersistentFlags().StringVar(&c.as, "as", "", "who is acting (default $USER); a personal GitLab token acts as its owner instead")
	cmd.Flags().StringVar(&req.Project, "project", "", "with a personal GitLab token: the project whose role allows it, e.g. shop/web")
}

func newLockCmd(c *releasesCLI) *cobra.Command {
	var req api.LockRequest
	cmd := &cobra.Command{
		Use:   "lock ENV [REASON]",
		Short: "Lock an environment: only you can deploy or move releases there until you unlock it",
		Example: `  shipbot lock prod2 "db migration"
  shipbot lock prod2 "db migration" --project shop/web   # with a personal GitLab token`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 2 {
				req.Reason = args[1]
			}
			return c.lockAction(cmd, args[0], req, false)
		},
	}
	c.lockFlags(cmd, &req)
	return cmd
}

func newUnlockCmd(c *releasesCLI) *cobra.Command {
	var req api.LockRequest
	cmd := &cobra.Command{
		Use:   "unlock ENV",
		Short: "Release your lock on an environment; --force (operator token) or a Maintainer's token breaks another's",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.lockAction(cmd, args[0], req, true)
		},
	}
	c.lockFlags(cmd, &req)
	cmd.Flags().BoolVar(&req.Force, "force", false, "with the operator token: break someone else's lock")
	return cmd
}

func (c *releasesCLI) lockAction(cmd *cobra.Command, env string, req api.LockRequest, unlock bool) error {
	cl, err := c.client(cmd, true)
	if err != nil {
		return err
	}
	var l release.Lock
	if unlock {
		l, err = cl.Unlock(cmd.Context(), env, req)
	} else {
		l, err = cl.Lock(cmd.Context(), env, req)
	}
	if err != nil {
		return err
	}
	if c.output == "json" {
		return writeJSON(cmd.OutOrStdout(), l)
	}
	if unlock {
		fmt.Fprintf(cmd.OutOrStdout(), "unlocked %s (was held by %s)\n", l.Environment, l.Holder)
		return nil
	}
	fmt.Fprintln(cmd.OutOrStdout(), l.String())
	return nil
}

func newLocksCmd(c *releasesCLI) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "locks",
		Short: "List environment locks",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.client(cmd, false)
			if err != nil {
				return err
			}
			ls, err := cl.Locks(cmd.Context())
			if err != nil {
				return err
			}
			if c.output == "json" {
				return writeJSON(cmd.OutOrStdout(), ls)
			}
			c.printLocks(cmd.OutOrStdout(), ls)
			return nil
		},
	}
	c.connectionFlags(cmd)
	return cmd
}

func (c *releasesCLI) printLocks(w io.Writer, ls []release.Lock) {
	if len(ls) == 0 {
		fmt.Fprintln(w, "No environment is locked.")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ENV\tHOLDER\tSINCE\tVIA\tREASON")
	for _, l := range ls {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", l.Environment, l.Holder, l.At.In(c.loc).Format(time.DateTime), l.Surface, strings.ReplaceAll(l.Reason, "\t", " "))
	}
	tw.Flush()
}

// newDeployCmd is `shipbot deploy REF --to ENV --project P`: it needs a
// personal GitLab token, whose owner's role decides.
func newDeployCmd(c *releasesCLI) *cobra.Command {
	var req api.DeployRequest
	var env string
	cmd := &cobra.Command{
		Use:     "deploy REF --to ENV --project PROJECT",
		Short:   "Release a tag or commit, whose pipeline succeeded, to an environment",
		Example: `  SHIPBOT_API_TOKEN=$MY_GITLAB_TOKEN shipbot deploy v1.3.0 --to prod2 --project shop/web`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Ref = args[0]
			cl, err := c.client(cmd, false)
			if err != nil {
				return err
			}
			out, err := cl.Deploy(cmd.Context(), env, req)
			if err != nil {
				return err
			}
			if c.output == "json" {
				return writeJSON(cmd.OutOrStdout(), out)
			}
			for _, r := range out.Releases {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %s %s to %s on %s · %s\n", r.ID, r.App, r.To.Name, r.Environment, r.Cluster, r.Summary)
			}
			return nil
		},
	}
	c.connectionFlags(cmd)
	cmd.Flags().StringVar(&env, "to", "", "the environment, e.g. prod2 (required)")
	cmd.Flags().StringVar(&req.Project, "project", "", "the GitLab project, e.g. shop/web (required)")
	_ = cmd.MarkFlagRequired("to")
	_ = cmd.MarkFlagRequired("project")
	return cmd
}
