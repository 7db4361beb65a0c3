package serve

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"k8s.io/client-go/rest"

	"github.com/shipbot/shipbot/deployer/kube"
	"github.com/shipbot/shipbot/deployer/store"
)

// /readyz asks each cluster at most once per pingTTL, however often it is
// probed, and says which cluster does not answer.
func TestReadyzCachesClusterPings(t *testing.T) {
	var hits atomic.Int32
	var down atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		hits.Add(1)
		if down.Load() {
			http.Error(w, "etcd not ready", http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	defer srv.Close()
	kc, err := kube.New("east", &rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(t.TempDir(), "shipbot.db"), store.Options{LockTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	m := &Main{Log: slog.New(slog.DiscardHandler), store: st, clusters: map[string]*kube.Client{"east": kc}}
	probe := func() (int, string) {
		rec := httptest.NewRecorder()
		if err := m.readyz(echo.New().NewContext(httptest.NewRequest(http.MethodGet, "/readyz", nil), rec)); err != nil {
			t.Fatal(err)
		}
		return rec.Code, rec.Body.String()
	}
	for range 3 {
		if code, body := probe(); code != http.StatusOK {
			t.Fatalf("readyz %d %s, want 200", code, body)
		}
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("3 probes asked the cluster %d times, want once", n)
	}

	down.Store(true)
	m.pings.at = time.Now().Add(-pingTTL) // the answer has expired
	code, body := probe()
	if code != http.StatusServiceUnavailable || !strings.Contains(body, `"cluster/east":"unreachable"`) {
		t.Errorf("readyz with the cluster down: %d %s, want 503 naming cluster/east", code, body)
	}
	if n := hits.Load(); n != 2 {
		t.Errorf("after the answer expired the cluster was asked %d times in all, want 2", n)
	}
}
