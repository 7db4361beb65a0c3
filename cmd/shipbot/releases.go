package main

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/shipbot/shipbot/bot/api"
	"github.com/shipbot/shipbot/bot/dashboard"
	"github.com/shipbot/shipbot/deployer/release"
)

// Where the releases commands find a shipbot when no flag says.
const (
	envServer     = "SHIPBOT_SERVER"
	envToken      = "SHIPBOT_API_TOKEN"
	defaultServer = "http://127.0.0.1:8080"
)

// releasesCLI is the state of the releases commands: their flags, and the
// clock and time zone that ages and timestamps are shown in.
type releasesCLI struct {
	now func() time.Time
	loc *time.Location

	server, token, tokenFile, as, output, comment string
}

// releasesCmd is `shipbot releases`: it talks to a running shipbot's API,
// so it needs no config file.
func releasesCmd() *cobra.Command {
	return newReleasesCmd(&releasesCLI{now: time.Now, loc: time.Local})
}

func newReleasesCmd(c *releasesCLI) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "releases",
		Short: "List, inspect and steer staged releases through a running shipbot's API",
		Long: `List, inspect and steer staged releases through a running shipbot's API.

Controls record an intent, with you as the actor; shipbot acts on it at its
next step, and the release's history shows both.`,
		Example: `  export SHIPBOT_SERVER=https://shipbot.example.com SHIPBOT_API_TOKEN=...
  shipbot releases list --env prod --active
  shipbot releases get r000000000042
  shipbot releases promote r000000000042 50 --comment "error rate flat"
  shipbot releases rollback r000000000042 -o json`,
		Args: cobra.NoArgs,
	}
	c.connectionFlags(cmd)
	pf := cmd.PersistentFlags()
	pf.StringVar(&c.as, "as", "", "who is acting, recorded with every control (default $USER)")
	pf.StringVar(&c.comment, "comment", "", "why, recorded with a control in the release's history")
	cmd.AddCommand(c.listCmd(), c.getCmd(), c.promoteCmd())
	for _, a := range []struct{ action, short string }{
		{api.ActionContinue, "Start the stage a paused release waits at"},
		{api.ActionPause, "Stop a release advancing; continue resumes it"},
		{api.ActionRollback, "Return everything to the previous revision"},
		{api.ActionAbort, "Stop a release now, leaving the cluster as it is"},
	} {
		cmd.AddCommand(c.controlCmd(a.action, a.short))
	}
	return cmd
}

// connectionFlags are the flags every command that talks to the API takes:
// where the server is, its token and the output format.
func (c *releasesCLI) connectionFlags(cmd *cobra.Command) {
	pf := cmd.PersistentFlags()
	pf.StringVar(&c.server, "server", "", "shipbot base URL (env "+envServer+", default "+defaultServer+")")
	pf.StringVar(&c.token, "token", "", "API token, api.token in shipbot.yaml (env "+envToken+"); prefer --token-file or the env, which other users cannot see in ps")
	pf.StringVar(&c.tokenFile, "token-file", "", "file holding the API token (its surrounding whitespace is ignored)")
	pf.StringVarP(&c.output, "output", "o", "table", "output format: table or json")
}

// client builds an API client from the flags, then the environment.
func (c *releasesCLI) client(cmd *cobra.Command, acting bool) (*api.Client, error) {
	if c.output != "table" && c.output != "json" {
		return nil, fmt.Errorf("-o %q: want table or json", c.output)
	}
	cl := &api.Client{Server: c.server, Token: c.token, Actor: c.as, Surface: release.SurfaceCLI}
	if !cmd.Flags().Changed("server") {
		cl.Server = cmp.Or(os.Getenv(envServer), defaultServer)
	}
	switch {
	case cmd.Flags().Changed("token") && c.tokenFile != "":
		return nil, errors.New("--token and --token-file both set: give one")
	case c.tokenFile != "":
		raw, err := os.ReadFile(c.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("--token-file: %w", err)
		}
		if cl.Token = strings.TrimSpace(string(raw)); cl.Token == "" {
			return nil, fmt.Errorf("--token-file %s: the file is empty", c.tokenFile)
		}
	case !cmd.Flags().Changed("token"):
		cl.Token = os.Getenv(envToken)
	}
	if cl.Token == "" {
		return nil, fmt.Errorf("no API token: set --token-file, %s or --token to api.token from shipbot.yaml", envToken)
	}
	if !cmd.Flags().Changed("as") {
		cl.Actor = os.Getenv("USER")
	}
	if acting && strings.TrimSpace(cl.Actor) == "" {
		return nil, fmt.Errorf("who is acting? set --as or $USER")
	}
	return cl, nil
}

func (c *releasesCLI) listCmd() *cobra.Command {
	var q api.Query
	var since string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List releases, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.client(cmd, false)
			if err != nil {
				return err
			}
			if since != "" {
				if q.Since, err = parseSince(since, c.now()); err != nil {
					return err
				}
			}
			page, err := cl.List(cmd.Context(), q)
			if err != nil {
				return err
			}
			if c.output == "json" {
				return writeJSON(cmd.OutOrStdout(), page)
			}
			c.printList(cmd.OutOrStdout(), page.Items)
			if page.Next != "" {
				fmt.Fprintf(cmd.ErrOrStderr(), "more releases: add --cursor %s\n", page.Next)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&q.Project, "project", "", "only this GitLab project, e.g. shop/web")
	f.StringVar(&q.App, "app", "", "only this app")
	f.StringVar(&q.Environment, "env", "", "only this environment")
	f.StringVar(&q.Cluster, "cluster", "", "only this cluster")
	f.StringSliceVar(&q.Phases, "phase", nil, "only these phases, e.g. Paused,Progressing (repeatable)")
	f.StringVar(&q.User, "user", "", "only releases this GitLab user started or acted on")
	f.StringVar(&since, "since", "", "only releases created since, e.g. 24h, 7d or 2026-03-01T00:00:00Z")
	f.BoolVar(&q.Active, "active", false, "only releases that have not ended")
	f.IntVar(&q.Limit, "limit", api.DefaultLimit, fmt.Sprintf("most releases to show, 1..%d", api.MaxLimit))
	f.StringVar(&q.Cursor, "cursor", "", "continue a list where a previous page ended")
	return cmd
}

// parseSince reads a duration back from now (24h, 90m, 7d) or an RFC3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if days, ok := strings.CutSuffix(s, "d"); ok && err != nil {
		n, aerr := strconv.Atoi(days)
		d, err = time.Duration(n)*24*time.Hour, aerr
	}
	if err != nil || d <= 0 {
		return time.Time{}, fmt.Errorf("--since %q: want a duration like 24h or 7d, or a time like 2026-03-01T00:00:00Z", s)
	}
	return now.Add(-d), nil
}

func (c *releasesCLI) printList(w io.Writer, rs []api.Release) {
	if len(rs) == 0 {
		fmt.Fprintln(w, "No releases found.")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tAPP\tENV\tCLUSTER\tFROM→TO\tPHASE\tSTAGE\tAGE\tBY")
	for _, r := range rs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s→%s\t%s\t%s\t%s\t%s\n", r.ID, r.App, r.Environment, r.Cluster,
			cmp.Or(r.From.Name, "-"), r.To.Name, r.Phase, stage(r.Release), dashboard.Ago(c.now().Sub(r.Created)), cmp.Or(r.TriggeredBy, "-"))
	}
	tw.Flush()
}

// stage reads like "2/3 50%": the stage being worked on, and the share on
// the new revision.
func stage(r release.Release) string {
	n := len(r.Stages)
	return fmt.Sprintf("%d/%d %d%%", min(r.Stage+1, n), n, r.Percent)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
