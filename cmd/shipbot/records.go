package main

import (
	"cmp"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/shipbot/shipbot/bot/api"
	"github.com/shipbot/shipbot/bot/dashboard"
	"github.com/shipbot/shipbot/deployer/store"
)

// deploymentsCmd is `shipbot deployments`: deployment records from a
// running shipbot's API.
func deploymentsCmd() *cobra.Command {
	return newDeploymentsCmd(&releasesCLI{now: time.Now, loc: time.Local})
}

func newDeploymentsCmd(c *releasesCLI) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "deployments",
		Short: "List who deployed what, where and how it ended, through a running shipbot's API",
		Example: `  export SHIPBOT_SERVER=https://shipbot.example.com SHIPBOT_API_TOKEN=...
  shipbot deployments list --env dev --since 24h
  shipbot deployments list --status failed -o json`,
		Args: cobra.NoArgs,
	}
	c.connectionFlags(cmd)
	var q api.RecordQuery
	list := c.recordsListCmd("deployments", &q, func(cmd *cobra.Command, cl *api.Client) (any, func(io.Writer), string, error) {
		page, err := cl.Deployments(cmd.Context(), q)
		return page, func(w io.Writer) { c.printDeployments(w, page.Items) }, page.Next, err
	})
	f := list.Flags()
	f.StringVar(&q.App, "app", "", "only this app")
	f.StringVar(&q.Cluster, "cluster", "", "only this cluster")
	f.StringSliceVar(&q.Statuses, "status", nil, "only these statuses: pending, running, succeeded, failed, superseded (repeatable)")
	cmd.AddCommand(list)
	return cmd
}

// previewsCmd is `shipbot previews`: merge request preview environments
// from a running shipbot's API.
func previewsCmd() *cobra.Command {
	return newPreviewsCmd(&releasesCLI{now: time.Now, loc: time.Local})
}

func newPreviewsCmd(c *releasesCLI) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "previews",
		Short: "List merge request preview environments through a running shipbot's API",
		Example: `  shipbot previews list --status ready,deploying
  shipbot previews list --project shop/web -o json`,
		Args: cobra.NoArgs,
	}
	c.connectionFlags(cmd)
	var q api.RecordQuery
	list := c.recordsListCmd("previews", &q, func(cmd *cobra.Command, cl *api.Client) (any, func(io.Writer), string, error) {
		page, err := cl.Previews(cmd.Context(), q)
		return page, func(w io.Writer) { c.printPreviews(w, page.Items) }, page.Next, err
	})
	list.Flags().StringSliceVar(&q.Statuses, "status", nil, "only these statuses: waiting, deploying, ready, failed, stopping, stopped (repeatable)")
	cmd.AddCommand(list)
	return cmd
}

// fetchPage reads one page and says how to print it as a table, and the
// cursor of the next page.
type fetchPage func(cmd *cobra.Command, cl *api.Client) (page any, table func(io.Writer), next string, err error)

// recordsListCmd is the list command of deployments or previews, with the
// filters both share.
func (c *releasesCLI) recordsListCmd(what string, q *api.RecordQuery, fetch fetchPage) *cobra.Command {
	var since, until string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List " + what + ", newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.client(cmd, false)
			if err != nil {
				return err
			}
			if q.Since, err = optionalTime("--since", since, c.now()); err != nil {
				return err
			}
			if q.Until, err = optionalTime("--until", until, c.now()); err != nil {
				return err
			}
			page, table, next, err := fetch(cmd, cl)
			if err != nil {
				return err
			}
			if c.output == "json" {
				return writeJSON(cmd.OutOrStdout(), page)
			}
			table(cmd.OutOrStdout())
			if next != "" {
				fmt.Fprintf(cmd.ErrOrStderr(), "more %s: add --cursor %s\n", what, next)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&q.Project, "project", "", "only this GitLab project, e.g. shop/web")
	f.StringVar(&q.Environment, "env", "", "only this environment")
	f.StringVar(&q.Ref, "ref", "", "only this ref (branch or tag)")
	f.StringVar(&q.User, "user", "", "only those this GitLab user started")
	f.StringVar(&since, "since", "", "only since, e.g. 24h, 7d or 2026-03-01T00:00:00Z")
	f.StringVar(&until, "until", "", "only before, e.g. 1h or 2026-03-02T00:00:00Z")
	f.IntVar(&q.Limit, "limit", api.DefaultLimit, fmt.Sprintf("most to show, 1..%d", api.MaxLimit))
	f.StringVar(&q.Cursor, "cursor", "", "continue a list where a previous page ended")
	return cmd
}

// optionalTime is parseSince for a flag that may be empty.
func optionalTime(flag, s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := parseSince(s, now)
	if err != nil {
		return t, fmt.Errorf("%s %q: want a duration like 24h or 7d, or a time like 2026-03-01T00:00:00Z", flag, s)
	}
	return t, nil
}

func (c *releasesCLI) printDeployments(w io.Writer, ds []store.Deployment) {
	if len(ds) == 0 {
		fmt.Fprintln(w, "No deployments found.")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tAPP\tENV\tCLUSTER\tREF\tSHA\tSTATUS\tAGE\tBY")
	for _, d := range ds {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.ID, d.App, d.Environment, d.Cluster,
			d.Ref, d.SHA[:min(len(d.SHA), 8)], d.Status, dashboard.Ago(c.now().Sub(d.Created)), cmp.Or(d.User, "-"))
	}
	tw.Flush()
}

func (c *releasesCLI) printPreviews(w io.Writer, ps []api.Preview) {
	if len(ps) == 0 {
		fmt.Fprintln(w, "No previews found.")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MR\tBRANCH\tSHA\tSTATUS\tURL\tAGE\tBY")
	for _, p := range ps {
		sha := cmp.Or(p.DeployedSHA, p.HeadSHA)
		born := cmp.Or(p.Created, p.LastActivity)
		fmt.Fprintf(tw, "%s!%d\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Project, p.IID, p.SourceBranch, sha[:min(len(sha), 8)],
			p.Status, cmp.Or(p.URL, "-"), dashboard.Ago(c.now().Sub(born)), cmp.Or(p.User, "-"))
	}
	tw.Flush()
}
