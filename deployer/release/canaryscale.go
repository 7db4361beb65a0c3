package release

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// CanaryScale says how many pods a canary's new version runs while it
// takes part of the traffic.
type CanaryScale string

// Canary scales. Full is the default: the new version already has every
// pod when it reaches 100 %, so promotion is instant.
const (
	CanaryScaleFull         CanaryScale = "full"         // every replica from the first stage on
	CanaryScaleMatchTraffic CanaryScale = "matchTraffic" // ceil(replicas × weight / 100), at least 1, before each weight
)

// EntryScale is the kind of history entry that records a canary with
// matchTraffic sizing its new version for a weight.
const EntryScale EntryKind = "scale"

// matchesTraffic reports whether To is sized by the weight it is to take.
func (r *Release) matchesTraffic() bool {
	return r.Strategy == Canary && r.CanaryScale == CanaryScaleMatchTraffic
}

// canaryPods is the pods To needs for a stage at percent: all of them with
// full scale, else its share of the replicas, at least 1 (a header or
// mirror stage at weight 0 still serves requests). A mirror copies its
// percent of the requests to To, so it counts as much as a weight.
func canaryPods(r *Release, percent int) int32 {
	if !r.matchesTraffic() || percent >= 100 {
		return r.Replicas
	}
	if k := r.Stage; k < len(r.Stages) && r.Stages[k].Target == percent {
		percent = max(percent, r.Stages[k].Mirror)
	}
	return max(int32((int(r.Replicas)*percent+99)/100), 1)
}

// scaleFor sizes To for the weight the stage is about to set, before
// SetTarget moves any traffic to it, and records it as its own action: the
// Deployment's size is scaled before it is saved, so a restart between the
// two scales again (a no-op the view answers) and records it once.
func (s *stepper) scaleFor(ctx context.Context, target int) error {
	r := s.r
	if !r.matchesTraffic() {
		return nil
	}
	want := canaryPods(r, target)
	name := versionName(r, r.To)
	if r.CanaryPods == want {
		// Recorded already; this puts right someone else's scaling, and
		// sends nothing when the view shows the size.
		return s.w.scale(ctx, r, name, want)
	}
	return s.act(ctx, "scale", func(ctx context.Context, r *Release) error {
		if err := s.w.scale(ctx, r, name, want); err != nil {
			return err
		}
		r.CanaryPods = want
		r.note(EntryScale, fmt.Sprintf("scaled %s to %d of %d pods for %s", name, want, r.Replicas, r.Stages[r.Stage].Label()))
		return nil
	})
}

// validateCanaryScale accepts a canary scale on a canary only: the other
// strategies size their versions themselves.
func (s Spec) validateCanaryScale() field.ErrorList {
	p := field.NewPath("canaryScale")
	why := map[Strategy]string{
		Groups:    "groups already runs each version at its step's share of the replicas",
		BlueGreen: "blue-green runs the new version at full size before it switches",
		Rolling:   "rolling has a single Deployment",
	}
	switch {
	case s.CanaryScale == "":
		return nil
	case s.CanaryScale != CanaryScaleFull && s.CanaryScale != CanaryScaleMatchTraffic:
		return field.ErrorList{field.NotSupported(p, s.CanaryScale, []CanaryScale{CanaryScaleFull, CanaryScaleMatchTraffic})}
	case s.Strategy != Canary && why[s.Strategy] != "":
		return field.ErrorList{field.Invalid(p, s.CanaryScale, "only a canary sizes its new version by weight; "+why[s.Strategy])}
	}
	return nil
}
