package govern_test

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shipbot/shipbot/bot/authz"
	"github.com/shipbot/shipbot/bot/gitlab"
	"github.com/shipbot/shipbot/bot/govern"
	"github.com/shipbot/shipbot/bot/ops"
	"github.com/shipbot/shipbot/deployer"
	"github.com/shipbot/shipbot/deployer/config"
	"github.com/shipbot/shipbot/deployer/release"
	"github.com/shipbot/shipbot/deployer/store"
	"github.com/shipbot/shipbot/test/cluster"
	"github.com/shipbot/shipbot/test/fakeclock"
	"github.com/shipbot/shipbot/test/fakegitlab"
)

// People on shop/web.
var (
	dev  = ops.Actor{Username: "dev", UserID: 801, Surface: release.SurfaceMRComment}
	mia  = ops.Actor{Username: "mia", UserID: 802, Surface: release.SurfaceMRComment}
	v100 = strings.Repeat("a", 40) // the commit tagged v1.0.0
	v110 = strings.Repeat("b", 40) // tagged v1.1.0, whose pipeline failed
	v120 = strings.Repeat("d", 40) // tagged v1.2.0, merged from MR !5
)

// deployRig is Deploys with the real ops door and authorizer against a
// fake GitLab, and a release engine on a real control plane.
type deployRig struct {
	t       *testing.T
	ns      string
	clock   *fakeclock.Clock
	deploys *govern.Deploys
	engine  *release.Stepper
	gl      *fakegitlab.Server
	cfg     *config.Config
	store   *store.Store
}

func newDeployRig(t *testing.T) *deployRig {
	t.Helper()
	return newDeployRigSpec(t, "{strategy: rolling}")
}

// newDeployRigSpec is newDeployRig with the app's release spec, as YAML
// flow on one line.
func newDeployRigSpec(t *testing.T, spec string) *deployRig {
	t.Helper()
	cluster.Require(t, testCluster)
	ns := testCluster.NewNamespace(t)
	fake, client := newGitLab(t)
	fake.SetMember(projectID, dev.UserID, int(gitlab.Developer))
	fake.SetMember(projectID, mia.UserID, int(gitlab.Maintainer))
	fake.SetTag(projectID, "v1.0.0", v100)
	fake.SetTag(projectID, "v1.1.0", v110)
	fake.AddPipeline(projectID, fakegitlab.Pipeline{SHA: v100, Ref: "v1.0.0", Tag: true, Status: "success"})
	fake.AddPipeline(projectID, fakegitlab.Pipeline{SHA: v110, Ref: "v1.1.0", Tag: true, Status: "failed"})
	fake.SetTag(projectID, "v1.2.0", v120)
	fake.AddPipeline(projectID, fakegitlab.Pipeline{SHA: v120, Ref: "v1.2.0", Tag: true, Status: "success"})
	cfg, err := config.Parse("shipbot.yaml", []byte(fmt.Sprintf(`gitlab: {baseURL: https://gitlab.example.com, webhookSecret: s3cret}
clusters: [{name: local, kubeconfig: /dev/null}]
environments:
  - {name: prod1, clusters: [local], namespace: %[1]s, refs: {tags: ['^v\d+\.\d+\.\d+$']}}
  - {name: prod2, clusters: [local], namespace: %[1]s, refs: {tags: ['^v\d+\.\d+\.\d+$']}}
apps:
  - name: web
    project: shop/web
    image: registry.local/web:{{.Ref}}
    params: {replicas: 1, ports: [{name: http, port: 8080}]}
    release: %[2]s
    environments: {prod1: {}, prod2: {}}
`, ns, spec)))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(t.TempDir(), "shipbot.db"), store.Options{LockTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c, err := release.NewCluster("local", testCluster.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	clk := fakeclock.New(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	eng, err := release.NewStepper(release.Options{Store: st, Clusters: release.ClusterMap{"local": c}, Clock: clk,
		Renderer: deployer.ReleaseRenderer{Config: cfg}, Log: quiet, MRApprovals: govern.MRApprovals{GitLab: client}})
	if err != nil {
		t.Fatal(err)
	}
	door := &ops.Service{Releases: eng, Log: quiet, Authz: authz.New(authz.Options{GitLab: client, Now: clk.Now, Log: quiet,
		RequiredAccess: func(string) gitlab.AccessLevel { return gitlab.Maintainer }})}
	d := &govern.Deploys{GitLab: client, Ops: door, Config: cfg, Store: st, Now: clk.Now, Log: quiet}
	return &deployRig{t: t, ns: ns, clock: clk, deploys: d, engine: eng, gl: fake, cfg: cfg, store: st}
}

// drive steps release id until it ends or waits for a person, moving the
// fake clock.
func (r *deployRig) drive(id string) release.Release {
	r.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		res, err := r.engine.Step(r.t.Context(), id)
		if err != nil {
			r.t.Fatalf("step: %v", err)
		}
		if res.Done || res.RequeueAfter == 0 || time.Now().After(deadline) {
			rel, _ := r.engine.Get(r.t.Context(), id)
			return rel
		}
		r.clock.Advance(res.RequeueAfter)
		time.Sleep(min(res.RequeueAfter, 25*time.Millisecond))
	}
}

func TestDeployVersionNeedsTheRoleAndABuild(t *testing.T) {
	r := newDeployRig(t)
	ctx := t.Context()

	_, err := r.deploys.Deploy(ctx, dev, project, "v1.0.0", "prod2")
	if !errors.Is(err, ops.ErrForbidden) || !strings.Contains(err.Error(), "dev is Developer on shop/web; prod2 needs Maintainer to deploy") {
		t.Fatalf("a Developer's deploy: %v", err)
	}
	if all, _ := r.engine.List(ctx, release.Filter{}); len(all) != 0 {
		t.Fatalf("a refused deploy recorded %d releases", len(all))
	}
	if _, err := r.deploys.Deploy(ctx, mia, project, "v1.1.0", "prod2"); !errors.Is(err, deployer.ErrInvalid) || !strings.Contains(err.Error(), "v1.1.0 has no successful pipeline") {
		t.Errorf("a failed build: %v", err)
	}
	if _, err := r.deploys.Deploy(ctx, mia, project, "v9.9.9", "prod2"); !errors.Is(err, deployer.ErrInvalid) || !strings.Contains(err.Error(), "shop/web has no tag or commit v9.9.9") {
		t.Errorf("an unknown tag: %v", err)
	}
	if _, err := r.deploys.Deploy(ctx, mia, project, "v1.0.0", "prod9"); err == nil || !strings.Contains(err.Error(), `no environment "prod9"`) {
		t.Errorf("an unknown environment: %v", err)
	}

	rels, err := r.deploys.Deploy(ctx, mia, project, "v1.0.0", "prod2")
	if err != nil || len(rels) != 1 {
		t.Fatalf("a Maintainer's deploy: %v (%d releases)", err, len(rels))
	}
	if rel := rels[0]; rel.Environment != "prod2" || rel.To.Ref != "v1.0.0" || rel.To.SHA != v100 || rel.TriggeredBy != "mia" || rel.PipelineID == 0 {
		t.Errorf("release %+v", rel)
	}
	done := r.drive(rels[0].ID)
	if done.Phase != release.Succeeded {
		t.Fatalf("release ended %s: %s", done.Phase, done.Reason)
	}
	d, err := testCluster.Client().AppsV1().Deployments(r.ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if img := d.Spec.Template.Spec.Containers[0].Image; img != "registry.local/web:v1.0.0" || d.Annotations["shipbot.io/environment"] != "prod2" {
		t.Errorf("deployment web: image %s, environment %s", img, d.Annotations["shipbot.io/environment"])
	}
}

func TestDeployVersionHonoursLocks(t *testing.T) {
	r := newDeployRig(t)
	if _, err := r.engine.LockEnvironment(t.Context(), release.Lock{Environment: "prod2", Holder: "max", Reason: "incident"}); err != nil {
		t.Fatal(err)
	}
	_, err := r.deploys.Deploy(t.Context(), mia, project, "v1.0.0", "prod2")
	var locked *ops.LockedError
	if !errors.As(err, &locked) || locked.Lock.Holder != "max" {
		t.Errorf("deploy into max's lock: %v", err)
	}
}
