package release

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shipbot/shipbot/deployer/release"
	"github.com/shipbot/shipbot/test/cluster"
)

// costUser is the name shipbot's requests carry in the audit log.
const costUser = "shipbot"

const (
	costRounds   = 3 // releases per app
	costReplicas = 4
	// settle is how long after a release is done its requests still count
	// for it: the next release starts after it.
	settle = 2 * time.Second
)

// costSample is one release: its apiserver requests, and how soon it got
// where, from the webhook's 200.
type costSample struct {
	release  string
	sent     time.Time     // webhook sent
	sized    time.Duration // webhook 200 → the new version's Deployment first seen with pods wanted (shipbot's write)
	ready    time.Duration // webhook 200 → that Deployment first available at its size for 10 %
	first    time.Duration // webhook 200 → 90/10 on the VirtualService
	full     time.Duration // webhook 200 → 100 % on the new version
	done     time.Duration // webhook 200 → Succeeded in the release's history
	pods     int           // the app's pods not terminating, when Succeeded was seen
	requests []cluster.AuditRequest
}

// BenchmarkReleaseCost releases apps × costRounds 3-step canaries (10, 50,
// 100 %, no pauses, costReplicas replicas), one at a time, with shipbot on
// its own user, and counts from the apiserver's audit log the requests it
// made for each: from the webhook until the next one is sent, which is
// settle after the release is done. It also times webhook 200 → 10 %, →
// 100 % and → done, and counts the app's pods at done.
func BenchmarkReleaseCost(b *testing.B) {
	releaseCost(b, rigOptions{replicas: costReplicas, user: costUser})
}

// BenchmarkReleaseCostKubernetes is BenchmarkReleaseCost with the store in
// the apiserver (store.backend kubernetes): one replica, leading, whose
// journal, compaction, lease renewals and cluster inbox count as well.
func BenchmarkReleaseCostKubernetes(b *testing.B) {
	releaseCost(b, rigOptions{replicas: costReplicas, user: costUser, ha: true})
}

// BenchmarkReleaseCostMatchTraffic is BenchmarkReleaseCost with
// canaryScale: matchTraffic: the new version has ceil(replicas × weight)
// pods before each weight is set (1 of 4 at 10 %), as an Argo Rollouts
// canary has, where the default starts it at full size.
func BenchmarkReleaseCostMatchTraffic(b *testing.B) {
	releaseCost(b, rigOptions{replicas: costReplicas, user: costUser, matchTraffic: true})
}

func releaseCost(b *testing.B, o rigOptions) {
	cluster.Require(b, kc)
	r := newRig(b, o)
	r.firstReleases()
	time.Sleep(settle)
	var s []costSample
	for round := 1; round <= costRounds; round++ {
		for i := range apps {
			s = append(s, r.cost(i, round))
			time.Sleep(settle)
		}
	}
	all, err := kc.AuditRequests(costUser)
	if err != nil {
		b.Fatal(err)
	}
	for i := range s {
		end := time.Now()
		if i+1 < len(s) {
			end = s[i+1].sent
		}
		for _, q := range all {
			if !q.At.Before(s[i].sent) && q.At.Before(end) {
				s[i].requests = append(s[i].requests, q)
			}
		}
	}
	reportCost(b, s)
}

// cost releases v1.<round>.0 of app i from v1.<round-1>.0 and times it.
func (r *rig) cost(i, round int) costSample {
	app := appName(i)
	from, to := fmt.Sprintf("v1-%d-0", round-1), fmt.Sprintf("v1-%d-0", round)
	stage1 := r.vs.expect(weightsAre(app, map[string]int32{from: 90, to: 10}))
	sized := r.deps.expect(wantsPods(app + "-" + to))
	ready := r.deps.expect(availableAtSize(app + "-" + to))
	full := r.vs.expect(allOn(app, to))
	sent := time.Now()
	ok := r.tag(i, fmt.Sprintf("v1.%d.0", round), pipelineID(i, round))
	firstAt := r.vs.await(r.b, stage1, within, app+" "+to+" at 10 %")
	readyAt := r.deps.await(r.b, ready, within, app+" "+to+" available")
	sizedAt := r.deps.await(r.b, sized, within, app+" "+to+" sized")
	fullAt := r.vs.await(r.b, full, within, app+" "+to+" at 100 %")
	rel := r.waitRelease(app, to, "succeeded", succeeded)
	pods := r.pods(app)
	var doneAt time.Time
	for _, e := range rel.History {
		if e.Phase == release.Succeeded {
			doneAt = e.At
			break
		}
	}
	return costSample{release: app + " " + to, sent: sent, sized: sizedAt.Sub(ok), ready: readyAt.Sub(ok), first: firstAt.Sub(ok), full: fullAt.Sub(ok), done: doneAt.Sub(ok), pods: pods}
}

// pods counts app's pods that are not terminating.
func (r *rig) pods(app string) int {
	r.b.Helper()
	list, err := kc.Client().CoreV1().Pods(r.ns).List(r.b.Context(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=" + app})
	if err != nil {
		r.b.Fatal(err)
	}
	n := 0
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			n++
		}
	}
	return n
}

// Targets from issue 11: Argo Rollouts' 25 requests per release, and its
// 130 ms to the first weight.
const (
	targetRequests = 25
	targetFirstP50 = 130 * time.Millisecond
	targetFirstP99 = 250 * time.Millisecond
)

func reportCost(b *testing.B, s []costSample) {
	counts := make([]int, len(s))
	byKind := map[string]int{}
	for i, x := range s {
		counts[i] = len(x.requests)
		for _, q := range x.requests {
			byKind[q.Verb+" "+q.Resource]++
		}
	}
	slices.Sort(counts)
	pick := func(f func(costSample) time.Duration) []time.Duration {
		d := make([]time.Duration, len(s))
		for i, x := range s {
			d[i] = f(x)
		}
		slices.Sort(d)
		return d
	}
	first, full, done := pick(func(x costSample) time.Duration { return x.first }), pick(func(x costSample) time.Duration { return x.full }), pick(func(x costSample) time.Duration { return x.done })
	// The path to 10 %, in three parts: shipbot until it writes the new
	// version's size (intake, the release, its first step), the control
	// plane until those pods are available, and shipbot again until the
	// VirtualService says 90/10.
	sized := pick(func(x costSample) time.Duration { return x.sized })
	start := pick(func(x costSample) time.Duration { return x.ready - x.sized })
	react := pick(func(x costSample) time.Duration { return x.first - x.ready })
	p50 := counts[len(counts)/2]
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(p50), "requests-p50/release")
	b.ReportMetric(ms(pct(first, 0.5)), "to-10%-p50-ms")
	b.ReportMetric(ms(pct(done, 0.5)), "to-done-p50-ms")

	var out strings.Builder
	fmt.Fprintf(&out, "\n%d canary releases (%d apps × %d rounds, one at a time), steps 10/50/100 without pauses, %d replicas; load %s\n\n",
		len(s), apps, costRounds, costReplicas, loadavg())
	fmt.Fprintf(&out, "apiserver requests per release by %q: p50 %d, min %d, max %d; target ≤ %d: %s\n",
		costUser, p50, counts[0], counts[len(counts)-1], targetRequests, metIf(p50 <= targetRequests))
	w := tabwriter.NewWriter(&out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "verb resource\tper release\t")
	for _, k := range slices.Sorted(maps.Keys(byKind)) {
		fmt.Fprintf(w, "%s\t%.1f\t\n", k, float64(byKind[k])/float64(len(s)))
	}
	w.Flush()
	fmt.Fprintln(&out)
	w = tabwriter.NewWriter(&out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "ms, from the webhook's 200\tp50\tp99\tmax\t")
	for _, row := range []struct {
		what string
		d    []time.Duration
	}{{"→ new version's size written (shipbot)", sized}, {"  then → its pods available (control plane)", start}, {"  then → 90/10 written and seen (shipbot)", react},
		{"→ 90/10 on the VirtualService", first}, {"→ 100 % on the new version", full}, {"→ Succeeded", done}} {
		fmt.Fprintf(w, "%s\t%.1f\t%.1f\t%.1f\t\n", row.what, ms(pct(row.d, 0.5)), ms(pct(row.d, 0.99)), ms(row.d[len(row.d)-1]))
	}
	w.Flush()
	fmt.Fprintf(&out, "→ 10 %%: target p50 ≤ %s and p99 ≤ %s: %s\n", targetFirstP50, targetFirstP99,
		metIf(pct(first, 0.5) <= targetFirstP50 && pct(first, 0.99) <= targetFirstP99))
	pods := map[int]int{}
	for _, x := range s {
		pods[x.pods]++
	}
	fmt.Fprintf(&out, "pods of the app at Succeeded (count: releases): %v, for %d replicas\n", pods, costReplicas)
	slowest := slices.Clone(s)
	slices.SortFunc(slowest, func(a, b costSample) int { return cmp.Compare(b.first, a.first) })
	fmt.Fprintf(&out, "slowest to 10 %%:")
	for _, x := range slowest[:min(3, len(slowest))] {
		fmt.Fprintf(&out, " %s %.1f ms (sized at %.1f, available at %.1f; sent %s);", x.release, ms(x.first), ms(x.sized), ms(x.ready), x.sent.Format("15:04:05.000"))
	}
	fmt.Fprintln(&out)
	fmt.Print(out.String())
}

func metIf(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}
