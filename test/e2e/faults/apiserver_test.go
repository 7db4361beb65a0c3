package faults

import (
	"context"
	"testing"
	"time"

	"github.com/shipbot/shipbot/deployer/release"
)

// outage is how long the kube-apiserver stays stopped (issue 10).
const outage = 20 * time.Second

// The kube-apiserver stops for 20 s just as a person continues a release
// paused at 50 %, and a newer tag is pushed meanwhile. The release
// neither fails nor rolls back: it waits, its history says the step
// failed and why, and once the apiserver is back it goes to 100 %. The
// tag acknowledged during the outage starts its release after it.
func TestAPIServerOutage(t *testing.T) {
	r := newRig(t)
	r.start(r.config("", ""))
	r.tag("v1.0.0", 100)
	r.release("v1.0.0", "succeeded", time.Minute, succeeded)
	r.tag("v1.1.0", 101)
	rel := r.release("v1.1.0", "paused at 50 %", time.Minute, pausedAtHalf)
	r.waitWeights(map[string]int32{"v1-0-0": 50, "v1-1-0": 50})

	if err := kc.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	restarted := false
	t.Cleanup(func() { // the other tests need it
		if !restarted {
			if err := kc.RestartAPIServer(context.Background()); err != nil {
				t.Error(err)
			}
		}
	})
	r.continueRelease(rel.ID)
	r.tag("v1.2.0", 102)
	r.waitSays(rel.ID, outage/2, release.EntryRetry, "step failed; trying again in", "connection refused")
	for time.Since(stopped) < outage {
		x := r.get(rel.ID)
		if x.Phase != release.Progressing {
			t.Fatalf("during the outage the release is %s, want Progressing, waiting:\n%s", x.Phase, lines(x.History))
		}
		time.Sleep(500 * time.Millisecond)
	}

	if err := kc.RestartAPIServer(context.Background()); err != nil {
		t.Fatal(err)
	}
	restarted = true
	t.Logf("apiserver back after %s", time.Since(stopped).Round(time.Second))
	done := r.release("v1.1.0", "succeeded at 100 % after the outage", time.Minute, func(x release.Release) bool {
		return succeeded(x) && x.Percent == 100
	})
	if n := count(done.History, release.EntryRetry); n == 0 || n > 3 {
		t.Errorf("%d retry entries, want one per cause of failure:\n%s", n, lines(done.History))
	}
	for _, e := range done.History {
		if e.Kind == release.EntryRetry {
			t.Logf("history: %s", e.Message)
		}
	}
	r.inboxEmpty()
	r.release("v1.2.0", "queued, then paused at 50 %", time.Minute, pausedAtHalf)
	r.waitWeights(map[string]int32{"v1-1-0": 50, "v1-2-0": 50})
}

// get reads release id now.
func (r *rig) get(id string) release.Release {
	r.t.Helper()
	x, err := r.m.Releases().Get(context.Background(), id)
	if err != nil {
		r.t.Fatal(err)
	}
	return x
}

func count(h []release.Entry, kind release.EntryKind) int {
	n := 0
	for _, e := range h {
		if e.Kind == kind {
			n++
		}
	}
	return n
}
