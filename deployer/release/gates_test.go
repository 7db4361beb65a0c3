package release

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// hook is an HTTP gate endpoint whose answers the test scripts.
type hook struct {
	mu       sync.Mutex
	payloads []gatePayload
	answer   func(call int) int
}

func (k *hook) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	var p gatePayload
	if err := json.NewDecoder(req.Body).Decode(&p); err != nil || req.Method != http.MethodPost {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	k.mu.Lock()
	k.payloads = append(k.payloads, p)
	code := k.answer(len(k.payloads))
	k.mu.Unlock()
	w.WriteHeader(code)
	_, _ = w.Write([]byte(http.StatusText(code)))
}

func (k *hook) calls() []gatePayload {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.payloads)
}

func newHook(t *testing.T, answer func(call int) int) (*hook, string) {
	k := &hook{answer: answer}
	srv := httptest.NewServer(k)
	t.Cleanup(srv.Close)
	return k, srv.URL + "/gate?token=s3cret"
}

func TestHTTPGateFailureRollsBack(t *testing.T) {
	h := newHarness(t)
	orig := h.foreignVirtualService()
	h.initial(Canary, 2)
	k, url := newHook(t, func(int) int { return http.StatusInternalServerError })
	r := canaryV2(h, Stage{Target: 10, After: []Gate{{Name: "smoke", HTTP: &HTTPGate{URL: url}}}}, Stage{Target: 100})
	r = h.drive(r.ID, phaseIs(RolledBack))
	r = h.drainOld(r.ID)

	if want := "gate smoke failed: HTTP 500: Internal Server Error"; r.Reason != want {
		t.Errorf("reason %q, want %q", r.Reason, want)
	}
	calls := k.calls()
	if len(calls) != 1 || calls[0].Release != r.ID || calls[0].Stage != 1 || calls[0].Target != 10 || calls[0].When != After || calls[0].To.Name != "v2-0-0" {
		t.Errorf("hook got %+v", calls)
	}
	h.wantOriginal(orig)
	if v2 := h.replicas("web-v2-0-0"); v2 != 0 {
		t.Errorf("v2 replicas %d after rollback", v2)
	}
	got := h.reasons(r.ID)
	for _, want := range []Reason{ReasonGateFailed, ReasonRollingBack, ReasonRolledBack} {
		if !slices.Contains(got, want) {
			t.Errorf("events %v lack %s", got, want)
		}
	}
	for _, e := range r.History {
		if strings.Contains(e.Message, "s3cret") {
			t.Errorf("history leaks the hook's token: %s", e.Message)
		}
	}
}

func TestHTTPGatePendingThenPassing(t *testing.T) {
	h := newHarness(t)
	h.foreignVirtualService()
	h.initial(Canary, 2)
	accepted := http.StatusAccepted
	k, url := newHook(t, func(call int) int { return map[bool]int{true: accepted, false: http.StatusOK}[call <= 2] })
	gate := Gate{Name: "approval-bot", HTTP: &HTTPGate{URL: url, Interval: 15 * time.Second, Timeout: 5 * time.Minute}}
	r := canaryV2(h, Stage{Target: 10, After: []Gate{gate}}, Stage{Target: 100})

	start := h.clock.Now()
	r = h.drive(r.ID, func(r Release) bool { return r.Phase == Verifying })
	if c := r.runningCheck(); c == nil || c.Gate != "approval-bot" || c.Runs != 1 {
		t.Fatalf("check %+v, want approval-bot pending after 1 run", c)
	}
	if w := h.weights(); w["v2-0-0"] != 10 {
		t.Errorf("while the gate is pending: weights %v, want 10 on v2", w)
	}
	if got := Describe(r, h.clock.Now()); got != "stage 1/2 · 10 % · after gate approval-bot, run 1 0s" {
		t.Errorf("Describe = %q", got)
	}
	r = h.drive(r.ID, phaseIs(Succeeded))
	if n := len(k.calls()); n != 3 {
		t.Errorf("hook called %d times, want 3 (two 202s, then 200)", n)
	}
	if waited := h.clock.Now().Sub(start); waited < 30*time.Second {
		t.Errorf("clock moved %s, want ≥ two 15s intervals", waited)
	}
	got := h.reasons(r.ID)
	if n := count(got, ReasonWaitingForGate); n != 1 || !slices.Contains(got, ReasonGatePassed) {
		t.Errorf("events %v: want one WaitingForGate and a GatePassed", got)
	}
}

func TestHTTPGatePendingPastTimeoutRollsBack(t *testing.T) {
	h := newHarness(t)
	h.foreignVirtualService()
	h.initial(Canary, 2)
	_, url := newHook(t, func(int) int { return http.StatusAccepted })
	gate := Gate{Name: "slow", HTTP: &HTTPGate{URL: url, Interval: 10 * time.Second, Timeout: time.Minute}}
	r := canaryV2(h, Stage{Target: 10, After: []Gate{gate}}, Stage{Target: 100})
	r = h.drive(r.ID, phaseIs(RolledBack))
	if !strings.Contains(r.Reason, "gate slow failed: still pending (HTTP 202: Accepted) after 1m0s") {
		t.Errorf("reason %q", r.Reason)
	}
}

// A before-gate that fails with onFailure: pause holds the stage before any
// traffic moves; once the hook is fixed, continue runs it again.
func TestBeforeGatePausesThenContinues(t *testing.T) {
	h := newHarness(t)
	h.foreignVirtualService()
	h.initial(Canary, 2)
	var mu sync.Mutex
	code := http.StatusForbidden
	_, url := newHook(t, func(int) int { mu.Lock(); defer mu.Unlock(); return code })
	gate := Gate{Name: "change-window", HTTP: &HTTPGate{URL: url}, OnFailure: FailPause}
	r := canaryV2(h, Stage{Target: 10, Before: []Gate{gate}}, Stage{Target: 100})
	r = h.drive(r.ID, phaseIs(Paused))
	if w := h.weights(); w["v2-0-0"] != 0 || w["v1-0-0"] != 100 {
		t.Errorf("weights %v: traffic moved before the gate passed", w)
	}
	if got := Describe(r, h.clock.Now()); got != "stage 1/2 · 0 % · paused: gate change-window failed (HTTP 403: Forbidden) 0s" {
		t.Errorf("Describe = %q", got)
	}
	mu.Lock()
	code = http.StatusOK
	mu.Unlock()
	h.record(r.ID, IntentContinue, 0)
	h.drive(r.ID, phaseIs(Succeeded))
}

// Pausing while a gate is pending drops its progress: continue starts it over.
func TestPauseDuringPendingGateRestartsIt(t *testing.T) {
	h := newHarness(t)
	h.foreignVirtualService()
	h.initial(Canary, 2)
	k, url := newHook(t, func(call int) int { return map[bool]int{true: http.StatusAccepted, false: http.StatusOK}[call <= 2] })
	gate := Gate{Name: "soak", HTTP: &HTTPGate{URL: url, Interval: 10 * time.Second}}
	r := canaryV2(h, Stage{Target: 10, After: []Gate{gate}}, Stage{Target: 100})
	h.drive(r.ID, func(r Release) bool { return r.Phase == Verifying })
	h.record(r.ID, IntentPause, 0)
	r = h.drive(r.ID, phaseIs(Paused))
	if len(r.Checks) != 1 || r.Checks[0].When != Pods {
		t.Errorf("checks after pause %+v, want only the passed pods check", r.Checks)
	}
	if got := Describe(r, h.clock.Now()); got != "stage 1/2 · 10 % · paused by alice 0s" {
		t.Errorf("Describe = %q", got)
	}
	h.record(r.ID, IntentContinue, 0)
	h.drive(r.ID, phaseIs(Succeeded))
	if n := len(k.calls()); n != 3 {
		t.Errorf("hook called %d times, want 3", n)
	}
}

func count[T comparable](s []T, v T) int {
	n := 0
	for _, x := range s {
		if x == v {
			n++
		}
	}
	return n
}
