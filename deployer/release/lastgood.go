package release

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// RestorePath is how a target goes back to its last good version. Stored
// and sent as these strings.
type RestorePath string

// Restore paths.
const (
	// PathRollback: the active release moves from the last good version,
	// so its own rollback takes everything back to it.
	PathRollback RestorePath = "rollback"
	// PathRelease: a release of the last good version in one stage at
	// 100 %, with the parameters it last succeeded with; an active release
	// of the target is aborted first.
	PathRelease RestorePath = "release"
	// PathNone: the target already serves its last good version.
	PathNone RestorePath = "none"
)

// Restore is what going back to the last good version means for one app
// in one environment and cluster: what serves now, what last succeeded,
// the difference, and how it gets there.
type Restore struct {
	App         string      `json:"app"`
	Project     string      `json:"project"`
	Environment string      `json:"environment"`
	Cluster     string      `json:"cluster"`
	Namespace   string      `json:"namespace"`
	Current     Revision    `json:"current"`          // serving now, fully or partly
	Good        Revision    `json:"good"`             // the To of the last release that succeeded here
	GoodRelease string      `json:"goodRelease"`      // that release's id
	Active      string      `json:"active,omitempty"` // the release in progress here, if any
	Path        RestorePath `json:"path"`
	Diff        RestoreDiff `json:"diff"`
}

// RestoreDiff is what changes back, each line readable as it is.
type RestoreDiff struct {
	Image   string   `json:"image,omitempty"`   // "registry/web:1.1.0 → registry/web:1.0.0"
	Params  []string `json:"params,omitempty"`  // e.g. "replicas: 3 → 2"
	Objects []string `json:"objects,omitempty"` // e.g. "~ Deployment web-v1-0-0", "- ConfigMap web-extra"
}

// targetHistory is what PlanLastGood gathers per target, oldest first.
type targetHistory struct {
	good   *Release // newest Succeeded
	last   *Release // newest ended release that acted
	active *Release // oldest active: the one running, or first in the queue
}

// PlanLastGood finds, for every target of project (in env, when set), the
// last version that succeeded there and what going back to it changes. A
// target that never succeeded is left out: there is no good version.
func (e *Stepper) PlanLastGood(ctx context.Context, project, env string) ([]Restore, error) {
	all, err := e.all(ctx)
	if err != nil {
		return nil, err
	}
	hist, order := map[target]*targetHistory{}, []target{}
	for i := range all {
		r := &all[i]
		if r.Project != project || (env != "" && r.Environment != env) {
			continue
		}
		t := targetOf(*r)
		h := hist[t]
		if h == nil {
			h = &targetHistory{}
			hist[t], order = h, append(order, t)
		}
		switch {
		case r.Phase == Succeeded:
			h.good, h.last = r, r
		case r.Phase.Terminal() && r.acted():
			h.last = r
		case !r.Phase.Terminal() && h.active == nil:
			h.active = r
		}
	}
	var out []Restore
	for _, t := range order {
		if h := hist[t]; h.good != nil {
			out = append(out, e.restoreOf(ctx, h))
		}
	}
	return out, nil
}

// restoreOf plans one target.
func (e *Stepper) restoreOf(ctx context.Context, h *targetHistory) Restore {
	g := h.good
	rs := Restore{App: g.App, Project: g.Project, Environment: g.Environment, Cluster: g.Cluster, Namespace: g.Namespace,
		Good: g.To, GoodRelease: g.ID, Path: PathRelease}
	now := h.last // the release whose outcome serves now
	rs.Current = now.Left()
	if a := h.active; a != nil {
		rs.Active, now = a.ID, a
		if a.Percent > 0 || a.Phase != Pending {
			rs.Current = a.To
		}
		if a.From.Name == g.To.Name && !a.ResolveFrom && a.Phase != Pending {
			rs.Path = PathRollback
		}
	}
	if rs.Active == "" && rs.Current.Name == g.To.Name {
		rs.Path = PathNone
		return rs
	}
	rs.Diff = e.diff(ctx, now, rs.Current, g)
	return rs
}

// diff compares what serves now, as release cur records it, with the good
// release: image, parameters and rendered objects.
func (e *Stepper) diff(ctx context.Context, cur *Release, rev Revision, good *Release) RestoreDiff {
	var d RestoreDiff
	if rev.Image != good.To.Image {
		d.Image = orText(rev.Image, "nothing") + " → " + good.To.Image
	}
	d.Params = paramDiff(cur.Params, good.Params)
	if cur.Replicas != good.Replicas {
		d.Params = append(d.Params, fmt.Sprintf("replicas: %d → %d", cur.Replicas, good.Replicas))
	}
	d.Objects = e.objectDiff(ctx, cur, rev, good)
	return d
}

// paramDiff lists the parameters that differ, by their JSON paths.
func paramDiff(cur, good any) []string {
	a, b := flatten(cur), flatten(good)
	var out []string
	for k, v := range b {
		if a[k] != v {
			out = append(out, fmt.Sprintf("%s: %s → %s", k, orText(a[k], "unset"), v))
		}
	}
	for k, v := range a {
		if _, ok := b[k]; !ok {
			out = append(out, fmt.Sprintf("%s: %s → unset", k, v))
		}
	}
	slices.Sort(out)
	return out
}

// flatten turns v's JSON into path → value, e.g. "env[0].value" → "\"x\"".
func flatten(v any) map[string]string {
	raw, _ := json.Marshal(v)
	var doc any
	_ = json.Unmarshal(raw, &doc)
	out := map[string]string{}
	var walk func(prefix string, x any)
	walk = func(prefix string, x any) {
		switch t := x.(type) {
		case map[string]any:
			for k, c := range t {
				walk(strings.TrimPrefix(prefix+"."+k, "."), c)
			}
		case []any:
			for i, c := range t {
				walk(fmt.Sprintf("%s[%d]", prefix, i), c)
			}
		default:
			b, _ := json.Marshal(t)
			out[prefix] = string(b)
		}
	}
	walk("", doc)
	return out
}

// objectDiff renders both versions and lists the objects that would be
// added (+), removed (-) or changed (~). Annotations are left out: they
// name the release, which always differs. A render that fails is said.
func (e *Stepper) objectDiff(ctx context.Context, cur *Release, rev Revision, good *Release) []string {
	digests := func(r *Release, v Revision) (map[string]string, error) {
		if v.IsZero() {
			return map[string]string{}, nil
		}
		objs, err := e.render.Render(ctx, r, v)
		if err != nil {
			return nil, err
		}
		out := map[string]string{}
		for _, o := range objs {
			o = o.DeepCopy()
			o.SetAnnotations(nil)
			raw, _ := json.Marshal(o.Object)
			sum := sha256.Sum256(raw)
			out[o.GetKind()+" "+o.GetName()] = hex.EncodeToString(sum[:8])
		}
		return out, nil
	}
	a, err := digests(cur, rev)
	if err != nil {
		return []string{"cannot render " + rev.Name + ": " + err.Error()}
	}
	b, err := digests(good, good.To)
	if err != nil {
		return []string{"cannot render " + good.To.Name + ": " + err.Error()}
	}
	var out []string
	for k, v := range b {
		switch w, ok := a[k]; {
		case !ok:
			out = append(out, "+ "+k)
		case w != v:
			out = append(out, "~ "+k)
		}
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			out = append(out, "- "+k)
		}
	}
	slices.Sort(out)
	return out
}

// PlanDigest names a plan, so that what a person confirmed is what is
// applied: a plan that changed since (a release moved on) has another.
func PlanDigest(plan []Restore) string {
	raw, _ := json.Marshal(plan)
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:6])
}
