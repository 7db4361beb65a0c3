package releases

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shipbot/shipbot/bot/api"
	"github.com/shipbot/shipbot/deployer/release"
	"github.com/shipbot/shipbot/test/e2e/proc"
	"github.com/shipbot/shipbot/test/fixtures"
)

// gatedCanary pauses after 10 % and holds stage 2 (50 %) on an HTTP gate.
const gatedCanary = `strategy: canary
steps: [10, 50, 100]
pauseAfter: [10]
scaleDownDelay: 1s
gates:
  - name: smoke
    steps: [50]
    http: {url: "%s", interval: 200ms, timeout: 5m}`

// kill -9 of the real shipbot binary, between two stages and in the middle
// of one: each restarted process, on the same bbolt file and config, resumes
// the release where the store left it, and it ends as an uninterrupted one
// would, with every stage in its history once.
func TestCrashKill9ResumesRelease(t *testing.T) {
	r := newRig(t, "prod1")
	bin := shipbotBinary(t)
	g := newGate(t)
	addr := proc.FreeAddr(t)
	cfg := r.configFile(fmt.Sprintf(gatedCanary, g.url()), addr)
	cl := &api.Client{Server: "http://" + addr, Token: apiToken}
	rs := apiReleases{cl}

	g.gen.Store(1)
	p1 := proc.Start(t, bin, cfg, addr, "shipbot-1")
	tag(t, addr, "v1.0.0", '1', 100)
	waitRelease(t, rs, "prod1", "v1-0-0", "succeeded", phaseIs(release.Succeeded))
	r.waitWeights("prod1", map[string]int32{"": 100})
	r.wantReplicas("prod1", map[string]int32{"v1-0-0": 2})
	r.wantSubsets("prod1", "v1-0-0")

	tag(t, addr, "v1.1.0", '2', 101)
	rel := waitRelease(t, rs, "prod1", "v1-1-0", "paused after stage 1", pausedAt(1))
	r.waitWeights("prod1", map[string]int32{"v1-0-0": 90, "v1-1-0": 10})
	r.wantReplicas("prod1", map[string]int32{"v1-0-0": 2, "v1-1-0": 2})
	r.wantSubsets("prod1", "v1-0-0", "v1-1-0")
	paused := get(t, cl, rel.ID)

	// Between stages: the release waits for a person when the process dies.
	g.gen.Store(0)
	p1.Kill9()
	g.gen.Store(2)
	p2 := proc.Start(t, bin, cfg, addr, "shipbot-2")
	// The restarted runner steps the release at once; give it a second
	// to (wrongly) do something.
	holds(t, time.Second, "after kill -9 between stages", func() error {
		got := get(t, cl, rel.ID)
		if got.Phase != release.Paused || got.Stage != 1 || got.Percent != 10 {
			return fmt.Errorf("%s stage %d at %d %%, want Paused at stage 1 (index) at 10 %%", got.Phase, got.Stage, got.Percent)
		}
		return sameHistory(paused.History, got.History)
	})
	r.wantWeights("prod1", map[string]int32{"v1-0-0": 90, "v1-1-0": 10})
	r.wantReplicas("prod1", map[string]int32{"v1-0-0": 2, "v1-1-0": 2})
	proc.CLI(t, bin, "releases", "continue", rel.ID, "--server", "http://"+addr, "--token", apiToken, "--as", "alice", "--comment", "after a crash")

	// Inside stage 2: 50 % is in effect and its gate is pending; the process
	// dies while it waits for the gate's answer.
	inGate := func(r release.Release) bool { return r.Phase == release.Verifying && r.Stage == 1 }
	waitRelease(t, rs, "prod1", "v1-1-0", "waiting for stage 2's gate", inGate)
	r.waitWeights("prod1", map[string]int32{"v1-0-0": 50, "v1-1-0": 50})
	r.wantReplicas("prod1", map[string]int32{"v1-0-0": 2, "v1-1-0": 2})
	r.wantSubsets("prod1", "v1-0-0", "v1-1-0")
	fixtures.Eventually(t, 30*time.Second, "shipbot-2 asks the gate", func() error { return g.asked(2, 1) })
	held := g.holdNext()
	select {
	case <-held:
	case <-time.After(20 * time.Second):
		t.Fatal("shipbot-2 did not ask the gate again within 20s")
	}
	waiting := get(t, cl, rel.ID) // the step in hand is stuck in the gate's request: this is what the store holds
	g.gen.Store(0)
	p2.Kill9()
	g.gen.Store(3)
	proc.Start(t, bin, cfg, addr, "shipbot-3")
	if got := get(t, cl, rel.ID); !inGate(got) || got.Percent != 50 {
		t.Fatalf("after the restart: %s stage %d at %d %%, want Verifying stage 1 (index) at 50 %%", got.Phase, got.Stage, got.Percent)
	}
	r.wantReplicas("prod1", map[string]int32{"v1-0-0": 2, "v1-1-0": 2})
	before := smokeCheck(t, waiting)
	fixtures.Eventually(t, 30*time.Second, "shipbot-3 carries on with the gate", func() error {
		if err := g.asked(3, 1); err != nil {
			return err
		}
		c := smokeCheck(t, get(t, cl, rel.ID))
		if c.Runs <= before.Runs {
			return fmt.Errorf("gate check has %d runs, had %d before the crash", c.Runs, before.Runs)
		}
		if !c.Started.Equal(before.Started) {
			t.Fatalf("gate check started again at %s; it had started at %s", c.Started, before.Started)
		}
		return nil
	})
	// Pending runs add nothing to the history: shipbot-3 has stepped the
	// release and it reads as when shipbot-2 died.
	if err := sameHistory(waiting.History, get(t, cl, rel.ID).History); err != nil {
		t.Errorf("after kill -9 inside stage 2: %v", err)
	}
	r.wantWeights("prod1", map[string]int32{"v1-0-0": 50, "v1-1-0": 50})

	g.pass()
	done := waitRelease(t, rs, "prod1", "v1-1-0", "succeeded", phaseIs(release.Succeeded))
	r.waitWeights("prod1", map[string]int32{"": 100}) // the team's route, as it was
	r.wantReplicas("prod1", map[string]int32{"v1-0-0": 0, "v1-1-0": 2})
	r.wantSubsets("prod1", "v1-1-0")
	if done.Stage != 3 || done.Percent != 100 {
		t.Errorf("end: stage %d at %d %%, want 3 (all done) at 100 %%", done.Stage, done.Percent)
	}
	final := get(t, cl, rel.ID)
	wantEachStageOnce(t, final.History)
	g.wantCalls(t, rel.ID, smokeCheck(t, final).Runs)
	var intents []string
	for _, in := range final.Intents {
		intents = append(intents, fmt.Sprintf("%s/%s/%s/%s", in.Actor, in.Surface, in.Kind, in.Outcome))
	}
	if want := []string{"alice/cli/continue/applied"}; !slices.Equal(intents, want) {
		t.Errorf("intents %v, want %v", intents, want)
	}
}

// configFile writes the rig's config, serving on addr, and returns its path.
func (r *rig) configFile(spec, addr string) string {
	r.t.Helper()
	text := r.config(spec)
	const ephemeral = "listen: 127.0.0.1:0\n"
	if !strings.Contains(text, ephemeral) {
		r.t.Fatalf("the rig's config no longer listens on %q", ephemeral)
	}
	path := filepath.Join(r.t.TempDir(), "shipbot.yaml")
	if err := os.WriteFile(path, []byte(strings.Replace(text, ephemeral, "listen: "+addr+"\n", 1)), 0o600); err != nil {
		r.t.Fatal(err)
	}
	return path
}

// apiReleases reads releases through a running shipbot's API: the bbolt
// file is locked by the process that serves it.
type apiReleases struct{ c *api.Client }

func (a apiReleases) List(ctx context.Context, f release.Filter) ([]release.Release, error) {
	page, err := a.c.List(ctx, api.Query{App: f.App, Environment: f.Environment})
	var out []release.Release
	for _, it := range page.Items {
		out = append(out, it.Release)
	}
	return out, err
}

// get reads one release, with its checks and history, through the API.
func get(t *testing.T, c *api.Client, id string) release.Release {
	t.Helper()
	r, err := c.Get(t.Context(), id)
	if err != nil {
		t.Fatalf("get release %s: %v", id, err)
	}
	return r.Release
}

func smokeCheck(t *testing.T, r release.Release) release.Check {
	t.Helper()
	for _, c := range r.Checks {
		if c.Gate == "smoke" {
			if c.Stage != 1 || c.When != release.After {
				t.Errorf("smoke check ran in stage %d (index) %s, want stage 1 after", c.Stage, c.When)
			}
			return c
		}
	}
	t.Fatalf("release %s has no check of gate smoke: %+v", r.ID, r.Checks)
	return release.Check{}
}

// wantWeights checks the route weights now, without waiting.
func (r *rig) wantWeights(env string, want map[string]int32) {
	r.t.Helper()
	got, err := r.weights(env)
	if err != nil {
		r.t.Fatal(err)
	}
	if !maps.Equal(got, want) {
		r.t.Errorf("%s: weights %v, want %v", env, got, want)
	}
}

// wantReplicas checks spec.replicas of web-<rev> for each rev in want.
func (r *rig) wantReplicas(env string, want map[string]int32) {
	r.t.Helper()
	for _, rev := range slices.Sorted(maps.Keys(want)) {
		if n := r.replicas(env, rev); n != want[rev] {
			r.t.Errorf("%s: web-%s has %d replicas, want %d", env, rev, n, want[rev])
		}
	}
}

// wantSubsets checks that the DestinationRule has exactly one subset per
// rev, in order, each selecting its version label.
func (r *rig) wantSubsets(env string, revs ...string) {
	r.t.Helper()
	dr, err := r.istio.NetworkingV1().DestinationRules(r.ns[env]).Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil {
		r.t.Fatal(err)
	}
	var got []string
	for _, s := range dr.Spec.Subsets {
		got = append(got, s.Name+"="+s.Labels[release.LabelVersion])
	}
	var want []string
	for _, v := range revs {
		want = append(want, v+"="+v)
	}
	if !slices.Equal(got, want) {
		r.t.Errorf("%s: destination rule subsets %v, want %v", env, got, want)
	}
}

// holds checks cond again and again for d, failing at its first error.
func holds(t *testing.T, d time.Duration, what string, cond func() error) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if err := cond(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
}

// sameHistory says how a history changed, if it did.
func sameHistory(before, after []release.Entry) error {
	same := slices.EqualFunc(before, after, func(a, b release.Entry) bool {
		return a.At.Equal(b.At) && timeless(a) == timeless(b)
	})
	if !same {
		return fmt.Errorf("history changed\nbefore:\n%s\nafter:\n%s", lines(before), lines(after))
	}
	return nil
}

// wantEachStageOnce checks that every stage started, was verified and
// completed exactly once, and that no history entry is repeated.
func wantEachStageOnce(t *testing.T, h []release.Entry) {
	t.Helper()
	seen := map[string]int{}
	for _, e := range h {
		seen[fmt.Sprintf("%+v", timeless(e))]++
	}
	for k, n := range seen {
		if n > 1 {
			t.Errorf("history repeats %d times: %s", n, k)
		}
	}
	count := func(match func(string) bool) int {
		n := 0
		for _, e := range h {
			if match(e.Message) {
				n++
			}
		}
		return n
	}
	var want []string
	for i, target := range []int{10, 50, 100} {
		want = append(want,
			fmt.Sprintf("StageStarted: stage %d/3: moving to %d %%", i+1, target),
			fmt.Sprintf("Progressing → Verifying: stage %d/3 at %d %%", i+1, target),
			fmt.Sprintf("StageCompleted: stage %d/3 at %d %%", i+1, target))
	}
	for _, w := range want {
		if n := count(func(m string) bool { return m == w }); n != 1 {
			t.Errorf("history has %q %d times, want once", w, n)
		}
	}
	for _, w := range []string{"WaitingForGate: after gate smoke", "GatePassed: after gate smoke", "Verifying → Paused: stage 1/3 done",
		"Paused → Progressing: continue by alice via cli", "Progressing → Succeeded"} {
		if n := count(func(m string) bool { return strings.HasPrefix(m, w) }); n != 1 {
			t.Errorf("history has %q… %d times, want once", w, n)
		}
	}
	if t.Failed() {
		t.Logf("history:\n%s", lines(h))
	}
}

// timeless is e without its time, for comparing entries.
func timeless(e release.Entry) release.Entry {
	e.At = time.Time{}
	return e
}

func lines(h []release.Entry) string {
	var b strings.Builder
	for _, e := range h {
		fmt.Fprintf(&b, "  %s %-10s %-11s stage=%d %s: %s\n", e.At.Format("15:04:05.000"), e.Kind, e.Phase, e.Stage, e.Actor, e.Message)
	}
	return b.String()
}

// gate is an HTTP hook gate the test controls: it answers 202 (pending)
// until pass is called, then 200. Each call is tagged with gen, the number
// of the shipbot process that may call it, read when the connection is
// accepted: a process cannot open a connection before it starts or after it
// has been killed, so the tag tells which process asked.
type gate struct {
	srv *httptest.Server
	gen atomic.Int32 // 0 while no shipbot runs

	mu     sync.Mutex
	passed bool
	hold   chan struct{} // closed by the next call, which then never answers
	calls  []gateCall
}

type gateCall struct {
	gen     int32
	status  int // 0 for a call that was held until its caller died
	release string
	stage   int
	target  int
	gate    string
	when    release.When
	at      time.Time // when the call came
}

type genKey struct{}

func newGate(t *testing.T) *gate {
	g := &gate{}
	g.srv = httptest.NewUnstartedServer(g)
	g.srv.Config.ConnContext = func(ctx context.Context, _ net.Conn) context.Context {
		return context.WithValue(ctx, genKey{}, g.gen.Load())
	}
	g.srv.Start()
	t.Cleanup(g.srv.Close)
	return g
}

func (g *gate) url() string { return g.srv.URL + "/gate" }

func (g *gate) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	var p struct {
		Release string       `json:"release"`
		Stage   int          `json:"stage"`
		Target  int          `json:"target"`
		Gate    string       `json:"gate"`
		When    release.When `json:"when"`
	}
	_ = json.NewDecoder(req.Body).Decode(&p)
	gen, _ := req.Context().Value(genKey{}).(int32)
	c := gateCall{gen: gen, release: p.Release, stage: p.Stage, target: p.Target, gate: p.Gate, when: p.When, at: time.Now()}
	g.mu.Lock()
	hold := g.hold
	g.hold = nil
	switch {
	case hold != nil:
	case g.passed:
		c.status = http.StatusOK
	default:
		c.status = http.StatusAccepted
	}
	g.calls = append(g.calls, c)
	g.mu.Unlock()
	if hold != nil {
		close(hold)
		<-req.Context().Done() // the caller is gone
		return
	}
	w.WriteHeader(c.status)
	fmt.Fprintln(w, http.StatusText(c.status))
}

// holdNext makes the next call hang until its caller dies; the channel is
// closed once that call has arrived.
func (g *gate) holdNext() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.hold = make(chan struct{})
	return g.hold
}

func (g *gate) pass() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.passed = true
}

// asked reports whether process gen has called at least n times.
func (g *gate) asked(gen int32, n int) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	got := 0
	for _, c := range g.calls {
		if c.gen == gen {
			got++
		}
	}
	if got < n {
		return fmt.Errorf("process %d called the gate %d times, want at least %d", gen, got, n)
	}
	return nil
}

// firstCall is when process gen first called the gate; zero if it has not.
func (g *gate) firstCall(gen int32) time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, c := range g.calls {
		if c.gen == gen {
			return c.at
		}
	}
	return time.Time{}
}

// wantCalls checks the gate's calls: all for stage 2 of release id, from
// shipbot-2 and then shipbot-3 only, the last one the only pass, and
// every call but the one cut off by the kill counted in the stored check's
// runs: no evaluation is lost or counted twice across the crash.
func (g *gate) wantCalls(t *testing.T, id string, runs int) {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	byGen := map[int32]int{}
	var statuses []int
	for _, c := range g.calls {
		byGen[c.gen]++
		statuses = append(statuses, c.status)
		if c.release != id || c.stage != 2 || c.target != 50 || c.gate != "smoke" || c.when != release.After {
			t.Errorf("gate call %+v, want release %s, stage 2, target 50, gate smoke, after", c, id)
		}
	}
	if byGen[2] < 2 || byGen[3] < 2 || len(byGen) != 2 {
		t.Errorf("gate calls by process %v, want at least 2 from shipbot-2 (one held) and 2 from shipbot-3, none from others", byGen)
	}
	if i := slices.Index(statuses, http.StatusOK); i != len(statuses)-1 {
		t.Errorf("gate answers %v: want 200 once, last", statuses)
	}
	if held := slices.Index(statuses, 0); held < 0 || g.calls[held].gen != 2 || slices.Contains(statuses[held+1:], 0) {
		t.Errorf("gate answers %v: want one call held (0), from shipbot-2", statuses)
	}
	if runs != len(g.calls)-1 {
		t.Errorf("the gate check has %d runs; the gate saw %d calls, one of them cut off by the kill", runs, len(g.calls))
	}
}
