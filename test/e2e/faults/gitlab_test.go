package faults

import (
	"testing"

	"github.com/shipbot/shipbot/test/fakegitlab"
)

// GitLab answers 500, or 429, or does not answer at all while a release
// moves from 50 % to 100 % (see ridesOut). Once GitLab is back, the
// commit's status ends "success".
func TestGitLabFaults(t *testing.T) {
	for _, f := range []struct {
		name  string
		fault func(*fakegitlab.Server) (end func())
		says  string // in the history's failure
	}{
		{"500", func(g *fakegitlab.Server) func() { return g.Outage("", "projects", 500) }, "500 Internal Server Error"},
		{"429", func(g *fakegitlab.Server) func() { return g.Outage("", "projects", 429) }, "429 Too Many Requests"},
		{"hang", func(g *fakegitlab.Server) func() { return g.Hang("", "projects") }, "context deadline exceeded"},
	} {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel() // each has its own GitLab, shipbot and namespace; most of it is waiting
			gl := fakegitlab.New(t, gitlabToken)
			gl.SetProjectPath(projectID, "shop/web")
			r := newRig(t)
			r.start(r.config(gl.URL(), ""))
			r.ridesOut("gitlab", func() func() { return f.fault(gl) }, f.says)
			st := gl.Statuses(projectID, sha("v1.1.0"))
			if len(st) == 0 || st[len(st)-1].State != "success" {
				t.Errorf("v1.1.0's commit statuses %+v, want the last one success", st)
			}
		})
	}
}
