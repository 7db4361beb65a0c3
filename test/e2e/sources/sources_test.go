package sources

import (
	"fmt"
	"testing"
)

// kind is one source kind and what its test data renders.
type kind struct {
	source   string // the app's source, as shipbot.yaml has it
	workload string // the Deployment the test data renders and shipbot steers
	service  string // the Service in front of it
	ctr      string // the container that gets the pipeline's image
	// bluegreen has more keys for that environment, indented for it.
	bluegreen string
	// extra checks what else the source renders in env.
	extra func(r *rig, env string)
}

func TestHelm(t *testing.T) {
	t.Parallel()
	run(t, kind{
		source: fmt.Sprintf(`    source:
      helm:
        chart: %s
        valuesFiles: [%s]
        values: {greeting: from the app}
`, testdata(t, "helm/demo"), testdata(t, "helm/values-prod.yaml")),
		bluegreen: "        helm: {values: {greeting: from bluegreen}}\n",
		workload:  "web-demo", service: "web-demo", ctr: "web",
		extra: func(r *rig, env string) {
			// The chart's second Deployment is applied as it renders.
			r.wantDeployment(env, "web-demo-worker", "worker", "registry.example.com/shop/worker:1.0", 1, nil, false)
			want := "from the app"
			if env == "bluegreen" {
				want = "from bluegreen"
			}
			if got := greeting(r, env); got != want {
				r.t.Errorf("%s: greeting %q, want %q", env, got, want)
			}
		},
	})
}

func TestKustomize(t *testing.T) {
	t.Parallel()
	run(t, kind{
		source: fmt.Sprintf("    source:\n      kustomize: {path: %s, imageName: demo-api}\n", testdata(t, "kustomize/overlays/prod")),
		// The overlay's namePrefix names them.
		workload: "prod-api", service: "prod-api", ctr: "api",
	})
}

func TestManifests(t *testing.T) {
	t.Parallel()
	run(t, kind{
		source:   fmt.Sprintf("    source:\n      manifests: {path: %s, imageName: registry.example.com/shop/plain}\n", testdata(t, "manifests")),
		workload: "plain", service: "plain", ctr: "web",
		extra: func(r *rig, env string) {
			if img, _ := container(r.deployment(env, r.deployName(env, "plain")), "proxy"); img != "registry.example.com/tools/proxy:2" {
				r.t.Errorf("%s: the proxy's image changed to %s", env, img)
			}
		},
	})
}

// deployName is the Deployment a test looks at in env: the workload under
// its own name in dev, the released version's elsewhere.
func (r *rig) deployName(env, workload string) string {
	if env == "dev" {
		return workload
	}
	return "web-" + r.current[env]
}

// run deploys branch dev in one go, then releases v1.0.0 and v1.1.0 by
// canary and then by blue-green, checking the cluster after each stage.
func run(t *testing.T, k kind) {
	runWith(t, start(t, k.source, k.bluegreen), k)
}

// runWith is run on a shipbot already started.
func runWith(t *testing.T, r *rig, k kind) {
	extra := func(env string) {
		if k.extra != nil {
			k.extra(r, env)
		}
	}

	d := r.deployDev('a', 100)
	r.wantDeployment("dev", k.workload, k.ctr, "registry.example.com/shop/web:dev", 3, map[string]string{
		"shipbot.io/deployment": d.ID, "shipbot.io/sha": d.SHA, "shipbot.io/pipeline-id": "100", "shipbot.io/deployed-by": "rel-manager",
	}, false)
	extra("dev")

	// v1.0.0 is the first release: nothing to shift from, so the canary
	// goes straight to 100 %, and blue-green pauses once its Service
	// selects the new version.
	r.pipeline("v1.0.0", true, '1', 101)
	first := r.waitRelease("canary", "v1-0-0", "succeeded", succeeded)
	if first.Workload != k.workload || first.Service != k.service {
		t.Errorf("the release found Deployment %q and Service %q, want %q and %q", first.Workload, first.Service, k.workload, k.service)
	}
	r.current = map[string]string{"canary": "v1-0-0", "bluegreen": "v1-0-0"}
	r.wantDeployment("canary", "web-v1-0-0", k.ctr, "registry.example.com/shop/web:v1.0.0", 2, traced(first), true)
	r.waitWeights(k.service, map[string]int32{"": 100})
	extra("canary")
	bg := r.waitRelease("bluegreen", "v1-0-0", "paused after its one stage", pausedAt(1))
	if v := r.selects("bluegreen", k.service); v != "v1-0-0" {
		t.Errorf("bluegreen: %s selects version %q, want v1-0-0", k.service, v)
	}
	r.proceed(bg)
	r.waitRelease("bluegreen", "v1-0-0", "succeeded", succeeded)

	// v1.1.0 by canary: half the traffic, both versions at full size.
	r.pipeline("v1.1.0", true, '2', 102)
	rel := r.waitRelease("canary", "v1-1-0", "paused at 50 %", pausedAt(1))
	r.current["canary"] = "v1-1-0"
	r.waitWeights(k.service, map[string]int32{"v1-0-0": 50, "v1-1-0": 50})
	r.wantDeployment("canary", "web-v1-1-0", k.ctr, "registry.example.com/shop/web:v1.1.0", 2, traced(rel), true)
	r.wantDeployment("canary", "web-v1-0-0", k.ctr, "registry.example.com/shop/web:v1.0.0", 2, traced(first), true)
	extra("canary")
	r.proceed(rel)
	r.waitRelease("canary", "v1-1-0", "succeeded", succeeded)
	r.waitWeights(k.service, map[string]int32{"": 100})
	r.wantDeployment("canary", "web-v1-0-0", k.ctr, "registry.example.com/shop/web:v1.0.0", 0, nil, false)
	r.wantDeployment("canary", "web-v1-1-0", k.ctr, "registry.example.com/shop/web:v1.1.0", 2, traced(rel), true)

	// Then blue-green: v1-1-0 at full size and selected, v1-0-0 kept
	// running until a person continues.
	bg = r.waitRelease("bluegreen", "v1-1-0", "paused with the Service flipped", pausedAt(1))
	r.current["bluegreen"] = "v1-1-0"
	if v := r.selects("bluegreen", k.service); v != "v1-1-0" {
		t.Errorf("bluegreen: %s selects version %q, want v1-1-0", k.service, v)
	}
	r.wantDeployment("bluegreen", "web-v1-1-0", k.ctr, "registry.example.com/shop/web:v1.1.0", 2, traced(bg), true)
	r.wantDeployment("bluegreen", "web-v1-0-0", k.ctr, "registry.example.com/shop/web:v1.0.0", 2, nil, false)
	extra("bluegreen")
	r.proceed(bg)
	r.waitRelease("bluegreen", "v1-1-0", "succeeded", succeeded)
	r.wantDeployment("bluegreen", "web-v1-0-0", k.ctr, "registry.example.com/shop/web:v1.0.0", 0, nil, false)
}
