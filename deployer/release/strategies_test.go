package release

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shipbot/shipbot/test/cluster"
)

// watchAvailability counts, every few milliseconds and from one List, the
// app's pods that are Ready and not terminating, and returns the lowest count seen.
func (h *harness) watchAvailability() (stop func() int) {
	ctx, cancel := context.WithCancel(h.t.Context())
	var wg sync.WaitGroup
	lowest, samples := 1<<30, 0
	wg.Go(func() {
		for ctx.Err() == nil {
			pods, err := testCluster.Client().CoreV1().Pods(h.ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
			if err == nil {
				lowest, samples = min(lowest, readyPods(pods.Items)), samples+1
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
	return func() int {
		cancel()
		wg.Wait()
		if samples < 10 {
			h.t.Fatalf("availability sampled only %d times", samples)
		}
		h.t.Logf("availability: lowest %d ready pods over %d samples", lowest, samples)
		return lowest
	}
}

func readyPods(pods []corev1.Pod) int {
	n := 0
	for _, p := range pods {
		if p.DeletionTimestamp != nil {
			continue
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				n++
			}
		}
	}
	return n
}

func TestGroupsShiftReplicasKeepingAvailability(t *testing.T) {
	tests := []struct {
		name    string
		steps   []int
		min     int32
		atStage [][2]int32 // v1, v2 desired replicas after each stage
	}{
		{"10 replicas, [50, 100]", []int{50, 100}, 10, [][2]int32{{5, 5}, {0, 10}}},
		{"10 replicas, [10, 25, 100], min 8", []int{10, 25, 100}, 8, [][2]int32{{9, 1}, {7, 3}, {0, 10}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.initial(Groups, 10)
			var stages []Stage
			for _, s := range tt.steps {
				stages = append(stages, Stage{Target: s, Continue: Manual})
			}
			rel := h.release(Groups, "v1-0-0", "v2-0-0", 10, stages...)
			rel.MinAvailable = tt.min
			r := h.create(rel)
			stop := h.watchAvailability()
			for i, want := range tt.atStage {
				r = h.drive(r.ID, func(r Release) bool { return r.Phase == Paused && r.Stage == i+1 })
				v1, v2 := h.replicas("web-v1-0-0"), h.replicas("web-v2-0-0")
				if v1 > want[0] || v2 < want[1] || v1+v2 != 10 {
					t.Errorf("after stage %d (%d %%): v1=%d v2=%d, want v1 ≤ %d, v2 ≥ %d, 10 in all", i+1, tt.steps[i], v1, v2, want[0], want[1])
				}
				if sel := h.selector(); sel[LabelVersion] != "" {
					t.Errorf("service selects %v, want both versions", sel)
				}
				h.record(r.ID, IntentContinue, 0)
			}
			h.drive(r.ID, phaseIs(Succeeded))
			if lowest := stop(); lowest < int(tt.min) {
				t.Errorf("only %d pods were available at one point, minimum is %d", lowest, tt.min)
			}
			if v1, v2 := h.replicas("web-v1-0-0"), h.replicas("web-v2-0-0"); v1 != 0 || v2 != 10 {
				t.Errorf("at the end: v1=%d v2=%d, want 0 10", v1, v2)
			}
		})
	}
}

func TestGroupsRollbackAtStage1(t *testing.T) {
	h := newHarness(t)
	h.initial(Groups, 10)
	r := h.create(h.release(Groups, "v1-0-0", "v2-0-0", 10, Stage{Target: 50, Continue: Manual}, Stage{Target: 100}))
	r = h.drive(r.ID, phaseIs(Paused))
	stop := h.watchAvailability()
	h.record(r.ID, IntentRollback, 0)
	h.drive(r.ID, phaseIs(RolledBack))
	if lowest := stop(); lowest < 10 {
		t.Errorf("only %d pods available during rollback", lowest)
	}
	if v1, v2 := h.replicas("web-v1-0-0"), h.replicas("web-v2-0-0"); v1 != 10 || v2 != 0 {
		t.Errorf("after rollback: v1=%d v2=%d, want 10 0", v1, v2)
	}
}

func TestBlueGreenFlipsTheSelector(t *testing.T) {
	for _, end := range []Phase{Succeeded, RolledBack} {
		t.Run(string(end), func(t *testing.T) {
			h := newHarness(t)
			h.initial(BlueGreen, 3)
			if sel := h.selector(); sel[LabelVersion] != "v1-0-0" {
				t.Fatalf("after the first release the service selects %v", sel)
			}
			r := h.create(h.release(BlueGreen, "v1-0-0", "v2-0-0", 3, Stage{Target: 100, Continue: Manual}))
			r = h.drive(r.ID, phaseIs(Paused))
			if sel := h.selector(); sel[LabelVersion] != "v2-0-0" {
				t.Errorf("after the switch the service selects %v", sel)
			}
			if v1, v2 := h.replicas("web-v1-0-0"), h.replicas("web-v2-0-0"); v1 != 3 || v2 != 3 {
				t.Errorf("while verifying: v1=%d v2=%d, want 3 3 (old kept for rollback)", v1, v2)
			}
			want := [2]int32{0, 3}
			if end == Succeeded {
				h.record(r.ID, IntentContinue, 0)
			} else {
				h.record(r.ID, IntentRollback, 0)
				want = [2]int32{3, 0}
			}
			h.drive(r.ID, phaseIs(end))
			if v1, v2 := h.replicas("web-v1-0-0"), h.replicas("web-v2-0-0"); v1 != 3 || v2 != 3 {
				t.Errorf("%s, in the scale-down delay: v1=%d v2=%d, want 3 3", end, v1, v2)
			}
			h.drainOld(r.ID)
			if v1, v2 := h.replicas("web-v1-0-0"), h.replicas("web-v2-0-0"); v1 != want[0] || v2 != want[1] {
				t.Errorf("%s: v1=%d v2=%d, want %v", end, v1, v2, want)
			}
			wantSel := map[Phase]string{Succeeded: "v2-0-0", RolledBack: "v1-0-0"}[end]
			if sel := h.selector(); sel[LabelVersion] != wantSel {
				t.Errorf("%s: service selects %v, want version %s", end, sel, wantSel)
			}
		})
	}
}

func TestRollingUpdatesOneDeployment(t *testing.T) {
	h := newHarness(t)
	h.initial(Rolling, 3)
	r := h.create(h.release(Rolling, "v1-0-0", "v2-0-0", 3))
	h.drive(r.ID, phaseIs(Succeeded))
	d, err := testCluster.Client().AppsV1().Deployments(h.ns).Get(t.Context(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if img := d.Spec.Template.Spec.Containers[0].Image; img != "registry.local/web:v2.0.0" || *d.Spec.Replicas != 3 || d.Status.AvailableReplicas != 3 {
		t.Errorf("deployment web: image %s, replicas %d, available %d", img, *d.Spec.Replicas, d.Status.AvailableReplicas)
	}
}

// A stage whose pods never become available fails at the progress deadline
// with the pods' own reason, and rolls back.
func TestProgressDeadlineRollsBackWithPodReason(t *testing.T) {
	h := newHarness(t)
	h.initial(Rolling, 2)
	rel := h.release(Rolling, "v1-0-0", "v2-0-0", 2)
	rel.To.Image = cluster.BadImageRegistry + "web:v2"
	rel.ProgressDeadline = time.Minute
	r := h.create(rel)
	r = h.drive(r.ID, phaseIs(RolledBack))
	if !strings.Contains(r.Reason, "progress deadline") || !strings.Contains(r.Reason, "ImagePullBackOff") {
		t.Errorf("reason %q, want the deadline and ImagePullBackOff", r.Reason)
	}
	d, err := testCluster.Client().AppsV1().Deployments(h.ns).Get(t.Context(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if img := d.Spec.Template.Spec.Containers[0].Image; img != "registry.local/web:v1.0.0" {
		t.Errorf("image after rollback %s", img)
	}
	t.Logf("reason: %s", r.Reason)
}

// A first release has nothing to roll back to: a crash-looping one fails.
func TestFirstReleaseFailsWithPodReason(t *testing.T) {
	h := newHarness(t)
	rel := h.release(Canary, "", "v1-0-0", 1)
	rel.To.Image = "web" + cluster.CrashLoopTag
	rel.ProgressDeadline = 30 * time.Second
	r := h.create(rel)
	r = h.drive(r.ID, phaseIs(Failed))
	if !strings.Contains(r.Reason, "CrashLoopBackOff") {
		t.Errorf("reason %q, want CrashLoopBackOff", r.Reason)
	}
	if got := Describe(r, h.clock.Now()); !strings.HasPrefix(got, "failed at stage 1/1 · 0 % · not available within the progress deadline") {
		t.Errorf("Describe = %q", got)
	}
}
