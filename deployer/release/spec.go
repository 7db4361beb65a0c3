package release

import (
	"net/url"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Spec is how an app is released, as written in shipbot.yaml:
//
//	release:
//	  strategy: canary
//	  steps: [10, 50, 100]
//	  pauseAfter: [10]
//	  gates:
//	    - name: error-rate
//	      prometheus: {address: http://prometheus:9090, query: ..., op: "<", threshold: 0.01, interval: 1m, duration: 5m}
type Spec struct {
	Strategy         Strategy      `yaml:"strategy"`
	Steps            []Step        `yaml:"steps,omitempty"`      // canary weights or groups replica percentages, strictly increasing, ending at 100; a canary's may hold match and mirror stages
	PauseAfter       []int         `yaml:"pauseAfter,omitempty"` // steps after which to wait for approval
	Replicas         int32         `yaml:"replicas,omitempty"`
	MinAvailable     int32         `yaml:"minAvailable,omitempty"` // pods that must stay available during a shift; replicas when 0
	ProgressDeadline time.Duration `yaml:"progressDeadline,omitempty"`
	VirtualService   string        `yaml:"virtualService,omitempty"` // canary with Istio: the VirtualService to steer; the app's name when empty
	// Router is what steers a canary's traffic: istio (the default) or
	// gatewayAPI, which steers the HTTPRoute named HTTPRoute.
	Router    Router `yaml:"router,omitempty"`
	HTTPRoute string `yaml:"httpRoute,omitempty"` // canary with the Gateway API: the HTTPRoute to steer; the app's name when empty
	// CanaryScale is how many pods a canary's new version runs: full (the
	// default) from the start, or matchTraffic, its weight's share of the
	// replicas, scaled up and available before each weight is set.
	CanaryScale CanaryScale `yaml:"canaryScale,omitempty"`
	// AnyWeight lets promote move a release to any percent in 1..100, not
	// only to one of its steps.
	AnyWeight bool `yaml:"anyWeight,omitempty"`
	// Group releases the apps of one build that name the same group, on
	// every cluster of the environment, together: in step stage by stage,
	// and all rolled back when one fails.
	Group   string     `yaml:"group,omitempty"`
	Gates   []GateSpec `yaml:"gates,omitempty"`
	OnNewer OnNewer    `yaml:"onNewer,omitempty"` // what a newer tag does to an active release; queue when empty
	// RetireAfter is how long the Deployment of the version a release
	// replaced stays, at 0 replicas, once the release has ended, before it
	// is deleted; DefaultRetireAfter when 0.
	RetireAfter time.Duration `yaml:"retireAfter,omitempty"`
	// ScaleDownDelay is how long the version a canary or blue-green release
	// moved traffic off keeps its pods after the release is done, so that
	// proxies still routing to it by the old rules drain first; 0 scales it
	// down at once, and DefaultScaleDownDelay applies when unset.
	ScaleDownDelay *time.Duration `yaml:"scaleDownDelay,omitempty"`
	// RevisionHistory is how many old versions' Deployments, at 0 replicas,
	// are kept per app, environment and cluster; older ones are deleted.
	// DefaultRevisionHistory when unset.
	RevisionHistory *int32 `yaml:"revisionHistory,omitempty"`
}

// OnNewer says what happens when a newer tag of the same app and environment
// arrives while a release is active.
type OnNewer string

// OnNewer values. Queue is the default because abandoning a half-shifted
// release is a decision a person should make on purpose.
const (
	OnNewerQueue     OnNewer = "queue"     // the newer tag waits until the active release ends
	OnNewerSupersede OnNewer = "supersede" // the active release is stopped and the newer tag's starts in its place
)

// Supersedes reports whether a newer tag replaces the active release rather
// than waiting for it; an empty value queues.
func (o OnNewer) Supersedes() bool { return o == OnNewerSupersede }

// GateSpec places a gate on some or all steps.
type GateSpec struct {
	Gate  `yaml:",inline"`
	When  When  `yaml:"when,omitempty"`  // before or after (the default) the step's actions
	Steps []int `yaml:"steps,omitempty"` // the steps it guards; all when empty
}

// steps returns the steps, defaulted per strategy.
func (s Spec) steps() []Step {
	if len(s.Steps) == 0 {
		return Weights(100)
	}
	return s.Steps
}

// weights returns the weights of the plain steps, which pauseAfter and a
// gate's steps name.
func (s Spec) weights() []int { return weightsOf(s.steps()) }

// Stages turns a valid spec into a release's stages. A routing stage
// keeps the weight before it, pauses only with pause: true, and has the
// gates that guard every step.
func (s Spec) Stages() []Stage {
	var out []Stage
	weight := 0
	for _, step := range s.steps() {
		routes := step.Routes()
		if !routes {
			weight = step.Weight
		}
		st := Stage{Target: weight, Match: step.Match, Mirror: step.Mirror, Continue: Auto}
		if (!routes && slices.Contains(s.PauseAfter, weight)) || step.Pause {
			st.Continue = Manual
		}
		for _, g := range s.Gates {
			if len(g.Steps) > 0 && (routes || !slices.Contains(g.Steps, weight)) {
				continue
			}
			if g.When == Before {
				st.Before = append(st.Before, g.Gate)
			} else {
				st.After = append(st.After, g.Gate)
			}
		}
		out = append(out, st)
	}
	return out
}

// Validate reports every problem at once; each error is a *field.Error whose
// path uses the YAML names, e.g. "steps[2]".
func (s Spec) Validate() []error {
	var errs field.ErrorList
	switch s.Strategy {
	case Canary, Groups, BlueGreen, Rolling:
	case "":
		errs = append(errs, field.Required(field.NewPath("strategy"), "one of canary, groups, blue-green, rolling"))
	default:
		errs = append(errs, field.NotSupported(field.NewPath("strategy"), s.Strategy, []Strategy{Canary, Groups, BlueGreen, Rolling}))
	}
	errs = append(errs, validateSteps(field.NewPath("steps"), s.Strategy, s.Steps)...)
	for i, p := range s.PauseAfter {
		if !slices.Contains(s.weights(), p) {
			errs = append(errs, field.Invalid(field.NewPath("pauseAfter").Index(i), p, "is not one of the steps"))
		}
	}
	errs = append(errs, s.validateSizes()...)
	errs = append(errs, s.validateRouter()...)
	errs = append(errs, s.validateCanaryScale()...)
	if msgs := validation.IsDNS1123Label(s.Group); s.Group != "" && len(msgs) > 0 {
		errs = append(errs, field.Invalid(field.NewPath("group"), s.Group, msgs[0]))
	}
	if s.RetireAfter < 0 {
		errs = append(errs, field.Invalid(field.NewPath("retireAfter"), s.RetireAfter.String(), "must not be negative"))
	}
	if s.ScaleDownDelay != nil && *s.ScaleDownDelay < 0 {
		errs = append(errs, field.Invalid(field.NewPath("scaleDownDelay"), s.ScaleDownDelay.String(), "must not be negative; 0 scales down at once"))
	}
	if s.RevisionHistory != nil && *s.RevisionHistory < 0 {
		errs = append(errs, field.Invalid(field.NewPath("revisionHistory"), *s.RevisionHistory, "must not be negative; 0 keeps no old Deployment"))
	}
	switch s.OnNewer {
	case "", OnNewerQueue, OnNewerSupersede:
	default:
		errs = append(errs, field.NotSupported(field.NewPath("onNewer"), s.OnNewer, []OnNewer{OnNewerQueue, OnNewerSupersede}))
	}
	names := map[string]bool{}
	for i, g := range s.Gates {
		p := field.NewPath("gates").Index(i)
		if names[g.Name] {
			errs = append(errs, field.Duplicate(p.Child("name"), g.Name))
		}
		names[g.Name] = true
		errs = append(errs, g.validate(p, s.weights())...)
	}
	out := make([]error, len(errs))
	for i, e := range errs {
		out[i] = e
	}
	return out
}

func (s Spec) validateRouter() field.ErrorList {
	p := field.NewPath("router")
	switch {
	case s.Router == "":
		return nil
	case s.Router != RouterIstio && s.Router != RouterGatewayAPI:
		return field.ErrorList{field.NotSupported(p, s.Router, []Router{RouterIstio, RouterGatewayAPI})}
	case s.Strategy != Canary:
		return field.ErrorList{field.Invalid(p, s.Router, "only a canary is routed; "+string(s.Strategy)+" uses the Service alone")}
	}
	return nil
}

func (s Spec) validateSizes() field.ErrorList {
	var errs field.ErrorList
	if s.Replicas < 0 {
		errs = append(errs, field.Invalid(field.NewPath("replicas"), s.Replicas, "must be at least 0"))
	}
	if s.MinAvailable < 0 || (s.Replicas > 0 && s.MinAvailable > s.Replicas) {
		errs = append(errs, field.Invalid(field.NewPath("minAvailable"), s.MinAvailable, "must be between 0 and replicas"))
	}
	if s.ProgressDeadline < 0 {
		errs = append(errs, field.Invalid(field.NewPath("progressDeadline"), s.ProgressDeadline.String(), "must not be negative"))
	}
	return errs
}

func (g GateSpec) validate(p *field.Path, steps []int) field.ErrorList {
	var errs field.ErrorList
	if g.Name == "" {
		errs = append(errs, field.Required(p.Child("name"), ""))
	}
	switch kinds := countTrue(g.HTTP != nil, g.Prometheus != nil, g.MergeRequestApproval != nil); {
	case kinds == 0:
		errs = append(errs, field.Required(p, "one of http, prometheus or mergeRequestApproval"))
	case kinds > 1:
		errs = append(errs, field.Forbidden(p, "a gate is exactly one of http, prometheus and mergeRequestApproval"))
	case g.MergeRequestApproval != nil:
		errs = append(errs, g.MergeRequestApproval.validate(p.Child("mergeRequestApproval"))...)
	case g.HTTP != nil:
		errs = append(errs, validateURL(p.Child("http", "url"), g.HTTP.URL)...)
		errs = append(errs, nonNegative(p.Child("http"), map[string]time.Duration{"timeout": g.HTTP.Timeout, "interval": g.HTTP.Interval})...)
	default:
		errs = append(errs, g.Prometheus.validate(p.Child("prometheus"))...)
	}
	switch g.When {
	case "", Before, After:
	default:
		errs = append(errs, field.NotSupported(p.Child("when"), g.When, []When{Before, After}))
	}
	switch g.OnFailure {
	case "", FailRollback, FailPause:
	default:
		errs = append(errs, field.NotSupported(p.Child("onFailure"), g.OnFailure, []FailureAction{FailRollback, FailPause}))
	}
	for i, s := range g.Steps {
		if !slices.Contains(steps, s) {
			errs = append(errs, field.Invalid(p.Child("steps").Index(i), s, "is not one of the steps"))
		}
	}
	return errs
}

func countTrue(bs ...bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

func (pg *PrometheusGate) validate(p *field.Path) field.ErrorList {
	errs := validateURL(p.Child("address"), pg.Address)
	if pg.Query == "" {
		errs = append(errs, field.Required(p.Child("query"), ""))
	}
	ops := []string{"<", "<=", ">", ">=", "==", "!="}
	if !slices.Contains(ops, pg.Op) {
		errs = append(errs, field.NotSupported(p.Child("op"), pg.Op, ops))
	}
	if pg.FailureLimit < 0 {
		errs = append(errs, field.Invalid(p.Child("failureLimit"), pg.FailureLimit, "must be at least 0"))
	}
	return append(errs, nonNegative(p, map[string]time.Duration{"interval": pg.Interval, "duration": pg.Duration})...)
}

func validateURL(p *field.Path, raw string) field.ErrorList {
	if raw == "" {
		return field.ErrorList{field.Required(p, "")}
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// Not echoed: a hook URL may carry a token.
		return field.ErrorList{field.Invalid(p, "<redacted>", "must be an absolute http or https URL")}
	}
	return nil
}

func nonNegative(p *field.Path, ds map[string]time.Duration) field.ErrorList {
	var errs field.ErrorList
	for _, k := range []string{"timeout", "interval", "duration"} {
		if d, ok := ds[k]; ok && d < 0 {
			errs = append(errs, field.Invalid(p.Child(k), d.String(), "must not be negative"))
		}
	}
	return errs
}

// Configure sets a release's strategy, stages and sizes from the spec.
func (s Spec) Configure(r *Release) {
	r.Strategy = s.Strategy
	r.Stages = s.Stages()
	r.Replicas, r.MinAvailable = s.Replicas, s.MinAvailable
	r.ProgressDeadline = s.ProgressDeadline
	r.VirtualService = s.VirtualService
	r.Router, r.HTTPRoute, r.AnyWeight = s.Router, s.HTTPRoute, s.AnyWeight
	r.CanaryScale = s.CanaryScale
	r.RetireAfter = s.RetireAfter
	r.ScaleDownDelay, r.RevisionHistory = s.ScaleDownDelay, s.RevisionHistory
}
