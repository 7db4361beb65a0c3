package release

import (
	"strings"
	"testing"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// retire runs Retire and returns the retirement entries of release id.
func (h *harness) retire(id string) []string {
	h.t.Helper()
	if _, err := h.e.Retire(h.t.Context()); err != nil {
		h.t.Fatalf("retire: %v", err)
	}
	var out []string
	for _, e := range h.get(id).History {
		if e.Kind == EntryRetired {
			out = append(out, e.Message)
		}
	}
	return out
}

// After a release, the version it replaced stays at 0 replicas for the
// delay, then its Deployment is deleted once; the version serving, and one
// a later release moves from, are never touched.
func TestRetireDeletesTheReplacedVersionAfterTheDelay(t *testing.T) {
	h := newHarness(t)
	h.initial(Groups, 2)
	r := h.release(Groups, "v1-0-0", "v2-0-0", 2, Stage{Target: 100})
	r.RetireAfter = 30 * time.Minute
	r = h.create(r)
	done := h.drive(r.ID, phaseIs(Succeeded))
	if h.replicas("web-v1-0-0") != 0 {
		t.Fatalf("v1 at %d replicas after the release, want 0", h.replicas("web-v1-0-0"))
	}

	h.clock.Advance(29 * time.Minute)
	next, err := h.e.Retire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got := h.replicas("web-v1-0-0"); got != 0 || !next.Equal(done.Updated.Add(30*time.Minute)) {
		t.Fatalf("before the delay: v1 replicas %d (want 0, kept), next %s (want %s)", got, next, done.Updated.Add(30*time.Minute))
	}

	h.clock.Advance(2 * time.Minute)
	got := h.retire(r.ID)
	if len(got) != 1 || !strings.HasPrefix(got[0], "deleted Deployment web-v1-0-0") {
		t.Fatalf("retirements %q, want v1's Deployment deleted", got)
	}
	eventuallyGone(t, h, "web-v1-0-0")
	if n := h.replicas("web-v2-0-0"); n != 2 {
		t.Errorf("the serving version has %d replicas, want 2", n)
	}
	// Once only; the first release left v1 serving then, but v1 is not
	// what serves now, and v2 is never retired.
	if again := h.retire(r.ID); len(again) != 1 {
		t.Errorf("retired again: %q", again)
	}
}

func TestRetireKeepsWhatIsInUseOrTouched(t *testing.T) {
	h := newHarness(t)
	h.initial(Groups, 2)
	r := h.create(h.release(Groups, "v1-0-0", "v2-0-0", 2, Stage{Target: 100}))
	h.drive(r.ID, phaseIs(Succeeded))

	// Someone scales v1 back up by hand: it is theirs now.
	if _, err := testCluster.Client().AppsV1().Deployments(h.ns).UpdateScale(t.Context(), "web-v1-0-0",
		scaleTo(t, h, "web-v1-0-0", 1), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	// And a new release moves from v2 to v3, paused half way.
	r3 := h.create(h.release(Groups, "v2-0-0", "v3-0-0", 2, Stage{Target: 50, Continue: Manual}, Stage{Target: 100}))
	h.drive(r3.ID, phaseIs(Paused))

	h.clock.Advance(2 * DefaultRetireAfter)
	got := h.retire(r.ID)
	if len(got) != 1 || got[0] != "kept Deployment web-v1-0-0: someone scaled it to 1 since" {
		t.Errorf("retirements %q, want v1 kept because someone scaled it", got)
	}
	if h.replicas("web-v1-0-0") != 1 || h.replicas("web-v2-0-0") < 1 || h.replicas("web-v3-0-0") < 1 {
		t.Errorf("replicas v1 %d v2 %d v3 %d; want all kept", h.replicas("web-v1-0-0"), h.replicas("web-v2-0-0"), h.replicas("web-v3-0-0"))
	}
}

func eventuallyGone(t *testing.T, h *harness, name string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for h.replicas(name) != -1 {
		if time.Now().After(deadline) {
			t.Fatalf("Deployment %s still exists", name)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func scaleTo(t *testing.T, h *harness, name string, n int32) *autoscalingv1.Scale {
	t.Helper()
	s, err := testCluster.Client().AppsV1().Deployments(h.ns).GetScale(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.Spec.Replicas = n
	return s
}
