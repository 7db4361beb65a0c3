package main

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shipbot/shipbot/bot/api"
	"github.com/shipbot/shipbot/deployer/release"
	"github.com/shipbot/shipbot/test/cluster"
	"github.com/shipbot/shipbot/test/fixtures"
)

// prepareProd creates what a team has in prod before shipbot releases
// there: the namespace, and a VirtualService with one route to the app's
// Service, which shipbot splits during a canary and restores after it.
func (d *demo) prepareProd(ctx context.Context) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: prodNamespace}}
	if _, err := d.cluster.Client().CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		return err
	}
	if err := cluster.TeamVirtualService(ctx, d.istio, prodNamespace, app); err != nil {
		return err
	}
	say(fmt.Sprintf("the team's namespace %s and VirtualService %s (one route to Service %s) are in place", prodNamespace, app, app))
	return nil
}

// tag pushes the next tag, v1.<n>.0, built by carol, and returns the release
// it starts in prod.
func (d *demo) tag(ctx context.Context) (api.Release, error) {
	n := d.version
	d.version++
	v := fmt.Sprintf("v1.%d.0", n)
	err := d.pipeline(ctx, fixtures.Build{ProjectID: projectID, Project: project, Ref: v, Tag: true,
		SHA: tagSHA(n), PipelineID: int64(3000 + n), Username: "carol"})
	if err != nil {
		return api.Release{}, err
	}
	var rel api.Release
	err = poll(ctx, d.o.timeout, v+"'s release", func() (bool, error) {
		page, err := d.api.List(ctx, api.Query{App: app, Environment: "prod"})
		for _, r := range page.Items {
			if r.To.Ref == v {
				rel = r
				return true, nil
			}
		}
		return false, err
	})
	if err == nil {
		err = d.checkDashboard(ctx, rel.ID)
	}
	if err == nil {
		fmt.Printf("\n  release      %s of %s to prod\n  dashboard    %s\n\n", rel.ID, v, d.dashboardURL(rel.ID))
		fmt.Printf("  %-8s  %-11s  %-28s  %s\n", "time", "phase", "VirtualService "+app, "shipbot's summary")
	}
	return rel, err
}

// checkDashboard makes sure the dashboard URL the demo prints answers.
func (d *demo) checkDashboard(ctx context.Context, id string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.dashboardURL(id), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("dashboard %s answered %d", d.dashboardURL(id), resp.StatusCode)
	}
	return nil
}

// follow prints the release's moves as they happen, its phase and stage and
// the weights read back from the VirtualService, until done holds. It
// prints a state once, however many calls see it.
func (d *demo) follow(ctx context.Context, id, what string, done func(api.Release) bool) (api.Release, error) {
	var rel api.Release
	err := poll(ctx, d.o.timeout, what, func() (bool, error) {
		r, err := d.api.Get(ctx, id)
		if err != nil {
			return false, err
		}
		w, err := d.weights(ctx)
		if err != nil {
			return false, err
		}
		rel = r
		if now := fmt.Sprint(r.ID, r.Phase, r.Stage, r.Percent, w); now != d.shown {
			d.shown = now
			fmt.Printf("  %s  %-11s  %-28s  %s\n", time.Now().Format("15:04:05"), r.Phase, w, r.Summary)
		}
		return done(r), nil
	})
	return rel, err
}

// ended holds once the release has ended, however it ended.
func ended(r api.Release) bool { return r.Phase.Terminal() }

// settled holds once the release waits for a person or has ended.
func settled(r api.Release) bool { return r.Phase == release.Paused || ended(r) }

// settledAfter holds once the engine has acted on intent seq and the
// release has settled since.
func settledAfter(seq int) func(api.Release) bool {
	return func(r api.Release) bool { return !intent(r, seq).Done.IsZero() && settled(r) }
}

// intent is r's intent seq; the zero Intent when r has none such.
func intent(r api.Release, seq int) release.Intent {
	if i := slices.IndexFunc(r.Intents, func(in release.Intent) bool { return in.Seq == seq }); i >= 0 {
		return r.Intents[i]
	}
	return release.Intent{}
}

// weights are a VirtualService's route weights by subset, the revision
// names; "" is a route to the plain Service, as before shipbot split it.
type weights map[string]int32

func (w weights) String() string {
	if len(w) == 0 {
		return "none yet"
	}
	var parts []string
	for _, subset := range slices.Sorted(maps.Keys(w)) {
		name := subset
		if name == "" {
			name = "Service " + app
		}
		parts = append(parts, fmt.Sprintf("%s %d %%", name, w[subset]))
	}
	return strings.Join(parts, " · ")
}

// weights reads the app's VirtualService in prod.
func (d *demo) weights(ctx context.Context) (weights, error) {
	w, err := cluster.RouteWeights(ctx, d.istio, prodNamespace, app)
	if apierrors.IsNotFound(err) {
		return weights{}, nil
	}
	return w, err
}

func (d *demo) dashboardURL(id string) string { return "http://" + d.o.listen + "/releases/" + id }
