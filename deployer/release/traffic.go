package release

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Router names the API that steers a canary's traffic.
type Router string

// Routers.
const (
	RouterIstio      Router = "istio"      // VirtualService weights between DestinationRule subsets
	RouterGatewayAPI Router = "gatewayAPI" // HTTPRoute backendRef weights between a Service per version
)

// routeNamePrefix marks the routes shipbot adds for a stage, such as a
// header route: they are its own, and restore removes them.
const routeNamePrefix = "shipbot-"

// matchRouteName is the route that sends requests matching a stage's
// headers to To.
const matchRouteName = routeNamePrefix + "canary-match"

// trafficRouter steers an app's requests between its versions, on the
// routes shipbot owns and on nothing else. Every method is idempotent.
type trafficRouter interface {
	// backends makes each version addressable on its own, as a
	// DestinationRule subset or a Service, and drops the others'.
	backends(ctx context.Context, versions ...Revision) error
	// ensure adopts the routes: it remembers their original spec and, if
	// they are not split by version yet, splits them at r.Percent.
	ensure(ctx context.Context) error
	// steer makes shipbot's routes do what rt says.
	steer(ctx context.Context, rt routing) error
	// current reads what shipbot's routes do now.
	current(ctx context.Context) (routing, error)
	// restore puts shipbot's routes back as the original had them and
	// removes the routes it added.
	restore(ctx context.Context) error
}

// routing is what a stage asks of the routes: the share of requests on
// To, and optionally requests with some headers sent to To whatever the
// weight, and a share of all requests copied (mirrored) to To.
type routing struct {
	weight int
	match  map[string]string // header name → exact value; nil: no header route
	mirror int               // percent mirrored to To; 0: none
}

func (rt routing) equal(o routing) bool {
	return rt.weight == o.weight && rt.mirror == o.mirror && maps.Equal(rt.match, o.match)
}

// String says what the routing does, e.g. "10 %, mirror 20 %".
func (rt routing) String() string {
	s := fmt.Sprintf("%d %%", rt.weight)
	if len(rt.match) > 0 {
		s += ", " + describeHeaders(rt.match) + " → new"
	}
	if rt.mirror > 0 {
		s += fmt.Sprintf(", mirror %d %%", rt.mirror)
	}
	return s
}

// describeHeaders lists headers sorted by name, e.g. "x-canary=true".
func describeHeaders(h map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(h)) {
		parts = append(parts, k+"="+h[k])
	}
	return strings.Join(parts, ", ")
}

// stageRouting is the routing of the release's current stage at percent;
// once every stage is done, only the weight.
func (r *Release) stageRouting(percent int) routing {
	rt := routing{weight: percent}
	if r.Stage < len(r.Stages) {
		s := r.Stages[r.Stage]
		if s.Match != nil {
			rt.match = s.Match.Headers
		}
		rt.mirror = s.Mirror
	}
	return rt
}

// router is the release's router, Istio when it names none.
func (r *Release) router() Router {
	if r.Router == "" {
		return RouterIstio
	}
	return r.Router
}
