// Package release moves an app in one environment from one revision to the
// next through an ordered list of stages: canary traffic weights with Istio,
// replica groups behind one Service, blue-green or a plain rolling update.
//
// A Release is data. Surfaces (chat, MR comments, CLI, API) only record
// intents on it; the Stepper acts on them in Step, an ordered pipeline of
// idempotent actions that persists after each one, so a crash anywhere is
// resumed by the next Step, by this process or the next.
package release

import (
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	"github.com/shipbot/shipbot/deployer/errkind"
	"github.com/shipbot/shipbot/templates"
)

// Errors callers test with errors.Is; what users see is decided from them.
var (
	// ErrInvalid marks a request that can never succeed as made.
	ErrInvalid = errkind.New(errkind.Invalid, "invalid")
	// ErrConflict marks a request the release's current state does not allow.
	ErrConflict = errkind.New(errkind.Conflict, "conflict")
)

// Strategy names how a release moves from one revision to the next.
type Strategy string

// Strategies.
const (
	Canary    Strategy = "canary"     // Istio route weights between one Deployment per version
	Groups    Strategy = "groups"     // replica counts of one Deployment per version behind one Service
	BlueGreen Strategy = "blue-green" // new version at full size, then the Service selector flips
	Rolling   Strategy = "rolling"    // the Deployment's own rolling update, in one stage
)

// ContinueMode says what happens once a stage's target is reached and its gates pass.
type ContinueMode string

// Continue modes.
const (
	Auto   ContinueMode = "auto"   // go on to the next stage
	Manual ContinueMode = "manual" // pause until someone continues or promotes
)

// Revision is one version of the app.
type Revision struct {
	Name  string `json:"name"` // DNS label, e.g. v1-4-0; names the Deployment and its version label
	Image string `json:"image"`
	SHA   string `json:"sha,omitempty"`
	Ref   string `json:"ref,omitempty"`
}

// IsZero reports whether there is no revision, as in an app's first release.
func (v Revision) IsZero() bool { return v == Revision{} }

// Stage is one step of a release.
type Stage struct {
	Target int `json:"target"` // traffic weight (canary) or replica percentage (groups), 1..100; a match or mirror stage keeps the weight before it (0 first)
	// Match and Mirror make a canary's routing stage: requests with these
	// headers go to To, or Mirror % of requests are copied to To, for this
	// stage only, on top of the weight Target.
	Match    *Match       `json:"match,omitempty"`
	Mirror   int          `json:"mirror,omitempty"`
	Continue ContinueMode `json:"continue"` // auto or manual
	Before   []Gate       `json:"before,omitempty"`
	After    []Gate       `json:"after,omitempty"`
}

// Match selects requests by header values, compared exactly.
type Match struct {
	Headers map[string]string `json:"headers" yaml:"headers"`
}

// Routes reports whether the stage is a match or mirror stage, which promote cannot name.
func (s Stage) Routes() bool { return s.Match != nil || s.Mirror > 0 }

// Release is one move of app App in environment Environment from From to To.
type Release struct {
	ID          string   `json:"id"`
	App         string   `json:"app"`
	Project     string   `json:"project"`
	Environment string   `json:"environment"`
	Cluster     string   `json:"cluster"`
	Namespace   string   `json:"namespace"`
	From        Revision `json:"from,omitzero"`
	To          Revision `json:"to"`
	Strategy    Strategy `json:"strategy"`

	// Traceability: who and which build started the release.
	TriggeredBy string `json:"triggeredBy,omitempty"` // GitLab username
	PipelineID  int64  `json:"pipelineID,omitempty"`
	JobID       int64  `json:"jobID,omitempty"`
	JobName     string `json:"jobName,omitempty"`
	WebURL      string `json:"webURL,omitempty"` // the pipeline or tag page

	// After lists releases that must end before this one starts: those
	// ahead of it in the queue for the same target. Requires is a release
	// that must also have succeeded, the previous environment of a tag's
	// chain (prod1 before prod2); any other end of it aborts this one.
	After    []string `json:"after,omitempty"`
	Requires string   `json:"requires,omitempty"`
	// ResolveFrom makes the engine read From when the release starts: the
	// revision the last ended release of the same target left serving.
	ResolveFrom bool `json:"resolveFrom,omitempty"`
	// Group names the releases that move with this one (together.go):
	// in step, stage by stage, and rolled back together.
	Group string `json:"group,omitempty"`

	// Params render the app's objects; Image and Replicas come from the
	// revision and the release. Recorded here so that a resumed release
	// renders exactly what it started with.
	Params           templates.Params `json:"params"`
	Replicas         int32            `json:"replicas"`
	MinAvailable     int32            `json:"minAvailable"`
	ProgressDeadline time.Duration    `json:"progressDeadline"`
	VirtualService   string           `json:"virtualService,omitempty"` // canary with Istio: the VirtualService to steer; App when empty
	Router           Router           `json:"router,omitempty"`         // canary: istio (when empty) or gatewayAPI
	HTTPRoute        string           `json:"httpRoute,omitempty"`      // canary with the Gateway API: the HTTPRoute to steer; App when empty
	AnyWeight        bool             `json:"anyWeight,omitempty"`      // promote accepts any percent, not only the stages' targets
	RetireAfter      time.Duration    `json:"retireAfter,omitempty"`    // see Spec.RetireAfter; DefaultRetireAfter when 0
	// ScaleDownDelay and RevisionHistory: see Spec. Nil in a release stored
	// before they existed, which then gets the defaults.
	ScaleDownDelay  *time.Duration `json:"scaleDownDelay,omitempty"`
	RevisionHistory *int32         `json:"revisionHistory,omitempty"`
	// CanaryScale: see Spec; full in a canary stored before it existed.
	CanaryScale CanaryScale `json:"canaryScale,omitempty"`
	// CanaryPods is the size the scale action last gave To, with
	// matchTraffic; 0 until it has.
	CanaryPods int32 `json:"canaryPods,omitempty"`
	// Drain is the scale-down an ended release still owes the version it
	// moved traffic off; nil when it scaled that version down as it ended.
	Drain *Drain `json:"drain,omitempty"`
	// Workload and Service name the Deployment and the Service in To's
	// objects (templates.Workload), once rendered; App until then.
	Workload string `json:"workload,omitempty"`
	Service  string `json:"service,omitempty"`

	Stages  []Stage  `json:"stages"`
	Stage   int      `json:"stage"`   // stage being worked on or waiting to start; len(Stages) once all are done
	Percent int      `json:"percent"` // share of traffic or replicas on To last fully in effect
	Phase   Phase    `json:"phase"`
	Intents []Intent `json:"intents,omitempty"`
	Checks  []Check  `json:"checks,omitempty"`
	History []Entry  `json:"history,omitempty"`
	Reason  string   `json:"reason,omitempty"` // why it failed, rolled back or was aborted
	// Hold is the lock or freeze that keeps it from starting or moving on
	// now; nil when nothing does.
	Hold *Hold `json:"hold,omitempty"`
	// Override, once a person asked for it, releases it through freezes.
	Override *Override `json:"override,omitempty"`
	Created  time.Time `json:"created"`
	Updated  time.Time `json:"updated"`

	clock func() time.Time // the engine's clock, for history entries
	by    string           // actor of the intent being applied, for history entries
	via   Surface          // surface of the intent being applied, for history entries
	// announce holds the events emitted since the release was last saved;
	// the save puts them in the outbox in its own transaction (outbox.go).
	announce []Event
}

// EntryKind says what a history entry records.
type EntryKind string

// History entry kinds.
const (
	EntryIntent     EntryKind = "intent"
	EntryTransition EntryKind = "transition"
	EntryEvent      EntryKind = "event"
)

// Entry is one line of a release's audit history.
type Entry struct {
	At      time.Time `json:"at"`
	Actor   string    `json:"actor"`             // a person for intents and what they caused, EngineActor otherwise
	ChatID  string    `json:"chatID,omitempty"`  // the person's id on a chat surface, when it acted from one
	Surface Surface   `json:"surface,omitempty"` // where the person acted; empty for the engine
	Kind    EntryKind `json:"kind"`
	Phase   Phase     `json:"phase"` // phase after the entry
	Stage   int       `json:"stage"`
	Message string    `json:"message"`
	Intent  string    `json:"intent,omitempty"` // what an approval approves, as Intent.String(), e.g. "promote to 50 %"; empty on other entries
}

// EngineActor is the actor of what the engine does on its own.
const EngineActor = "shipbot"

func (r *Release) now() time.Time {
	if r.clock != nil {
		return r.clock()
	}
	return time.Now()
}

func (r *Release) actorOrEngine() string {
	if r.by != "" {
		return r.by
	}
	return EngineActor
}

// Target is the percentage of the current stage, or 100 once all are done.
func (r *Release) Target() int {
	if r.Stage < len(r.Stages) {
		return r.Stages[r.Stage].Target
	}
	return 100
}

// Validate checks what a release needs before its first step.
func (r *Release) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for _, f := range []struct{ name, v string }{{"app", r.App}, {"to.name", r.To.Name}, {"namespace", r.Namespace}} {
		if msgs := validation.IsDNS1123Label(f.v); len(msgs) > 0 {
			add("%s %q: %s", f.name, f.v, msgs[0])
		}
	}
	if !r.From.IsZero() && len(validation.IsDNS1123Label(r.From.Name)) > 0 {
		add("from.name %q is not a DNS label", r.From.Name)
	}
	if r.From.Name != "" && r.From.Name == r.To.Name {
		add("from and to are both %q", r.To.Name)
	}
	if r.To.Image == "" {
		add("to.image is empty")
	}
	if r.Cluster == "" {
		add("cluster is empty")
	}
	if r.ScaleDownDelay != nil && *r.ScaleDownDelay < 0 {
		add("scaleDownDelay %s must not be negative", *r.ScaleDownDelay)
	}
	if r.RevisionHistory != nil && *r.RevisionHistory < 0 {
		add("revisionHistory %d must not be negative", *r.RevisionHistory)
	}
	switch {
	case r.CanaryScale == "" || r.CanaryScale == CanaryScaleFull:
	case r.CanaryScale != CanaryScaleMatchTraffic:
		add("canaryScale %q: want %s or %s", r.CanaryScale, CanaryScaleFull, CanaryScaleMatchTraffic)
	case r.Strategy != Canary:
		add("canaryScale %s: only a canary sizes its new version by weight, not %s", r.CanaryScale, r.Strategy)
	}
	if r.Replicas < 1 || r.MinAvailable > r.Replicas || r.MinAvailable < 0 {
		add("replicas %d, minAvailable %d: need replicas ≥ 1 and 0 ≤ minAvailable ≤ replicas", r.Replicas, r.MinAvailable)
	}
	for _, err := range validateSteps(field.NewPath("stages"), r.Strategy, r.steps()) {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("release of %s %s: %w: %w", r.App, r.To.Name, ErrInvalid, err)
	}
	return nil
}

// targets lists the weights of the stages that set one, which promote names.
func (r *Release) targets() []int { return weightsOf(r.steps()) }

// steps turns the stages back into the steps they were made of.
func (r *Release) steps() []Step {
	out := make([]Step, len(r.Stages))
	for i, s := range r.Stages {
		out[i] = Step{Weight: s.Target, Match: s.Match, Mirror: s.Mirror}
		if s.Routes() {
			out[i].Weight = 0
		}
	}
	return out
}

// setDefaults fills what a new release may leave out.
func (r *Release) setDefaults() {
	if r.Strategy == "" {
		r.Strategy = Rolling
	}
	if r.Replicas == 0 {
		r.Replicas = max(r.Params.Replicas, 1)
	}
	if r.MinAvailable == 0 {
		r.MinAvailable = r.Replicas
	}
	if r.ProgressDeadline == 0 {
		r.ProgressDeadline = DefaultProgressDeadline
	}
	if r.VirtualService == "" {
		r.VirtualService = r.App
	}
	if r.Strategy == Canary && r.Router == "" {
		r.Router = RouterIstio
	}
	if r.Strategy == Canary && r.CanaryScale == "" {
		r.CanaryScale = CanaryScaleFull
	}
	if r.HTTPRoute == "" && r.Router == RouterGatewayAPI {
		r.HTTPRoute = r.App
	}
	// Spelled out, so that what a stored release shows is what applies.
	r.ScaleDownDelay = ptr.To(r.scaleDownDelay())
	r.RevisionHistory = ptr.To(r.revisionHistory())
	switch {
	case len(r.Stages) == 0:
		r.Stages = []Stage{{Target: 100, Continue: Auto}}
	case r.From.IsZero() && !r.ResolveFrom:
		// Nothing to shift traffic away from: a first release goes straight to
		// 100 %, keeping the last stage's gates.
		r.Stages = r.Stages[len(r.Stages)-1:]
	}
	for i := range r.Stages {
		if r.Stages[i].Continue == "" {
			r.Stages[i].Continue = Auto
		}
	}
}

// DefaultProgressDeadline bounds how long a stage waits for its pods.
const DefaultProgressDeadline = 10 * time.Minute
