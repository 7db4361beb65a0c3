package deployer

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/shipbot/shipbot/deployer/release"
	"github.com/shipbot/shipbot/deployer/store"
)

func TestPlainDeploysWaitForLocksAndFreezes(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "shipbot.db"), store.Options{LockTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Date(2026, 3, 6, 19, 0, 0, 0, time.UTC) // a Friday evening
	e := &DeployRunner{store: st, now: func() time.Time { return now }, log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		freezes: release.FreezeCalendar{"dev": {{Cron: "0 18 * * FRI", Duration: 2 * time.Hour, Reason: "demo"}}}}
	d := store.Deployment{ID: store.FormatID(1), App: "web", Project: "shop/web", Environment: "dev", User: "dora", Status: store.StatusPending}

	why, err := e.held(context.Background(), d)
	if err != nil || why != "frozen until 2026-03-06 20:00 UTC (shipbot.yaml: demo)" {
		t.Errorf("in the freeze: %q, %v", why, err)
	}
	now = now.Add(time.Hour) // the freeze is over
	if why, err := e.held(context.Background(), d); why != "" || err != nil {
		t.Errorf("after the freeze: %q, %v", why, err)
	}

	eng, err := release.NewStepper(release.Options{Store: st, Clusters: release.ClusterMap{}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.LockEnvironment(context.Background(), release.Lock{Environment: "dev", Holder: "mia", Reason: "db migration"}); err != nil {
		t.Fatal(err)
	}
	if why, _ := e.held(context.Background(), d); why != `dev is locked by mia: "db migration"` {
		t.Errorf("dora's deploy under mia's lock: %q", why)
	}
	d.User = "mia"
	if why, _ := e.held(context.Background(), d); why != "" {
		t.Errorf("the holder's own deploy: %q", why)
	}
	d.User, d.Preview = "dora", "9!4"
	if why, _ := e.held(context.Background(), d); why != "" {
		t.Errorf("a preview: %q", why)
	}

	d.Preview = ""
	e.hold(d, `dev is locked by mia: "db migration"`)
	got, err := st.Deployment(d.ID)
	if err != nil || got.Status != store.StatusPending || got.Reason != `held: dev is locked by mia: "db migration"` {
		t.Errorf("held deployment: %+v, %v", got, err)
	}
}
