package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/shipbot/shipbot/bot/api"
	"github.com/shipbot/shipbot/bot/gitlab"
	"github.com/shipbot/shipbot/bot/govern"
	"github.com/shipbot/shipbot/bot/ops"
	"github.com/shipbot/shipbot/deployer/config"
	"github.com/shipbot/shipbot/deployer/release"
	"github.com/shipbot/shipbot/deployer/store"
	"github.com/shipbot/shipbot/test/fakegitlab"
)

func TestDeployThroughTheAPI(t *testing.T) {
	cfg, err := config.Parse("shipbot.yaml", []byte(`gitlab: {baseURL: https://gitlab.example.com, webhookSecret: s3cret}
clusters: [{name: c1, kubeconfig: /dev/null}]
environments:
  - {name: prod2, clusters: [c1], namespace: web, refs: {tags: ['^v\d+\.\d+\.\d+$']}}
apps:
  - {name: web, project: shop/web, release: {strategy: rolling}, environments: {prod2: {}}}
`))
	if err != nil {
		t.Fatal(err)
	}
	r, gl := peopleRigWith(t, func(o *api.Options, c *gitlab.Client, door *ops.Service) {
		o.Deploys = &govern.Deploys{GitLab: c, Ops: door, Config: cfg, Store: o.Records.(*store.Store)}
	})
	sha := strings.Repeat("c", 40)
	gl.SetTag(42, "v1.0.0", sha)
	gl.AddPipeline(42, fakegitlab.Pipeline{SHA: sha, Ref: "v1.0.0", Tag: true, Status: "success"})
	body := `{"project":"shop/web","ref":"v1.0.0"}`
	post := func(tok, body string) (int, string) {
		code, b := r.do(t, http.MethodPost, "/api/v1/environments/prod2/deploy", body, "Authorization", "Bearer "+tok, api.HeaderSurface, "cli")
		return code, string(b)
	}

	if code, b := post(reporterPAT, body); code != http.StatusForbidden || !strings.Contains(b, "rex is Reporter on shop/web; prod2 needs Maintainer to deploy") {
		t.Errorf("reporter: %d %s", code, b)
	}
	if code, b := post(token, body); code != http.StatusForbidden || !strings.Contains(b, "needs your own GitLab access token") {
		t.Errorf("operator token: %d %s", code, b)
	}
	if code, b := post(maintainerPAT, `{"project":"shop/web"}`); code != http.StatusBadRequest || !strings.Contains(b, "ref: want a tag or commit") {
		t.Errorf("no ref: %d %s", code, b)
	}
	if all, _ := r.engine.List(t.Context(), release.Filter{}); len(all) != 0 {
		t.Fatalf("refused deploys recorded %d releases", len(all))
	}
	code, b := post(maintainerPAT, body)
	if code != http.StatusAccepted || !strings.Contains(b, `"environment":"prod2"`) || !strings.Contains(b, `"triggeredBy":"mia"`) {
		t.Fatalf("maintainer: %d %s", code, b)
	}
}
