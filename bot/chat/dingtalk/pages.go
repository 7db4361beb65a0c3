package dingtalk

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/shipbot/shipbot/deployer/errkind"
	"github.com/shipbot/shipbot/deployer/release"
)

// page is everything a confirmation or outcome page shows.
type page struct {
	Status  int
	Tone    string // toneOK, toneWarn or toneError
	Title   string
	Heading string
	Message string
	Release *releaseView
	Action  string // the button label when Form is set
	Actor   string
	Form    bool
	Ask     bool // the form asks for the percent
	// Link, when set, is a local address offered under the message.
	Link, LinkText string
}

// Tones color a page.
const (
	toneOK    = "ok"
	toneWarn  = "warn"
	toneError = "error"
)

// releaseView is the release as a page names it.
type releaseView struct {
	ID, App, Project, Environment, Cluster, From, To, Stage, Phase, Summary string
}

func view(r release.Release, now time.Time) *releaseView {
	if r.ID == "" {
		return nil
	}
	n := len(r.Stages)
	return &releaseView{
		ID: r.ID, App: r.App, Project: r.Project, Environment: r.Environment, Cluster: r.Cluster,
		From: revision(r.From), To: r.To.Name, Phase: string(r.Phase),
		Stage:   fmt.Sprintf("%d/%d · %d %%", min(r.Stage+1, n), n, r.Percent),
		Summary: release.Describe(r, now),
	}
}

func confirmPage(a Action, r release.Release, now time.Time) page {
	return page{
		Status: http.StatusOK, Tone: toneOK, Title: a.Label() + " " + r.App,
		Heading: fmt.Sprintf("%s %s %s → %s in %s?", a.Label(), r.App, revision(r.From), r.To.Name, r.Environment),
		Message: "Nothing happens until you press the button.", Release: view(r, now), Action: a.Label(), Form: true, Ask: a.Ask,
	}
}

func donePage(a Action, v *releaseView, actor string) page {
	return page{
		Status: http.StatusOK, Tone: toneOK, Title: "Recorded",
		Heading: fmt.Sprintf("Recorded: %s, by %s", strings.ToLower(a.Label()), actor),
		Message: "shipbot acts on it at the release's next step; the group will see the result.", Release: v,
	}
}

func usedPage(v *releaseView, u usedLink) page {
	msg := "Each link works once. Use the newest message in the group to act again."
	if u.Actor != "" {
		msg = fmt.Sprintf("%s used it at %s. %s", u.Actor, u.At.UTC().Format(time.DateTime+" MST"), msg)
	}
	return page{Status: http.StatusConflict, Tone: toneWarn, Title: "Already used",
		Heading: "This link was already used", Message: msg, Release: v}
}

// conflictPage answers an action the release cannot take: a conflict (409)
// or one that can never apply (422).
func conflictPage(a Action, v *releaseView, err error) page {
	return page{Status: errkind.HTTPStatus(err), Tone: toneWarn, Title: "Not possible now",
		Heading: "The release cannot " + strings.ToLower(a.Label()) + " now",
		Message: errkind.Text(err) + ". Nothing was recorded.", Release: v}
}

// badPercentPage answers a ratio form sent without a whole percent.
func badPercentPage(v *releaseView, link string) page {
	return page{Status: http.StatusUnprocessableEntity, Tone: toneWarn, Title: "Not a percent",
		Heading: "The ratio must be a whole percent from 1 to 100", Message: "Nothing was recorded.", Release: v,
		Link: link, LinkText: "Try again"}
}

// render writes p; html/template escapes everything that came from a release.
func (h *Handler) render(c echo.Context, p page) error {
	setHeaders(c.Response().Header())
	var b bytes.Buffer
	if err := pageTemplate.Execute(&b, p); err != nil {
		h.o.Log.Error("dingtalk: render page", "err", err)
		return c.String(http.StatusInternalServerError, "internal error\n")
	}
	return c.HTMLBlob(p.Status, b.Bytes())
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{{.Title}} · shipbot</title>
<style>
body { font: 16px/1.5 system-ui, sans-serif; margin: 0; background: #f6f7f9; color: #1f2328; }
main { max-width: 36rem; margin: 2rem auto; padding: 1.5rem; background: #fff; border-radius: 8px; border-top: 6px solid #1a7f37; }
main.warn { border-top-color: #bf8700; }
main.error { border-top-color: #cf222e; }
h1 { font-size: 1.3rem; margin-top: 0; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; }
dt { color: #59636e; }
dd { margin: 0; }
textarea { width: 100%; box-sizing: border-box; }
button { font-size: 1rem; padding: .5rem 1.25rem; border: 0; border-radius: 6px; background: #1f6feb; color: #fff; cursor: pointer; }
</style>
</head>
<body>
<main class="{{.Tone}}">
<h1>{{.Heading}}</h1>
{{with .Message}}<p>{{.}}</p>{{end}}
{{with .Link}}<p><a href="{{.}}">{{$.LinkText}}</a></p>{{end}}
{{with .Release}}<dl>
<dt>App</dt><dd>{{.App}} ({{.Project}})</dd>
<dt>Change</dt><dd>{{.From}} → {{.To}}</dd>
<dt>Environment</dt><dd>{{.Environment}} on {{.Cluster}}</dd>
<dt>Stage</dt><dd>{{.Stage}}</dd>
<dt>Phase</dt><dd>{{.Phase}}</dd>
<dt>Now</dt><dd>{{.Summary}}</dd>
<dt>Release</dt><dd>{{.ID}}</dd>
</dl>{{end}}
{{if .Form}}<form method="post">
<p>Acting as <strong>{{.Actor}}</strong>.</p>
{{if .Ask}}<p><label>Percent of traffic on the new version (1 to 100)<br><input type="number" name="percent" min="1" max="100" step="1" required></label></p>
{{end}}<p><label>Comment (optional)<br><textarea name="comment" maxlength="500" rows="2"></textarea></label></p>
<p><button type="submit">{{.Action}}</button></p>
</form>{{end}}
</main>
</body>
</html>
`))
