package main

import (
	"cmp"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/shipbot/shipbot/bot/api"
	"github.com/shipbot/shipbot/bot/dashboard"
	"github.com/shipbot/shipbot/deployer/release"
)

func (c *releasesCLI) getCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "get ID",
		Short: "Show a release and its history",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client(cmd, false)
			if err != nil {
				return err
			}
			r, err := cl.Get(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if c.output == "json" {
				return writeJSON(cmd.OutOrStdout(), r)
			}
			c.printRelease(cmd.OutOrStdout(), r)
			return nil
		},
	}
}

// controlCmd is one of continue, pause, rollback and abort.
func (c *releasesCLI) controlCmd(action, short string) *cobra.Command {
	return &cobra.Command{
		Use:   action + " ID",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.control(cmd, args[0], action, api.ControlRequest{})
		},
	}
}

func (c *releasesCLI) promoteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "promote ID PERCENT|full",
		Short: "Jump to the stage with a traffic target, or to the last with full",
		Example: `  shipbot releases promote r000000000042 50
  shipbot releases promote r000000000042 full --comment "all gates green"`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := parsePromotion(args[1])
			if err != nil {
				return err
			}
			return c.control(cmd, args[0], api.ActionPromote, req)
		},
	}
}

// parsePromotion reads "50", "50%" or "full". The server checks the range.
func parsePromotion(s string) (api.ControlRequest, error) {
	if strings.EqualFold(s, "full") {
		return api.ControlRequest{Full: true}, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(s, "%")))
	if err != nil {
		return api.ControlRequest{}, fmt.Errorf("promote to %q: want a stage's percentage like 50, or full", s)
	}
	return api.ControlRequest{Percent: &n}, nil
}

func (c *releasesCLI) control(cmd *cobra.Command, id, action string, req api.ControlRequest) error {
	cl, err := c.client(cmd, true)
	if err != nil {
		return err
	}
	req.Comment = c.comment
	r, err := cl.Control(cmd.Context(), id, action, req)
	if err != nil {
		return err
	}
	if c.output == "json" {
		return writeJSON(cmd.OutOrStdout(), r)
	}
	what := action
	if n := len(r.Intents); n > 0 {
		what = r.Intents[n-1].String() // the one just recorded
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s: %s requested by %s; shipbot acts on it at its next step\n%s %s on %s: %s\n",
		r.ID, what, cl.Actor, r.App, r.Environment, r.Cluster, r.Summary)
	return nil
}

// printRelease prints a header, the gate checks and the history timeline.
func (c *releasesCLI) printRelease(w io.Writer, r api.Release) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s:\t%s\n", k, fmt.Sprintf(format, args...)) }
	row("Release", "%s", r.ID)
	row("App", "%s (%s)", r.App, cmp.Or(r.Project, "-"))
	row("Target", "%s · cluster %s · namespace %s", r.Environment, r.Cluster, r.Namespace)
	row("Revisions", "%s → %s", revision(r.From), revision(r.To))
	row("Strategy", "%s · stages %s", r.Strategy, stages(r.Stages))
	row("Phase", "%s", r.Phase)
	row("Status", "%s", r.Summary)
	row("Started", "%s (%s ago) by %s", c.clock(r.Created), dashboard.Ago(c.now().Sub(r.Created)), cmp.Or(r.TriggeredBy, "-"))
	if r.PipelineID != 0 || r.WebURL != "" {
		row("Pipeline", "%s", strings.TrimSpace(fmt.Sprintf("%s %s", idOrEmpty(r.PipelineID), r.WebURL)))
	}
	if r.Reason != "" {
		row("Reason", "%s", r.Reason)
	}
	tw.Flush()
	if len(r.Checks) > 0 {
		fmt.Fprintln(w, "\nGATES")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "STAGE\tWHEN\tGATE\tSTATUS\tRUNS\tFAILED\tMESSAGE")
		for _, ch := range r.Checks {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d\t%s\n", ch.Stage+1, ch.When, ch.Gate, ch.Status, ch.Runs, ch.Failures, ch.Message)
		}
		tw.Flush()
	}
	fmt.Fprintln(w, "\nHISTORY")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tACTOR\tSURFACE\tPHASE\tMESSAGE")
	for _, e := range r.History {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.clock(e.At), e.Actor, cmp.Or(string(e.Surface), "-"), e.Phase, e.Message)
	}
	tw.Flush()
}

func (c *releasesCLI) clock(t time.Time) string { return t.In(c.loc).Format("2006-01-02 15:04:05") }

func revision(v release.Revision) string {
	if v.IsZero() {
		return "(none)"
	}
	return fmt.Sprintf("%s (%s)", v.Name, v.Image)
}

// stages reads like "10 → 50 (manual) → 100 %".
func stages(ss []release.Stage) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = strings.TrimSuffix(s.Label(), " %") // a match or mirror stage says which
		if s.Continue == release.Manual {
			parts[i] += " (manual)"
		}
	}
	return strings.Join(parts, " → ") + " %"
}

func idOrEmpty(id int64) string {
	if id == 0 {
		return ""
	}
	return "#" + strconv.FormatInt(id, 10)
}
