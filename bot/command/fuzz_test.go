package command

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func FuzzParse(f *testing.F) {
	for _, tc := range parseCases {
		f.Add(tc.in)
	}
	for _, s := range []string{
		"/promote 50\x00prod1",
		"/promote \xff",
		"/shipbot promote\xc3",
		"/status " + strings.Repeat("a", 1015) + "\nmore",
		"/status " + strings.Repeat("a", 1016) + "\nmore",
		"/rollback\u2028prod1",
		"/shipbot /",
		"/shipbot promote 5%0",
		// Release commands with targets, in the forms MR comments use.
		"/shipbot abort r000000000012",
		"/continue prod2\nlooks good",
		"/shipbot promote full r000000000012",
		"/pause r000000000012 prod1",
		"/rollback r0000000000123456789",
		"/status\t\u00a0prod-eu-1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, comment string) {
		r := Parse(comment)
		switch r.Outcome {
		case OutcomeIgnore:
			if r.Command != (Command{}) || r.Reply != "" {
				t.Fatalf("ignore carries %+v %q", r.Command, r.Reply)
			}
		case OutcomeHelp:
			if r.Reply == "" {
				t.Fatal("help without a reply")
			}
			if strings.Contains(r.Reply, "@") || !utf8.ValidString(r.Reply) {
				t.Fatalf("reply quotes unsafe input:\n%s", r.Reply)
			}
			if r.Command.Name != "" && !r.Command.Name.Known() {
				t.Fatalf("help about unknown command %q", r.Command.Name)
			}
		case OutcomeRun:
			checkRun(t, r)
		default:
			t.Fatalf("outcome %q", r.Outcome)
		}
	})
}

// checkRun asserts what every command Parse runs must satisfy.
func checkRun(t *testing.T, r Result) {
	t.Helper()
	c := r.Command
	switch {
	case !c.Name.Known() || c.Name == NameHelp:
		t.Fatalf("run of %q", c.Name)
	case r.Reply != "":
		t.Fatalf("run with reply %q", r.Reply)
	case c.Name == NamePromote && (c.Percent < 1 || c.Percent > 100):
		t.Fatalf("promote to %d%%", c.Percent)
	case c.Full && c.Percent != 100:
		t.Fatalf("full promote to %d%%", c.Percent)
	case c.Name != NamePromote && (c.Percent != 0 || c.Full):
		t.Fatalf("%s with percent %d full %v", c.Name, c.Percent, c.Full)
	case c.Target != "" && (!isLabel(c.Target) || allDigits(c.Target)):
		t.Fatalf("target %q", c.Target)
	case (c.Name == NamePreview || c.Name == NamePreviewStop) && c.Target != "":
		t.Fatalf("%s with target %q", c.Name, c.Target)
	}
	if again := Parse(c.String()); again != r {
		t.Fatalf("Parse(%q) = %+v, want %+v", c.String(), again, r)
	}
}
