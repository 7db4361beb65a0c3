package mergerequest_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/shipbot/shipbot/bot/gitlab"
	"github.com/shipbot/shipbot/bot/gitlabevent"
	"github.com/shipbot/shipbot/bot/govern"
	"github.com/shipbot/shipbot/deployer/config"
	"github.com/shipbot/shipbot/deployer/release"
	"github.com/shipbot/shipbot/templates"
	"github.com/shipbot/shipbot/test/fakegitlab"
)

// max is a second Maintainer of shop/web.
var maxi = gitlabevent.User{ID: 703, Username: "max"}

// mustSay fails unless reply holds every phrase.
func mustSay(t *testing.T, what, reply string, phrases ...string) {
	t.Helper()
	for _, p := range phrases {
		if !strings.Contains(reply, p) {
			t.Errorf("%s: reply lacks %q:\n%s", what, p, reply)
		}
	}
}

func TestLockRefusesOthersUntilUnlocked(t *testing.T) {
	r := newRig(t)
	r.gl.SetMember(projectID, maxi.ID, int(gitlab.Maintainer))
	rel := r.release("web", "prod2", mergedSHA, true)

	reply, _ := r.comment(mrIID, maintainer, `/lock prod2 "db migration"`)
	mustSay(t, "lock", reply, `🔒 Locked: prod2 is locked by mia: "db migration"`)

	// Another Maintainer's continue is refused, naming the holder and reason.
	reply, emojis := r.comment(mrIID, maxi, "/continue prod2")
	mustSay(t, "continue under lock", reply, "❌ max may not continue release `"+rel.ID+"`",
		`prod2 is locked by mia: "db migration"; only mia can act on its releases until it is unlocked`)
	if !slices.Contains(emojis, "x") {
		t.Errorf("emoji %v, want x", emojis)
	}
	got := r.get(rel.ID)
	if len(intents(got)) != 1 || got.Phase != release.Paused {
		t.Fatalf("under lock: phase %s, intents %v; want paused with only the pause", got.Phase, intents(got))
	}
	if !slices.ContainsFunc(got.History, func(e release.Entry) bool {
		return e.Kind == release.EntryRefusal && e.Actor == "max" && strings.Contains(e.Message, "locked by mia")
	}) {
		t.Errorf("the refusal is not in the history:\n%v", got.History)
	}

	// Someone who is not a Maintainer cannot break it.
	reply, _ = r.comment(mrIID, reporter, "/unlock prod2")
	mustSay(t, "reporter unlock", reply, "❌ Cannot unlock prod2: rex is Reporter on shop/web; prod2 needs Maintainer to break a lock")

	reply, _ = r.comment(mrIID, maintainer, "/unlock prod2")
	mustSay(t, "unlock", reply, "🔓 Unlocked prod2.")
	reply, _ = r.comment(mrIID, maxi, "/continue prod2")
	mustSay(t, "continue after unlock", reply, "✅ Recorded: continue of release `"+rel.ID+"`")
	if got := intents(r.get(rel.ID)); !slices.Contains(got, "max/mr-comment/continue") {
		t.Errorf("after unlock: intents %v, want max's continue", got)
	}
}

func TestMaintainerBreaksALock(t *testing.T) {
	r := newRig(t)
	r.gl.SetMember(projectID, maxi.ID, int(gitlab.Maintainer))
	rel := r.release("web", "prod2", mergedSHA, true)
	r.comment(mrIID, maxi, `/lock prod2 "load test"`)

	// Locking a held environment names who holds it.
	reply, _ := r.comment(mrIID, maintainer, "/lock prod2 mine")
	mustSay(t, "second lock", reply, `❌ Cannot lock prod2: prod2 is locked by max: "load test" since`)

	reply, _ = r.comment(mrIID, maintainer, "/unlock prod2")
	mustSay(t, "break", reply, `🔓 Broke max's lock on prod2 ("load test")`)
	if !slices.ContainsFunc(r.get(rel.ID).History, func(e release.Entry) bool {
		return e.Actor == "mia" && strings.Contains(e.Message, "lock of max broken by mia")
	}) {
		t.Errorf("breaking the lock is not in the release's history:\n%v", r.get(rel.ID).History)
	}
	reply, _ = r.comment(mrIID, maintainer, "/unlock prod2")
	mustSay(t, "unlock again", reply, "❌ Cannot unlock prod2: prod2 is not locked")
}

// developer has Developer on shop/web.
var developer = gitlabevent.User{ID: 704, Username: "dev"}

func TestDeployCommand(t *testing.T) {
	r := newRig(t)
	r.gl.SetMember(projectID, developer.ID, int(gitlab.Developer))
	r.gl.SetTag(projectID, "v1.0.0", mergedSHA)
	r.gl.AddPipeline(projectID, fakegitlab.Pipeline{SHA: mergedSHA, Ref: "v1.0.0", Tag: true, Status: "success"})
	cfg, err := config.Parse("shipbot.yaml", []byte(`gitlab: {baseURL: https://gitlab.example.com, webhookSecret: s3cret}
clusters: [{name: prod2-cluster, kubeconfig: /dev/null}]
environments:
  - {name: prod2, clusters: [prod2-cluster], namespace: web, refs: {tags: ['^v\d+\.\d+\.\d+$']}}
apps:
  - {name: web, project: shop/web, release: {strategy: canary, steps: [10, 100]}, environments: {prod2: {}}}
`))
	if err != nil {
		t.Fatal(err)
	}
	r.cmds.Deploys = &govern.Deploys{GitLab: r.client, Ops: r.door, Config: cfg, Store: r.st, Now: r.clock.Now}

	reply, emojis := r.comment(mrIID, developer, "/deploy v1.0.0 to prod2")
	mustSay(t, "developer", reply, "❌ Cannot deploy `v1.0.0` to prod2: dev is Developer on shop/web; prod2 needs Maintainer to deploy. Nothing was recorded.")
	if !slices.Contains(emojis, "x") {
		t.Errorf("emoji %v", emojis)
	}
	if all, _ := r.eng.List(t.Context(), release.Filter{}); len(all) != 0 {
		t.Fatalf("a Developer's deploy recorded %d releases", len(all))
	}

	reply, _ = r.comment(mrIID, maintainer, "/deploy v1.0.0 to prod2")
	mustSay(t, "maintainer", reply, "🚀 Deploying `v1.0.0` to prod2, asked by mia:", "(web `v1-0-0` in prod2 on prod2-cluster): pending · canary")
	all, _ := r.eng.List(t.Context(), release.Filter{Environment: "prod2"})
	if len(all) != 1 || all[0].TriggeredBy != "mia" || all[0].To.SHA != mergedSHA || all[0].Phase != release.Pending {
		t.Fatalf("releases after the deploy: %+v", all)
	}
}

func TestRollbackLastGoodCommand(t *testing.T) {
	r := newRig(t)
	good, err := r.eng.Create(t.Context(), release.Release{App: "web", Project: project, Environment: "prod1", Cluster: "prod1-cluster",
		Namespace: "web", Strategy: release.Canary, To: release.Revision{Name: "v1-0-0", Image: "web:1.0.0"},
		Stages: []release.Stage{{Target: 100}}, Params: templates.Params{Ports: []templates.Port{{Port: 8080}}}})
	if err != nil {
		t.Fatal(err)
	}
	err = r.st.UpdateRelease(good.ID, func(raw []byte) ([]byte, error) {
		var doc map[string]any
		if err := json.Unmarshal(raw, &doc); err != nil {
			return nil, err
		}
		doc["phase"], doc["stage"], doc["percent"] = release.Succeeded, 1, 100
		return json.Marshal(doc)
	})
	if err != nil {
		t.Fatal(err)
	}
	bad := r.release("web", "prod1", mergedSHA, true) // v1-0-0 → v1-1-0, paused

	reply, _ := r.comment(mrIID, maintainer, "/rollback last-good")
	mustSay(t, "plan", reply, "⏪ **Back to last good**", "- prod1 on prod1-cluster: web `v1-1-0` → `v1-0-0` by rolling back release `"+bad.ID+"`",
		"  - `web:1.1.0 → web:1.0.0`", "To go ahead, comment `/rollback last-good ")
	digest := reply[strings.LastIndex(reply, "last-good ")+len("last-good ") : strings.LastIndex(reply, "`")]
	if len(r.get(bad.ID).Intents) != 1 {
		t.Fatal("showing the plan recorded something")
	}

	reply, _ = r.comment(mrIID, reporter, "/rollback last-good "+digest)
	mustSay(t, "reporter", reply, "❌ Cannot go back to the last good versions: rex is Reporter on shop/web; prod1 needs Maintainer")
	reply, _ = r.comment(mrIID, maintainer, "/rollback last-good 000000000000")
	mustSay(t, "stale digest", reply, "the plan changed since it was shown")

	reply, _ = r.comment(mrIID, maintainer, "/rollback last-good "+digest)
	mustSay(t, "confirmed", reply, "⏪ Going back to the last good versions, asked by mia:", "release `"+bad.ID+"`")
	if got := intents(r.get(bad.ID)); !slices.Contains(got, "mia/mr-comment/rollback") {
		t.Errorf("intents %v, want mia's rollback", got)
	}
}
