package command

import (
	"strings"
	"testing"
)

// parseCase is one comment and what Parse must make of it. For help, reply is
// a phrase the reply must contain.
type parseCase struct {
	in    string
	want  Outcome
	cmd   Command
	reply string
}

var parseCases = []parseCase{
	// Not for shipbot: prose, quick actions, other bots, Markdown that is not a command.
	{in: "", want: OutcomeIgnore},
	{in: "   \n\t\n\u00a0", want: OutcomeIgnore},
	{in: "LGTM, ship it", want: OutcomeIgnore},
	{in: "LGTM\n/promote 50", want: OutcomeIgnore},
	{in: "please /rollback", want: OutcomeIgnore},
	{in: "/assign @alice", want: OutcomeIgnore},
	{in: "/approve", want: OutcomeIgnore},
	{in: `/label ~"needs review"`, want: OutcomeIgnore},
	{in: "/promote_to_incident", want: OutcomeIgnore},
	{in: "/promte 50", want: OutcomeIgnore},
	{in: "/", want: OutcomeIgnore},
	{in: "/ promote 50", want: OutcomeIgnore},
	{in: "//promote 50", want: OutcomeIgnore},
	{in: "@shipbot rollback", want: OutcomeIgnore},
	{in: "```\n/promote 50\n```", want: OutcomeIgnore},
	{in: "~~~\n/rollback\n~~~", want: OutcomeIgnore},
	{in: "    /rollback", want: OutcomeIgnore},
	{in: "\n\t/rollback", want: OutcomeIgnore},
	{in: "> /rollback\n\nagreed", want: OutcomeIgnore},
	{in: "`/rollback`", want: OutcomeIgnore},
	{in: "- /rollback", want: OutcomeIgnore},
	{in: "/ſtatus", want: OutcomeIgnore},
	// /plan plans the merge request's head and takes nothing else.
	{in: "/plan", want: OutcomeRun, cmd: Command{Name: NamePlan}},
	{in: "/shipbot plan\nwhat would this do?", want: OutcomeRun, cmd: Command{Name: NamePlan}},
	{in: "/plan prod1", want: OutcomeHelp, cmd: Command{Name: NamePlan}, reply: "`/plan` takes no arguments"},
	{in: strings.Repeat("\n", 5000) + "/status", want: OutcomeIgnore},

	// Commands.
	{in: "/preview", want: OutcomeRun, cmd: Command{Name: NamePreview}},
	{in: "/preview stop", want: OutcomeRun, cmd: Command{Name: NamePreviewStop}},
	{in: "/PREVIEW Stop", want: OutcomeRun, cmd: Command{Name: NamePreviewStop}},
	{in: "/promote 50", want: OutcomeRun, cmd: Command{Name: NamePromote, Percent: 50}},
	{in: "/promote 50%", want: OutcomeRun, cmd: Command{Name: NamePromote, Percent: 50}},
	{in: "/promote 50 %", want: OutcomeRun, cmd: Command{Name: NamePromote, Percent: 50}},
	{in: "/promote 7 prod1", want: OutcomeRun, cmd: Command{Name: NamePromote, Percent: 7, Target: "prod1"}},
	{in: "/promote 1", want: OutcomeRun, cmd: Command{Name: NamePromote, Percent: 1}},
	{in: "/promote 100%", want: OutcomeRun, cmd: Command{Name: NamePromote, Percent: 100}},
	{in: "/promote 050", want: OutcomeRun, cmd: Command{Name: NamePromote, Percent: 50}},
	{in: "/promote full", want: OutcomeRun, cmd: Command{Name: NamePromote, Percent: 100, Full: true}},
	{in: "/promote FULL prod2", want: OutcomeRun, cmd: Command{Name: NamePromote, Percent: 100, Full: true, Target: "prod2"}},
	{in: "/Promote 50", want: OutcomeRun, cmd: Command{Name: NamePromote, Percent: 50}},
	{in: "/continue", want: OutcomeRun, cmd: Command{Name: NameContinue}},
	{in: "/pause prod1", want: OutcomeRun, cmd: Command{Name: NamePause, Target: "prod1"}},
	{in: "/rollback prod1", want: OutcomeRun, cmd: Command{Name: NameRollback, Target: "prod1"}},
	{in: "/abort r000000000012", want: OutcomeRun, cmd: Command{Name: NameAbort, Target: "r000000000012"}},
	{in: "/status prod2", want: OutcomeRun, cmd: Command{Name: NameStatus, Target: "prod2"}},
	{in: "/shipbot status", want: OutcomeRun, cmd: Command{Name: NameStatus}},
	{in: "/ShipBot promote 25% prod1", want: OutcomeRun, cmd: Command{Name: NamePromote, Percent: 25, Target: "prod1"}},
	{in: "/shipbot /rollback", want: OutcomeRun, cmd: Command{Name: NameRollback}},
	{in: "  /promote\t\t50   prod1  ", want: OutcomeRun, cmd: Command{Name: NamePromote, Percent: 50, Target: "prod1"}},
	{in: "   /status", want: OutcomeRun, cmd: Command{Name: NameStatus}},
	{in: "\u00a0/promote\u00a050\u2003prod1\u3000", want: OutcomeRun, cmd: Command{Name: NamePromote, Percent: 50, Target: "prod1"}},
	{in: "/promote\u200b50", want: OutcomeRun, cmd: Command{Name: NamePromote, Percent: 50}},
	{in: "\ufeff/status", want: OutcomeRun, cmd: Command{Name: NameStatus}},
	{in: "/promote 50\nThe canary looks healthy, see the dashboard.", want: OutcomeRun, cmd: Command{Name: NamePromote, Percent: 50}},
	{in: "\n\n/rollback prod1\r\nerror rate is up\n/promote 100", want: OutcomeRun, cmd: Command{Name: NameRollback, Target: "prod1"}},
	{in: "/pause\r\n", want: OutcomeRun, cmd: Command{Name: NamePause}},

	// Governance: locks, freeze overrides, deploying a version.
	{in: `/lock prod2 "db migration"`, want: OutcomeRun, cmd: Command{Name: NameLock, Target: "prod2", Reason: "db migration"}},
	{in: "/lock prod2 db   migration", want: OutcomeRun, cmd: Command{Name: NameLock, Target: "prod2", Reason: "db migration"}},
	{in: "/lock prod2 “incident 42”", want: OutcomeRun, cmd: Command{Name: NameLock, Target: "prod2", Reason: "incident 42"}},
	{in: "/lock prod2", want: OutcomeRun, cmd: Command{Name: NameLock, Target: "prod2"}},
	{in: "/unlock prod2", want: OutcomeRun, cmd: Command{Name: NameUnlock, Target: "prod2"}},
	{in: `/release --force-freeze "hotfix for INC-7"`, want: OutcomeRun, cmd: Command{Name: NameRelease, Reason: "hotfix for INC-7"}},
	{in: `/release prod2 --force-freeze "hotfix"`, want: OutcomeRun, cmd: Command{Name: NameRelease, Target: "prod2", Reason: "hotfix"}},
	{in: "/rollback last-good", want: OutcomeRun, cmd: Command{Name: NameRollback, Target: "last-good"}},
	{in: "/rollback last-good 0a1b2c3d4e5f", want: OutcomeRun, cmd: Command{Name: NameRollback, Target: "last-good", Digest: "0a1b2c3d4e5f"}},
	{in: "/rollback last-good yes", want: OutcomeHelp, cmd: Command{Name: NameRollback}, reply: "`yes` is not a plan digest"},
	{in: "/deploy v1.3.0 to prod2", want: OutcomeRun, cmd: Command{Name: NameDeploy, Ref: "v1.3.0", Target: "prod2"}},
	{in: "/shipbot deploy 1a2b3c4d TO prod1", want: OutcomeRun, cmd: Command{Name: NameDeploy, Ref: "1a2b3c4d", Target: "prod1"}},
	{in: "/lock", want: OutcomeHelp, cmd: Command{Name: NameLock}, reply: "`/lock` needs an environment"},
	{in: `/lock prod2 "ask @ops"`, want: OutcomeHelp, cmd: Command{Name: NameLock}, reply: "A reason may not contain"},
	{in: "/lock prod2 " + strings.Repeat("x", 201), want: OutcomeHelp, cmd: Command{Name: NameLock}, reply: "The reason is too long"},
	{in: "/unlock", want: OutcomeHelp, cmd: Command{Name: NameUnlock}, reply: "`/unlock` takes one environment"},
	{in: "/release", want: OutcomeHelp, cmd: Command{Name: NameRelease}, reply: "takes `--force-freeze"},
	{in: "/release --force-freeze", want: OutcomeHelp, cmd: Command{Name: NameRelease}, reply: "needs a reason"},
	{in: "/deploy v1.3.0 prod2", want: OutcomeHelp, cmd: Command{Name: NameDeploy}, reply: "e.g. `/deploy v1.3.0 to prod2`"},
	{in: "/deploy v1.3.0$ to prod2", want: OutcomeHelp, cmd: Command{Name: NameDeploy}, reply: "is not a tag or commit"},
	{in: "/shipbot deploy", want: OutcomeHelp, cmd: Command{Name: NameDeploy}, reply: "`/deploy` takes a tag or commit"},

	// Help, asked for.
	{in: "/help", want: OutcomeHelp, cmd: Command{Name: NameHelp}, reply: "**shipbot commands.**"},
	{in: "/shipbot help", want: OutcomeHelp, cmd: Command{Name: NameHelp}, reply: "`/promote full [target]`"},
	{in: "/help me please", want: OutcomeHelp, cmd: Command{Name: NameHelp}, reply: "`/preview stop`"},

	// Addressed to shipbot, but not a command.
	{in: "/shipbot", want: OutcomeHelp, reply: "No command after `/shipbot`."},
	{in: "/shipbot promte 50", want: OutcomeHelp, reply: "Unknown command `promte`. Did you mean `/shipbot promote 50`?"},
	{in: "/shipbot stauts", want: OutcomeHelp, reply: "Did you mean `/shipbot status`?"},
	{in: "/shipbot ROLBACK prod1", want: OutcomeHelp, reply: "Did you mean `/shipbot rollback prod1`?"},
	{in: "/shipbot preview-stop", want: OutcomeHelp, reply: "Did you mean `/shipbot preview stop`?"},
	{in: "/shipbot frobnicate", want: OutcomeHelp, reply: "Unknown command `frobnicate`.\n\n**shipbot"},
	{in: "/shipbot @all", want: OutcomeHelp, reply: "Unknown command.\n\n"},
	{in: "/shipbot:", want: OutcomeHelp, reply: "Remove the `:` after `/shipbot`."},

	// Known commands, wrong arguments.
	{in: "/promote", want: OutcomeHelp, cmd: Command{Name: NamePromote}, reply: "`/promote` needs a percentage"},
	{in: "/promote abc", want: OutcomeHelp, cmd: Command{Name: NamePromote}, reply: "`abc` is not a percentage"},
	{in: "/promote 0", want: OutcomeHelp, cmd: Command{Name: NamePromote}, reply: "`0` is out of range"},
	{in: "/promote 0%", want: OutcomeHelp, cmd: Command{Name: NamePromote}, reply: "`0%` is out of range"},
	{in: "/promote 101", want: OutcomeHelp, cmd: Command{Name: NamePromote}, reply: "`101` is out of range"},
	{in: "/promote 99999999999999999999999", want: OutcomeHelp, cmd: Command{Name: NamePromote}, reply: "out of range"},
	{in: "/promote -5", want: OutcomeHelp, cmd: Command{Name: NamePromote}, reply: "`-5` is not a percentage"},
	{in: "/promote 50.5", want: OutcomeHelp, cmd: Command{Name: NamePromote}, reply: "`50.5` is not a percentage"},
	{in: "/promote 50%%", want: OutcomeHelp, cmd: Command{Name: NamePromote}, reply: "`50%%` is not a percentage"},
	{in: "/promote ５０", want: OutcomeHelp, cmd: Command{Name: NamePromote}, reply: "That is not a percentage"},
	{in: "/promote ful", want: OutcomeHelp, cmd: Command{Name: NamePromote}, reply: "Did you mean `full`?"},
	{in: "/promote 50 60", want: OutcomeHelp, cmd: Command{Name: NamePromote}, reply: "`60` looks like a second one"},
	{in: "/promote 50 full", want: OutcomeHelp, cmd: Command{Name: NamePromote}, reply: "not both"},
	{in: "/promote 50 prod1 now", want: OutcomeHelp, cmd: Command{Name: NamePromote}, reply: "at most one target"},
	{in: "/promote50", want: OutcomeHelp, cmd: Command{Name: NamePromote}, reply: "Put a space between `/promote` and `50`."},
	{in: "/preview go", want: OutcomeHelp, cmd: Command{Name: NamePreview}, reply: "takes no argument but `stop`, not `go`."},
	{in: "/preview stpo", want: OutcomeHelp, cmd: Command{Name: NamePreview}, reply: "Did you mean `/preview stop`?"},
	{in: "/preview stop now", want: OutcomeHelp, cmd: Command{Name: NamePreviewStop}, reply: "takes no more arguments"},
	{in: "/pause now please", want: OutcomeHelp, cmd: Command{Name: NamePause}, reply: "`/pause` takes at most one target."},
	{in: "/pause.", want: OutcomeHelp, cmd: Command{Name: NamePause}, reply: "Remove the `.` after `/pause`."},
	{in: "/rollback Prod1", want: OutcomeHelp, cmd: Command{Name: NameRollback}, reply: "write `prod1`, not `Prod1`"},
	{in: "/rollback prod_1", want: OutcomeHelp, cmd: Command{Name: NameRollback}, reply: "`prod_1` is not a valid target"},
	{in: "/rollback -prod", want: OutcomeHelp, cmd: Command{Name: NameRollback}, reply: "`-prod` is not a valid target"},
	{in: "/rollback @all", want: OutcomeHelp, cmd: Command{Name: NameRollback}, reply: "That is not a valid target"},
	{in: "/rollback 50", want: OutcomeHelp, cmd: Command{Name: NameRollback}, reply: "`50` is not a target"},
	{in: "/status ＰＲＯＤ", want: OutcomeHelp, cmd: Command{Name: NameStatus}, reply: "That is not a valid target"},
	{in: "/status " + strings.Repeat("a", 64), want: OutcomeHelp, cmd: Command{Name: NameStatus}, reply: "too long"},
	{in: "/promote " + strings.Repeat("5", 2000), want: OutcomeHelp, cmd: Command{Name: NamePromote}, reply: "That line is too long"},
	{in: "/promote 50" + strings.Repeat(" ", 2000) + "prod1", want: OutcomeHelp, cmd: Command{Name: NamePromote}, reply: "That line is too long"},
}

func TestParse(t *testing.T) {
	for _, tc := range parseCases {
		got := Parse(tc.in)
		if got.Outcome != tc.want || got.Command != tc.cmd {
			t.Errorf("Parse(%q) = %s %+v, want %s %+v\nreply: %s", tc.in, got.Outcome, got.Command, tc.want, tc.cmd, got.Reply)
			continue
		}
		switch {
		case tc.want == OutcomeHelp && !strings.Contains(got.Reply, tc.reply):
			t.Errorf("Parse(%q) reply does not contain %q:\n%s", tc.in, tc.reply, got.Reply)
		case tc.want != OutcomeHelp && got.Reply != "":
			t.Errorf("Parse(%q) = %s with reply %q, want none", tc.in, got.Outcome, got.Reply)
		case strings.Contains(got.Reply, "@"):
			t.Errorf("Parse(%q) reply contains '@', which could mention someone:\n%s", tc.in, got.Reply)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range parseCases {
		if tc.want != OutcomeRun {
			continue
		}
		s := tc.cmd.String()
		for _, comment := range []string{s, "/shipbot " + s[1:]} {
			if got := Parse(comment); got.Outcome != OutcomeRun || got.Command != tc.cmd {
				t.Errorf("Parse(%q) = %s %+v, want run %+v", comment, got.Outcome, got.Command, tc.cmd)
			}
		}
	}
}

func TestString(t *testing.T) {
	for c, want := range map[Command]string{
		{Name: NamePreview}:                                            "/preview",
		{Name: NamePreviewStop}:                                        "/preview stop",
		{Name: NamePromote, Percent: 50, Target: "prod1"}:              "/promote 50 prod1",
		{Name: NamePromote, Percent: 100, Full: true}:                  "/promote full",
		{Name: NamePromote, Percent: 100, Full: true, Target: "prod2"}: "/promote full prod2",
		{Name: NameRollback, Target: "r000000000012"}:                  "/rollback r000000000012",
		{Name: NameHelp}:                                               "/help",
		{Name: NameLock, Target: "prod2", Reason: "db migration"}:      `/lock prod2 "db migration"`,
		{Name: NameRelease, Reason: "hotfix"}:                          `/release --force-freeze "hotfix"`,
		{Name: NameDeploy, Ref: "v1.3.0", Target: "prod2"}:             "/deploy v1.3.0 to prod2",
	} {
		if got := c.String(); got != want {
			t.Errorf("%+v.String() = %q, want %q", c, got, want)
		}
	}
}

// TestNames pins the stored names: changing one would orphan stored commands.
func TestNames(t *testing.T) {
	for n, want := range map[Name]string{
		NamePreview: "preview", NamePreviewStop: "preview-stop", NamePromote: "promote",
		NameContinue: "continue", NamePause: "pause", NameRollback: "rollback",
		NameAbort: "abort", NameStatus: "status", NameHelp: "help",
		NameLock: "lock", NameUnlock: "unlock", NameRelease: "release", NameDeploy: "deploy",
	} {
		if string(n) != want || !n.Known() {
			t.Errorf("name %q: want %q and known", n, want)
		}
	}
	for _, n := range []Name{"", "preview stop", "Promote", "freeze"} {
		if n.Known() {
			t.Errorf("Name(%q).Known() = true", n)
		}
	}
	for _, o := range []Outcome{OutcomeRun, OutcomeHelp, OutcomeIgnore} {
		if o != "run" && o != "help" && o != "ignore" {
			t.Errorf("outcome %q renamed", o)
		}
	}
}

func TestHelpListsEveryCommand(t *testing.T) {
	h := Help()
	for _, form := range []string{"/preview`", "/preview stop`", "/promote <percent> [target]`", "/promote full [target]`",
		"/continue [target]`", "/pause [target]`", "/rollback [target]`", "/abort [target]`", "/status [target]`", "/help`"} {
		if !strings.Contains(h, "- `"+form) {
			t.Errorf("Help() lacks %q:\n%s", form, h)
		}
	}
}

func TestDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"", "abc", 3}, {"status", "status", 0}, {"stauts", "status", 1},
		{"promte", "promote", 1}, {"rolback", "rollback", 1}, {"ca", "abc", 3},
	} {
		if got := distance(tc.a, tc.b); got != tc.want {
			t.Errorf("distance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
