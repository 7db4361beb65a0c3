// Package dashboard serves shipbot's read-only web dashboard: what runs
// where (projects × environments), releases in flight with their stage and
// how long they have been at it, preview environments, and each release's
// timeline. It is server-rendered HTML with embedded assets and offers no
// actions: whoever may read it can change nothing, so it needs no
// authorization beyond who may read.
package dashboard

import (
	"bytes"
	"context"
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/shipbot/shipbot/deployer/errkind"
	"github.com/shipbot/shipbot/deployer/release"
	"github.com/shipbot/shipbot/deployer/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// Records is what the dashboard reads of the store. *store.Store implements it.
type Records interface {
	Deployments(keep func(store.Deployment) bool) ([]store.Deployment, error)
	Previews(keep func(store.Preview) bool) ([]store.Preview, error)
}

// LockLister is what Releases may also do: list environment locks, which
// the overview shows on their environments' columns.
type LockLister interface {
	Locks(ctx context.Context) ([]release.Lock, error)
}

// Releases is what the dashboard reads of the release engine.
type Releases interface {
	List(ctx context.Context, f release.Filter) ([]release.Release, error)
	Get(ctx context.Context, id string) (release.Release, error)
}

// Options are the dashboard's collaborators.
type Options struct {
	Records  Records
	Releases Releases
	Access   Access
	// Environments orders the matrix's columns, as in shipbot.yaml.
	Environments []string
	// Refresh is how often pages reload themselves; 15s when 0, never when negative.
	Refresh time.Duration
	Log     *slog.Logger     // slog.Default() when nil
	Now     func() time.Time // time.Now when nil
}

// Dashboard serves the pages.
type Dashboard struct {
	opts  Options
	gate  *gate
	pages map[string]*template.Template
}

// New builds a dashboard. It fails only on a bad access mode.
func New(opts Options) (*Dashboard, error) {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Refresh == 0 {
		opts.Refresh = 15 * time.Second
	}
	g, err := newGate(opts.Access)
	if err != nil {
		return nil, err
	}
	d := &Dashboard{opts: opts, gate: g, pages: map[string]*template.Template{}}
	for _, name := range []string{"overview", "release", "error"} {
		d.pages[name] = template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html"))
	}
	return d, nil
}

// AssetsPrefix is where the stylesheet is served, without authentication:
// it holds nothing but style, and the sign-in page needs it too.
const AssetsPrefix = "/assets/"

// Register mounts the dashboard on e: / and /releases/:id behind the
// configured access, and the assets.
func (d *Dashboard) Register(e *echo.Echo) {
	assets, _ := fs.Sub(assetFS, "assets")
	files := http.StripPrefix(AssetsPrefix, http.FileServerFS(assets))
	e.GET(AssetsPrefix+"*", func(c echo.Context) error {
		c.Response().Header().Set("Cache-Control", "public, max-age=300")
		files.ServeHTTP(c.Response(), c.Request())
		return nil
	})
	e.GET("/", d.overview, d.headers, d.gate.check(d))
	e.GET("/releases/:id", d.release, d.headers, d.gate.check(d))
}

// headers keep pages out of caches and frames, and let them load nothing
// but their own stylesheet: they run no script at all.
func (d *Dashboard) headers(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		return next(c)
	}
}

// page is what every template gets.
type page struct {
	Title   string
	Now     time.Time
	Refresh int // seconds; 0 for none
	Data    any
}

func (d *Dashboard) render(c echo.Context, code int, name, title string, data any, refresh bool) error {
	p := page{Title: title, Now: d.opts.Now(), Data: data}
	if refresh && d.opts.Refresh > 0 {
		p.Refresh = int(d.opts.Refresh / time.Second)
	}
	var b bytes.Buffer
	if err := d.pages[name].Execute(&b, p); err != nil {
		d.opts.Log.Error("dashboard: render", "page", name, "err", err)
		return c.String(http.StatusInternalServerError, "internal error\n")
	}
	return c.HTMLBlob(code, b.Bytes())
}

// errorPage shows what went wrong in the words a reader can act on; the
// cause of an internal error goes to the log only.
func (d *Dashboard) errorPage(c echo.Context, code int, msg string) error {
	return d.render(c, code, "error", http.StatusText(code), msg, false)
}

func (d *Dashboard) overview(c echo.Context) error {
	ctx := c.Request().Context()
	var in Input
	var err error
	if in.Deployments, err = d.opts.Records.Deployments(nil); err == nil {
		if in.Previews, err = d.opts.Records.Previews(nil); err == nil {
			in.Releases, err = d.opts.Releases.List(ctx, release.Filter{})
		}
	}
	if err != nil {
		d.opts.Log.Error("dashboard: read the store", "err", err)
		return d.errorPage(c, http.StatusInternalServerError, errkind.InternalText)
	}
	if lk, ok := d.opts.Releases.(LockLister); ok {
		if in.Locks, err = lk.Locks(ctx); err != nil {
			d.opts.Log.Error("dashboard: read the locks", "err", err)
			return d.errorPage(c, http.StatusInternalServerError, errkind.InternalText)
		}
	}
	in.Environments = d.opts.Environments
	return d.render(c, http.StatusOK, "overview", "shipbot", Build(in, d.opts.Now()), true)
}

func (d *Dashboard) release(c echo.Context) error {
	id := c.Param("id")
	r, err := d.opts.Releases.Get(c.Request().Context(), id)
	if err != nil {
		if errkind.Of(err) == errkind.Internal {
			d.opts.Log.Error("dashboard: read a release", "release", id, "err", err)
		}
		return d.errorPage(c, errkind.HTTPStatus(err), errkind.Text(err))
	}
	return d.render(c, http.StatusOK, "release", r.ID+" · "+r.App+" "+r.Environment, Detail(r, d.opts.Now()), !r.Phase.Terminal())
}
