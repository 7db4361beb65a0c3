package release

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// After v1.1.0 fails in prod1 (its gate fails at 100 %, it pauses and is
// aborted, left serving) and v1.2.0 is half-released in prod2, going back
// to the last good version puts v1.0.0 back in both: prod2 by its own
// rollback, prod1 by a release of v1.0.0 in one stage.
func TestRestoreLastGoodPutsV1BackEverywhere(t *testing.T) {
	h := newHarness(t)
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "error rate 7 %", http.StatusInternalServerError)
	}))
	t.Cleanup(failing.Close)
	ns1, ns2 := h.ns, testCluster.NewNamespace(t)
	in := func(env, ns string, r Release) Release {
		r.Environment, r.Namespace = env, ns
		return r
	}
	for _, env := range []struct{ name, ns string }{{"prod1", ns1}, {"prod2", ns2}} {
		r := h.create(in(env.name, env.ns, h.release(Groups, "", "v1-0-0", 4)))
		h.drive(r.ID, phaseIs(Succeeded))
	}
	gate := Gate{Name: "error-rate", HTTP: &HTTPGate{URL: failing.URL}, OnFailure: FailPause}
	bad := h.create(in("prod1", ns1, h.release(Groups, "v1-0-0", "v1-1-0", 4, Stage{Target: 100, After: []Gate{gate}})))
	h.drive(bad.ID, phaseIs(Paused))
	if _, err := h.e.Record(t.Context(), bad.ID, Intent{Kind: IntentAbort, Actor: "alice", Surface: SurfaceSlack}); err != nil {
		t.Fatal(err)
	}
	h.drive(bad.ID, phaseIs(Aborted))
	half := h.create(in("prod2", ns2, h.release(Groups, "v1-0-0", "v1-2-0", 4, Stage{Target: 50, Continue: Manual}, Stage{Target: 100})))
	half = h.drive(half.ID, phaseIs(Paused))
	if v1, v12 := h.replicasIn(ns2, "web-v1-0-0"), h.replicasIn(ns2, "web-v1-2-0"); v1 != 2 || v12 != 2 {
		t.Fatalf("prod2 half-released: v1.0.0=%d v1.2.0=%d", v1, v12)
	}

	plan, err := h.e.PlanLastGood(t.Context(), "group/web", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(plan) != 2 {
		t.Fatalf("plan has %d targets: %+v", len(plan), plan)
	}
	p1, p2 := plan[0], plan[1]
	if p1.Environment != "prod1" || p1.Path != PathRelease || p1.Current.Name != "v1-1-0" || p1.Good.Name != "v1-0-0" ||
		p1.Diff.Image != "registry.local/web:v1.1.0 → registry.local/web:v1.0.0" || !slices.Contains(p1.Diff.Objects, "~ Deployment web") {
		t.Errorf("prod1 plan: %+v", p1)
	}
	if p2.Environment != "prod2" || p2.Path != PathRollback || p2.Active != half.ID || p2.Current.Name != "v1-2-0" {
		t.Errorf("prod2 plan: %+v", p2)
	}

	if _, err := h.e.RestoreLastGood(t.Context(), RestoreRequest{Project: "group/web", Digest: "stale", Actor: "alice", Surface: SurfaceCLI}); err == nil ||
		!strings.Contains(err.Error(), "the plan changed since it was shown") {
		t.Fatalf("a stale confirmation: %v", err)
	}
	touched, err := h.e.RestoreLastGood(t.Context(), RestoreRequest{Project: "group/web", Digest: PlanDigest(plan),
		Actor: "alice", Surface: SurfaceCLI, Reason: "v1.1.0 and v1.2.0 are broken"})
	if err != nil || len(touched) != 2 {
		t.Fatalf("restore: %v, %d releases", err, len(touched))
	}
	for _, r := range touched {
		done := h.drive(r.ID, func(r Release) bool { return r.Phase.Terminal() })
		want := map[string]Phase{"prod1": Succeeded, "prod2": RolledBack}[r.Environment]
		if done.Phase != want {
			t.Errorf("%s: %s ended %s, want %s:\n%s", r.Environment, r.ID, done.Phase, want, history(done))
		}
		if !slices.ContainsFunc(done.History, func(e Entry) bool {
			return e.Actor == "alice" && e.Surface == SurfaceCLI && strings.Contains(e.Message, "back to last good: v1.1.0 and v1.2.0 are broken v1-0-0")
		}) {
			t.Errorf("%s: history lacks alice's request:\n%s", r.Environment, history(done))
		}
	}
	restored := touched[slices.IndexFunc(touched, func(r Release) bool { return r.Environment == "prod1" })]
	if restored.From.Name != "" || len(restored.Stages) != 1 || restored.TriggeredBy != "alice" {
		t.Errorf("prod1's restore release: from %q, %d stages, by %s", restored.From.Name, len(restored.Stages), restored.TriggeredBy)
	}
	if r := h.get(restored.ID); r.From.Name != "v1-1-0" {
		t.Errorf("prod1's restore moved from %q, want v1-1-0", r.From.Name)
	}
	for _, c := range []struct{ ns, bad string }{{ns1, "web-v1-1-0"}, {ns2, "web-v1-2-0"}} {
		if good, b := h.replicasIn(c.ns, "web-v1-0-0"), h.replicasIn(c.ns, c.bad); good != 4 || b != 0 {
			t.Errorf("%s after the restore: v1.0.0=%d %s=%d, want 4 0", c.ns, good, c.bad, b)
		}
	}
	if again, _ := h.e.PlanLastGood(t.Context(), "group/web", ""); again[0].Path != PathNone || again[1].Path != PathNone {
		t.Errorf("after the restore the plan still has work: %+v", again)
	}
}
