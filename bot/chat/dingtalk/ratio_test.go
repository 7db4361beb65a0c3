package dingtalk

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/shipbot/shipbot/deployer/release"
)

// anyWeight lets the rig's release be promoted to any percent.
func (g *rig) anyWeight() release.Release {
	g.t.Helper()
	err := g.st.UpdateRelease(g.id, func(raw []byte) ([]byte, error) {
		var s release.Release
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		s.AnyWeight = true
		return json.Marshal(s)
	})
	if err != nil {
		g.t.Fatal(err)
	}
	r, err := g.engine.Get(g.t.Context(), g.id)
	if err != nil {
		g.t.Fatal(err)
	}
	return r
}

// postPercent sends the ratio form as alice.
func (g *rig) postPercent(link, percent string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, link, strings.NewReader(url.Values{"percent": {percent}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://shipbot.example")
	req.Header.Set("X-Forwarded-User", "alice")
	w := httptest.NewRecorder()
	g.echo.ServeHTTP(w, req)
	return w
}

func labelsOf(as []Action) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.Label())
	}
	return out
}

func TestRatioLinkAsksForAPercentAndPromotes(t *testing.T) {
	g := newRig(t)
	r, err := g.engine.Get(t.Context(), g.id)
	if err != nil {
		t.Fatal(err)
	}
	if got := labelsOf(Actions(r, t0)); slices.Contains(got, "Set ratio…") {
		t.Errorf("without anyWeight: actions %q offer a ratio", got)
	}
	r = g.anyWeight()
	got := labelsOf(Actions(r, t0))
	if !slices.Contains(got, "Promote to 100 %") || !slices.Contains(got, "Set ratio…") {
		t.Fatalf("with anyWeight: actions %q, want the steps and Set ratio…", got)
	}
	tok, err := g.tokens.Issue(Action{Release: g.id, Kind: release.IntentPromote, Ask: true, Stage: 1})
	if err != nil {
		t.Fatal(err)
	}
	link := ActionsPath + tok
	expect(t, g.do(http.MethodGet, link, "alice"), http.StatusOK, `name="percent"`, "Set ratio…")

	expect(t, g.postPercent(link, "lots"), http.StatusUnprocessableEntity, "whole percent from 1 to 100")
	if in := g.intents(); len(in) != 0 {
		t.Fatalf("a bad percent recorded %+v", in)
	}
	expect(t, g.postPercent(link, "20"), http.StatusOK, "Recorded: promote to 20 %, by alice")
	if in := g.intents(); len(in) != 1 || in[0].String() != "promote to 20 %" || in[0].Surface != release.SurfaceDingTalk {
		t.Fatalf("intents %+v, want promote to 20 %% via dingtalk", in)
	}
}
