package inbox_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/shipbot/shipbot/bot/gitlab"
	"github.com/shipbot/shipbot/deployer/config"
	"github.com/shipbot/shipbot/deployer/store"
	"github.com/shipbot/shipbot/test/fakegitlab"
)

const (
	token     = "glpat-inbox-test"
	projectID = int64(9)
	project   = "shop/web"
	mrIID     = int64(5)
	userID    = int64(701)
)

// cfgText deploys shop/web's dev branch to dev.
const cfgText = `gitlab:
  baseURL: https://gitlab.example.com
  webhookSecret: s3cret
clusters:
  - name: local
    kubeconfig: /tmp/kubeconfig
environments:
  - name: dev
    clusters: [local]
    namespace: apps-dev
    refs:
      branches: ['^dev$']
apps:
  - name: web
    project: shop/web
    environments:
      dev: {}
`

type wakeFunc func()

func (f wakeFunc) Wake() { f() }

// rig is a store, a config and a fake GitLab whose calls a test can hold
// until it frees them.
type rig struct {
	t      *testing.T
	cfg    *config.Config
	st     *store.Store
	gl     *fakegitlab.Server
	client *gitlab.Client
	log    *slog.Logger

	release chan struct{}
	once    sync.Once
}

func newRig(t *testing.T, text string, opts ...gitlab.Option) *rig {
	t.Helper()
	r := &rig{t: t, gl: fakegitlab.New(t, token), release: make(chan struct{}), log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	t.Cleanup(r.free) // before the fake closes, which waits for its requests
	var err error
	if r.client, err = gitlab.New(r.gl.URL(), token, append([]gitlab.Option{gitlab.WithRetryMax(0)}, opts...)...); err != nil {
		t.Fatal(err)
	}
	if r.cfg, err = config.Parse("shipbot.yaml", []byte(text)); err != nil {
		t.Fatal(err)
	}
	if r.st, err = store.Open(filepath.Join(t.TempDir(), "shipbot.db"), store.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.st.Close() })
	return r
}

// hold makes the next GitLab call of method under path wait until free;
// entered, when not nil, hears when it starts waiting.
func (r *rig) hold(method, path string, entered chan<- struct{}) {
	r.gl.BeforeNext(method, path, func() {
		if entered != nil {
			select {
			case entered <- struct{}{}:
			default:
			}
		}
		<-r.release
	})
}

// free lets the held GitLab calls go on.
func (r *rig) free() { r.once.Do(func() { close(r.release) }) }

// deliver puts deliveries in the inbox, as intake does.
func (r *rig) deliver(ds ...store.Delivery) {
	r.t.Helper()
	for _, d := range ds {
		d.ReceivedAt = time.Now()
		if _, _, err := r.st.Accept(r.t.Context(), d); err != nil {
			r.t.Fatal(err)
		}
	}
}

// run runs each worker until the test ends; they stop before the store
// closes, once GitLab has been freed.
func (r *rig) run(workers ...func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() { _ = w(ctx) })
	}
	r.t.Cleanup(func() { cancel(); r.free(); wg.Wait() })
}
