package dashboard_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/shipbot/shipbot/bot/dashboard"
	"github.com/shipbot/shipbot/deployer/release"
)

func TestOverviewShowsLocks(t *testing.T) {
	r := newRig(t, dashboard.Access{Mode: dashboard.AccessOpen})
	r.seed(t)
	if _, err := r.engine.LockEnvironment(t.Context(), release.Lock{Environment: "prod", Holder: "mia", Reason: "<db> migration", Surface: release.SurfaceCLI}); err != nil {
		t.Fatal(err)
	}
	code, _, body := get(t, nil, r.srv.URL+"/")
	if code != http.StatusOK {
		t.Fatalf("GET /: %d", code)
	}
	mustContain(t, "the overview", body, `<th>prod<div class="lock" title="prod is locked by mia: &#34;&lt;db&gt; migration&#34;">🔒 prod is locked by mia: &#34;&lt;db&gt; migration&#34;</div></th>`)
	if strings.Contains(body, "<th>dev<div") {
		t.Error("dev shows a lock")
	}
}
