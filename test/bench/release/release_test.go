// Package release benchmarks staged canary releases end to end, through
// shipbot's real Main on the local control plane with the Istio CRDs: how
// soon after a tag pipeline webhook the first canary weights are on the
// VirtualService, and how soon after a continue the next ones are.
package release

import (
	"cmp"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/shipbot/shipbot/deployer/release"
	"github.com/shipbot/shipbot/test/cluster"
)

var kc *cluster.Cluster

// The audit log is on for every benchmark here, so that each runs on the
// same apiserver; it writes one line per request.
func TestMain(m *testing.M) {
	cluster.Main(m, cluster.Options{Istio: true, Audit: true, Shipbot: true}, &kc)
}

const (
	secret   = "bench-secret"
	apiToken = "bench-api-token-0123456789abcdef0123"
	apps     = 10 // each with its own VirtualService and Deployments
	rounds   = 5  // measured releases per app, one release at a time
	replicas = 2
	within   = 60 * time.Second // per awaited event; longer fails the run
)

// BenchmarkReleaseLatency measures apps × rounds canary releases, one at
// a time, each from the version the last one left serving. For each it
// times (a) the tag pipeline webhook's 200 → 90/10 on the VirtualService
// and (b) sending POST /api/v1/releases/<id>/continue → 50/50, both as a
// watch on the apiserver sees them. Main runs with the production
// ReleasePoll (500ms); SHIPBOT_BENCH_POLL (e.g. 100ms) overrides it.
func BenchmarkReleaseLatency(b *testing.B) {
	cluster.Require(b, kc)
	poll := benchPoll(b)
	load := loadavg()
	r := newRig(b, rigOptions{poll: poll, replicas: replicas, pauses: true})
	r.firstReleases()
	var s samples
	for round := 1; round <= rounds; round++ {
		for i := range apps {
			s.add(r.measure(i, round))
		}
	}
	s.report(b)
	fmt.Print(s.table(cmp.Or(poll, 500*time.Millisecond), load, loadavg()))
}

// benchPoll reads SHIPBOT_BENCH_POLL; zero, Main's default, when unset.
func benchPoll(b *testing.B) time.Duration {
	v := os.Getenv("SHIPBOT_BENCH_POLL")
	if v == "" {
		return 0
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		b.Fatalf("SHIPBOT_BENCH_POLL=%q: want a positive duration such as 100ms", v)
	}
	return d
}

// firstReleases releases v1.0.0 of every app, untimed. With nothing to
// shift traffic from, each goes straight to 100 %; the measured releases
// then each have a From.
func (r *rig) firstReleases() {
	for i := range apps {
		r.tag(i, "v1.0.0", pipelineID(i, 0))
	}
	for i := range apps {
		r.waitRelease(appName(i), "v1-0-0", "succeeded", succeeded)
	}
}

func pipelineID(app, round int) int64 { return int64(1000*(round+1) + app) }

// sample is one measured release.
type sample struct {
	release  string        // app and revision, e.g. "app03 v1-2-0"
	ready    time.Duration // webhook 200 → the new Deployment rolled out
	first    time.Duration // webhook 200 → 90/10 on the VirtualService: figure (a)
	next     time.Duration // continue sent → 50/50 on the VirtualService: figure (b)
	accepted time.Duration // webhook sent → its 200
	answered time.Duration // continue sent → its 202
	looks    int           // steps that found the new pods not ready
	stepped  time.Duration // webhook 200 → stage 1 applied, the engine waits for pods
}

// measure releases v1.<round>.0 of app i from v1.<round-1>.0: it times
// stage 1 and stage 2, then continues to the end, untimed, so that the
// next release of the app starts from a Succeeded one.
func (r *rig) measure(i, round int) sample {
	app := appName(i)
	from, to := fmt.Sprintf("v1-%d-0", round-1), fmt.Sprintf("v1-%d-0", round)
	stage1 := r.vs.expect(weightsAre(app, map[string]int32{from: 90, to: 10}))
	rolled := r.deps.expect(rolledOut(app + "-" + to))
	sent := time.Now()
	ok := r.tag(i, fmt.Sprintf("v1.%d.0", round), pipelineID(i, round))
	firstAt := r.vs.await(r.b, stage1, within, app+" "+to+" at 10 %")
	rolledAt := r.deps.await(r.b, rolled, within, app+"-"+to+" rolled out")

	rel := r.waitRelease(app, to, "paused after stage 1", pausedAt(1))
	looks, started := podChecks(rel)
	if started.IsZero() {
		r.b.Fatalf("release %s of %s %s has no pods check for stage 1", rel.ID, app, to)
	}
	stage2 := r.vs.expect(weightsAre(app, map[string]int32{from: 50, to: 50}))
	start := time.Now()
	r.control(rel.ID, "continue")
	answered := time.Since(start)
	nextAt := r.vs.await(r.b, stage2, within, app+" "+to+" at 50 %")

	r.waitRelease(app, to, "paused after stage 2", pausedAt(2))
	r.control(rel.ID, "continue")
	r.waitRelease(app, to, "succeeded", succeeded)
	return sample{release: app + " " + to, ready: rolledAt.Sub(ok), first: firstAt.Sub(ok), next: nextAt.Sub(start),
		accepted: ok.Sub(sent), answered: answered, looks: looks, stepped: started.Sub(ok)}
}

// podChecks reads how many steps of stage 1 found the new pods not ready,
// and when the engine started waiting for them.
func podChecks(r release.Release) (int, time.Time) {
	for _, c := range r.Checks {
		if c.Stage == 0 && c.When == release.Pods {
			return c.Runs, c.Started
		}
	}
	return 0, time.Time{}
}

type samples []sample

func (s *samples) add(x sample) { *s = append(*s, x) }

func (s samples) pick(f func(sample) time.Duration) []time.Duration {
	out := make([]time.Duration, len(s))
	for i, x := range s {
		out[i] = f(x)
	}
	slices.Sort(out)
	return out
}

// pct is the nearest-rank percentile of sorted durations.
func pct(d []time.Duration, p float64) time.Duration { return d[int(p*float64(len(d)-1)+0.5)] }

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// report gives figures (a) and (b) as metrics and logs them. ns/op is
// suppressed: the run is not one operation.
func (s samples) report(b *testing.B) {
	first, next := s.pick(func(x sample) time.Duration { return x.first }), s.pick(func(x sample) time.Duration { return x.next })
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(ms(pct(first, 0.50)), "webhook-p50-ms")
	b.ReportMetric(ms(pct(first, 0.99)), "webhook-p99-ms")
	b.ReportMetric(ms(pct(next, 0.50)), "continue-p50-ms")
	b.ReportMetric(ms(pct(next, 0.99)), "continue-p99-ms")
	b.Logf("%d releases: (a) webhook 200 → 90/10 p50 %.1f ms, p99 %.1f ms; (b) continue → 50/50 p50 %.1f ms, p99 %.1f ms",
		len(s), ms(pct(first, 0.50)), ms(pct(first, 0.99)), ms(pct(next, 0.50)), ms(pct(next, 0.99)))
}

// slow is where a release's figure (a) is worth explaining.
const slow = 400 * time.Millisecond

// table is the human-readable summary: both figures, their breakdown, the
// releases slower than slow, and the verdict on the targets. The benchmark
// log would cut it at ten lines, so it is printed.
func (s samples) table(poll time.Duration, loadStart, loadEnd string) string {
	var out strings.Builder
	fmt.Fprintf(&out, "\n%d canary releases (%d apps × %d rounds, one at a time), release poll %s, bbolt fsync on\n", len(s), apps, rounds, poll)
	fmt.Fprintf(&out, "load average at start %s, at end %s\n\n", loadStart, loadEnd)
	w := tabwriter.NewWriter(&out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "ms\tp50\tp99\tmin\tmax\t")
	row := func(what string, f func(sample) time.Duration) {
		d := s.pick(f)
		fmt.Fprintf(w, "%s\t%.1f\t%.1f\t%.1f\t%.1f\t\n", what, ms(pct(d, 0.5)), ms(pct(d, 0.99)), ms(d[0]), ms(d[len(d)-1]))
	}
	row("(a) webhook 200 → 90/10 on the VirtualService", func(x sample) time.Duration { return x.first })
	row("  webhook 200 → engine has applied, waits for pods", func(x sample) time.Duration { return x.stepped })
	row("  webhook 200 → new Deployment rolled out", func(x sample) time.Duration { return x.ready })
	row("  rolled out → 90/10", func(x sample) time.Duration { return x.first - x.ready })
	row("  (webhook sent → 200, not counted)", func(x sample) time.Duration { return x.accepted })
	row("(b) continue sent → 50/50 on the VirtualService", func(x sample) time.Duration { return x.next })
	row("  (continue sent → 202, counted)", func(x sample) time.Duration { return x.answered })
	w.Flush()
	looks := map[int]int{}
	for _, x := range s {
		looks[x.looks]++
	}
	fmt.Fprintf(&out, "\nsteps of stage 1 that found the new pods not ready: %v (count: releases)\n", looks)
	for _, x := range s {
		if x.first > slow {
			fmt.Fprintf(&out, "slow: %s: applied at %s, rolled out at %s, 90/10 at %s after the 200\n",
				x.release, x.stepped.Round(time.Millisecond), x.ready.Round(time.Millisecond), x.first.Round(time.Millisecond))
		}
	}
	first, next := s.pick(func(x sample) time.Duration { return x.first }), s.pick(func(x sample) time.Duration { return x.next })
	fmt.Fprintf(&out, "target p50 ≤ 200 ms and p99 ≤ 400 ms: (a) %s, (b) %s\n", verdict(first), verdict(next))
	return out.String()
}

func verdict(d []time.Duration) string {
	if pct(d, 0.5) <= 200*time.Millisecond && pct(d, 0.99) <= 400*time.Millisecond {
		return "met"
	}
	return "MISSED"
}
