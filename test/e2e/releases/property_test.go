package releases

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shipbot/shipbot/deployer/release"
	"github.com/shipbot/shipbot/test/fixtures"
)

// TestReleaseSequencesKeepInvariants drives random sequences of tags,
// continues, rollbacks and aborts through prod1 and prod2, queueing newer
// tags in one run and superseding in the other. After each step settles it
// checks what must hold whatever the order of events:
//   - one version serves each environment with no release in flight, and
//     during one only its From and To run;
//   - no release skips its stages unless nothing served before it;
//   - no version that serves nothing keeps replicas (and so endpoints),
//     once the scale-down delay (1s here) has passed.
//
// The seed is logged; SHIPBOT_PROPERTY_SEED replays one.
func TestReleaseSequencesKeepInvariants(t *testing.T) {
	for _, mode := range []string{"queue", "supersede"} {
		t.Run(mode, func(t *testing.T) {
			seed := uint64(time.Now().UnixNano())
			if s := envSeed(); s != 0 {
				seed = s
			}
			t.Logf("seed %d", seed)
			rnd := rand.New(rand.NewPCG(seed, seed))
			r := newRig(t, "prod1", "prod2")
			m := r.start(r.config(canary + "\nonNewer: " + mode))
			p := &prop{t: t, r: r, rs: m.Releases(), addr: m.Addr()}
			p.tag() // something serves from the start
			for step := range 10 {
				what := p.randomStep(rnd)
				t.Logf("step %d: %s", step, what)
				p.settle()
				p.check(what)
			}
		})
	}
}

type prop struct {
	t    *testing.T
	r    *rig
	rs   releaseControl
	addr string
	tags int
}

// releaseControl is what the test drives the engine through.
type releaseControl interface {
	releases
	Record(ctx context.Context, id string, in release.Intent) (release.Release, error)
}

func envSeed() uint64 {
	var s uint64
	fmt.Sscan(strings.TrimSpace(os.Getenv("SHIPBOT_PROPERTY_SEED")), &s)
	return s
}

func (p *prop) tag() string {
	p.tags++
	v := fmt.Sprintf("v1.%d.0", p.tags)
	tag(p.t, p.addr, v, byte('0'+p.tags%10), int64(1000+p.tags))
	// The webhook is acknowledged before its delivery is drained: wait for
	// the tag's releases, or a check could see their work but not them.
	name := strings.ReplaceAll(v, ".", "-")
	fixtures.Eventually(p.t, 30*time.Second, "releases of "+v, func() error {
		n := 0
		for _, rel := range p.list() {
			if rel.To.Name == name {
				n++
			}
		}
		if n != 2 {
			return fmt.Errorf("%d of 2 releases", n)
		}
		return nil
	})
	return "tag " + v
}

// randomStep tags a new version, or sends a random intent to a random
// release that is waiting for a person.
func (p *prop) randomStep(rnd *rand.Rand) string {
	var waiting []release.Release
	for _, rel := range p.list() {
		if rel.Phase == release.Paused || rel.Phase == release.Pending {
			waiting = append(waiting, rel)
		}
	}
	if len(waiting) == 0 || (p.tags < 5 && rnd.IntN(3) == 0) {
		return p.tag()
	}
	rel := waiting[rnd.IntN(len(waiting))]
	kinds := []release.IntentKind{release.IntentContinue, release.IntentContinue, release.IntentRollback, release.IntentAbort}
	kind := kinds[rnd.IntN(len(kinds))]
	_, err := p.rs.Record(context.Background(), rel.ID, intent(kind, 0))
	return fmt.Sprintf("%s %s of %s in %s (%s): %v", kind, rel.ID, rel.To.Name, rel.Environment, rel.Phase, err)
}

func (p *prop) list() []release.Release {
	p.t.Helper()
	all, err := p.rs.List(context.Background(), release.Filter{})
	if err != nil {
		p.t.Fatal(err)
	}
	slices.SortFunc(all, func(a, b release.Release) int { return strings.Compare(a.ID, b.ID) })
	return all
}

// settle waits until every release has ended (and scaled its old version
// down after the delay), waits for a person, or is queued behind one that
// has not ended.
func (p *prop) settle() {
	p.t.Helper()
	fixtures.Eventually(p.t, 60*time.Second, "releases settle", func() error {
		all := p.list()
		byID := map[string]release.Release{}
		for _, rel := range all {
			byID[rel.ID] = rel
		}
		for _, rel := range all {
			unapplied := slices.ContainsFunc(rel.Intents, func(in release.Intent) bool { return in.Outcome == "" })
			if !unapplied && (drained(rel) || rel.Phase == release.Paused || blocked(rel, byID)) {
				continue
			}
			return fmt.Errorf("%s (%s in %s) is %s, drain %+v; history:\n%s", rel.ID, rel.To.Name, rel.Environment, rel.Phase, rel.Drain, lines(rel.History))
		}
		return nil
	})
}

func blocked(rel release.Release, byID map[string]release.Release) bool {
	if rel.Phase != release.Pending {
		return false
	}
	for _, id := range append(slices.Clone(rel.After), rel.Requires) {
		if o, ok := byID[id]; ok && !o.Phase.Terminal() {
			return true
		}
	}
	return false
}

func (p *prop) check(after string) {
	p.t.Helper()
	for _, env := range []string{"prod1", "prod2"} {
		// Read the releases on both sides of the cluster, so that both
		// reads describe one moment.
		var all []release.Release
		var running []string
		for {
			all, running = p.list(), p.runningVersions(env)
			if snapshot(p.list()) == snapshot(all) {
				break
			}
		}
		if err := invariants(all, env, running); err != nil {
			p.t.Fatalf("after %s: %s: %v\n%s", after, env, err, describeAll(all))
		}
	}
}

// invariants checks one environment's releases, oldest first, against the
// versions whose Deployments want replicas there.
func invariants(all []release.Release, env string, running []string) error {
	served := false // an earlier release left a version serving
	var active, last *release.Release
	aborted := map[string]bool{} // versions an aborted release may have left running
	for _, rel := range all {
		if rel.Environment != env {
			continue
		}
		if rel.Phase != release.Pending && len(rel.Stages) < 3 && served {
			return fmt.Errorf("%s (%s) skipped its stages (%d of 3) with a version serving", rel.ID, rel.To.Name, len(rel.Stages))
		}
		if rel.Phase == release.Succeeded || (rel.Phase == release.Aborted && rel.Percent == 100) {
			served = true
		}
		switch {
		case rel.Phase == release.Aborted && !rel.ResolveFrom:
			aborted[rel.From.Name], aborted[rel.To.Name] = true, true
		case rel.Phase == release.Succeeded || rel.Phase == release.RolledBack:
			aborted = map[string]bool{} // its end scaled every other version down
		}
		switch {
		case !rel.Phase.Terminal() && rel.Phase != release.Pending:
			active = &rel
		case rel.Phase.Terminal() && !rel.ResolveFrom:
			last = &rel
		}
	}
	allowed := map[string]bool{}
	var must []string
	switch {
	case active != nil:
		must = []string{active.From.Name}
		allowed = aborted
		allowed[active.From.Name], allowed[active.To.Name] = true, true
	case last == nil:
		return nil
	case last.Phase == release.Aborted:
		allowed = aborted
		must = []string{last.Left().Name}
	case last.Phase == release.Succeeded || last.Phase == release.RolledBack:
		allowed[last.Left().Name] = true
		must = []string{last.Left().Name}
	default:
		return nil // Failed: a person has to look
	}
	for _, v := range running {
		if !allowed[v] {
			return fmt.Errorf("%s runs with no release that may leave it running (running %v)", v, running)
		}
	}
	for _, v := range must {
		if v != "" && !slices.Contains(running, v) {
			return fmt.Errorf("%s should serve but does not run (running %v)", v, running)
		}
	}
	return nil
}

// runningVersions lists the versions of web in env whose Deployment wants
// replicas: those that back the Service's endpoints.
func (p *prop) runningVersions(env string) []string {
	p.t.Helper()
	ds, err := kc.Client().AppsV1().Deployments(p.r.ns[env]).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		p.t.Fatal(err)
	}
	var out []string
	for _, d := range ds.Items {
		if d.Spec.Replicas != nil && *d.Spec.Replicas > 0 {
			out = append(out, strings.TrimPrefix(d.Name, "web-"))
		}
	}
	slices.Sort(out)
	return out
}

func describeAll(all []release.Release) string {
	var b strings.Builder
	for _, rel := range all {
		fmt.Fprintf(&b, "  %s %s %s from %q: %s\n", rel.ID, rel.Environment, rel.To.Name, rel.From.Name, release.Describe(rel, time.Now()))
	}
	return b.String()
}

// snapshot is the part of the releases that the checks read.
func snapshot(all []release.Release) string {
	var b strings.Builder
	for _, rel := range all {
		fmt.Fprintf(&b, "%s %s %d %d %s;", rel.ID, rel.Phase, rel.Stage, rel.Percent, rel.From.Name)
	}
	return b.String()
}
