// Package release benchmarks staged canary releases end to end, through
// shipbot's real Main on the local control plane with the Istio CRDs: how
// soon after a tag pipeline webhook the first canary weights are on the
// VirtualService, and how soon after a continue the next ones are.
package release

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/shipbot/shipbot/test/cluster"
)

var kc *cluster.Cluster

func TestMain(m *testing.M) { cluster.Main(m, cluster.Options{Istio: true}, &kc) }

const (
	secret   = "bench-secret"
	apiToken = "bench-api-token"
	apps     = 10 // each with its own VirtualService and Deployments
	rounds   = 5  // measured releases per app, one release at a time
	replicas = 2
	within   = 60 * time.Second // per awaited event; longer fails the run
)

// BenchmarkReleaseLatency measures apps × rounds canary releases, one at
// a time, each from the version the last one left serving. For each it
// times (a) the tag pipeline webhook's 200 → 90/10 on the VirtualService
// and (b) sending POST /api/v1/releases/<id>/continue → 50/50, both as a
// watch on the apiserver sees them. It runs with the production ReleasePoll
// (500ms) and with 100ms, the end-to-end tests' value, because the poll
// decides how soon the engine notices the new version's pods are ready.
func BenchmarkReleaseLatency(b *testing.B) {
	for _, poll := range []time.Duration{500 * time.Millisecond, 100 * time.Millisecond} {
		b.Run("poll="+poll.String(), func(b *testing.B) {
			cluster.Require(b, kc)
			b.Logf("load average at start: %s", loadavg())
			r := newRig(b, poll)
			r.firstReleases()
			var s samples
			for round := 1; round <= rounds; round++ {
				for i := range apps {
					s.add(r.measure(i, round))
				}
			}
			b.Logf("load average at end: %s", loadavg())
			s.report(b)
		})
	}
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
	ready    time.Duration // webhook 200 → the new Deployment rolled out
	first    time.Duration // webhook 200 → 90/10 on the VirtualService: figure (a)
	next     time.Duration // continue sent → 50/50 on the VirtualService: figure (b)
	accepted time.Duration // webhook sent → its 200
	answered time.Duration // continue sent → its 202
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
	stage2 := r.vs.expect(weightsAre(app, map[string]int32{from: 50, to: 50}))
	start := time.Now()
	r.control(rel.ID, "continue")
	answered := time.Since(start)
	nextAt := r.vs.await(r.b, stage2, within, app+" "+to+" at 50 %")

	r.waitRelease(app, to, "paused after stage 2", pausedAt(2))
	r.control(rel.ID, "continue")
	r.waitRelease(app, to, "succeeded", succeeded)
	return sample{ready: rolledAt.Sub(ok), first: firstAt.Sub(ok), next: nextAt.Sub(start), accepted: ok.Sub(sent), answered: answered}
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

// report gives figures (a) and (b) as metrics and logs them with the
// breakdown. ns/op is suppressed: the run is not one operation.
func (s samples) report(b *testing.B) {
	first, next := s.pick(func(x sample) time.Duration { return x.first }), s.pick(func(x sample) time.Duration { return x.next })
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(ms(pct(first, 0.50)), "webhook-p50-ms")
	b.ReportMetric(ms(pct(first, 0.99)), "webhook-p99-ms")
	b.ReportMetric(ms(pct(next, 0.50)), "continue-p50-ms")
	b.ReportMetric(ms(pct(next, 0.99)), "continue-p99-ms")
	rows := []struct {
		what string
		d    []time.Duration
	}{
		{"(a) webhook 200 → 90/10 on the VirtualService", first},
		{"(b) continue sent → 50/50 on the VirtualService", next},
		{"    webhook sent → 200", s.pick(func(x sample) time.Duration { return x.accepted })},
		{"    webhook 200 → new Deployment rolled out", s.pick(func(x sample) time.Duration { return x.ready })},
		{"    rolled out → 90/10", s.pick(func(x sample) time.Duration { return x.first - x.ready })},
		{"    continue sent → 202", s.pick(func(x sample) time.Duration { return x.answered })},
	}
	b.Logf("%d releases (%d apps × %d rounds), times in ms:", len(s), apps, rounds)
	b.Logf("%-50s %8s %8s %8s %8s", "", "p50", "p99", "min", "max")
	for _, row := range rows {
		d := row.d
		b.Logf("%-50s %8.1f %8.1f %8.1f %8.1f", row.what, ms(pct(d, 0.5)), ms(pct(d, 0.99)), ms(d[0]), ms(d[len(d)-1]))
	}
	verdict := func(d []time.Duration) string {
		if pct(d, 0.5) <= 200*time.Millisecond && pct(d, 0.99) <= 400*time.Millisecond {
			return "met"
		}
		return "MISSED"
	}
	b.Logf("target p50 ≤ 200 ms and p99 ≤ 400 ms: (a) %s, (b) %s", verdict(first), verdict(next))
}
