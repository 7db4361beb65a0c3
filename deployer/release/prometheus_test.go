package release

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// prometheusBinary is where Debian's prometheus package installs the server.
const prometheusBinary = "/usr/bin/prometheus"

// startPrometheus runs a real Prometheus on loopback scraping a tiny exporter
// of one gauge, and returns its address and the gauge.
func startPrometheus(t *testing.T) (string, prometheus.Gauge) {
	t.Helper()
	if _, err := os.Stat(prometheusBinary); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing (apt-get install -y prometheus); CI must run this test", prometheusBinary)
		}
		t.Skipf("%s is missing: apt-get install -y prometheus to run the Prometheus gate test", prometheusBinary)
	}
	reg := prometheus.NewRegistry()
	gauge := prometheus.NewGauge(prometheus.GaugeOpts{Name: "shipbot_test_error_ratio", Help: "Errors per request of the canary."})
	reg.MustRegister(gauge)
	exporter := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(exporter.Close)

	dir := t.TempDir()
	cfg := fmt.Sprintf("global: {scrape_interval: 200ms, evaluation_interval: 1s}\n"+
		"scrape_configs:\n  - job_name: canary\n    static_configs: [{targets: [%q]}]\n", strings.TrimPrefix(exporter.URL, "http://"))
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeLoopbackAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, prometheusBinary, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr, "--log.level=warn")
	log, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait(); log.Close() })
	return "http://" + addr, gauge
}

func freeLoopbackAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// waitForValue waits until Prometheus has scraped the gauge at v.
func waitForValue(t *testing.T, e *Stepper, address string, v float64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := e.queryPrometheus(t.Context(), address, "shipbot_test_error_ratio")
		if err == nil && got == v {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus never reported shipbot_test_error_ratio = %g (last: %g, %v)", v, got, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestPrometheusGate(t *testing.T) {
	address, gauge := startPrometheus(t)
	gate := Gate{Name: "error-ratio", Prometheus: &PrometheusGate{
		Address: address, Query: "shipbot_test_error_ratio", Op: "<", Threshold: 0.05,
		Interval: 30 * time.Second, Duration: 2 * time.Minute, FailureLimit: 2,
	}}
	tests := []struct {
		name   string
		ratio  float64
		end    Phase
		reason string
	}{
		{"high error ratio rolls back", 0.2, RolledBack, "gate error-ratio failed: 2 of 2 runs failed; last run 2: shipbot_test_error_ratio = 0.2, want < 0.05"},
		{"low error ratio passes", 0.01, Succeeded, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.foreignVirtualService()
			h.initial(Canary, 2)
			gauge.Set(tt.ratio)
			waitForValue(t, h.e, address, tt.ratio)
			r := canaryV2(h, Stage{Target: 10, After: []Gate{gate}}, Stage{Target: 100})
			start := h.clock.Now()
			r = h.drive(r.ID, phaseIs(tt.end))
			if r.Reason != tt.reason {
				t.Errorf("reason %q, want %q", r.Reason, tt.reason)
			}
			c := r.Checks[slices.IndexFunc(r.Checks, func(c Check) bool { return c.Gate == "error-ratio" })]
			t.Logf("gate: %d runs, %d failed, over %s on the fake clock: %s", c.Runs, c.Failures, h.clock.Now().Sub(start), c.Message)
			if tt.end == Succeeded && (c.Runs < 5 || c.Failures != 0) {
				t.Errorf("passing gate: %+v, want ≥ 5 runs over 2m every 30s, none failed", c)
			}
			if tt.end == RolledBack {
				h.drainOld(r.ID)
			}
			if w := h.replicas("web-v2-0-0"); tt.end == RolledBack && w != 0 {
				t.Errorf("v2 replicas %d after rollback", w)
			}
		})
	}
}

func TestPrometheusValueParsing(t *testing.T) {
	e := &Stepper{http: http.DefaultClient}
	tests := []struct {
		name, body string
		want       float64
		errHas     string
	}{
		{"vector", `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"0.25"]}]}}`, 0.25, ""},
		{"scalar", `{"status":"success","data":{"resultType":"scalar","result":[1,"3"]}}`, 3, ""},
		{"empty", `{"status":"success","data":{"resultType":"vector","result":[]}}`, 0, "no data"},
		{"many", `{"status":"success","data":{"resultType":"vector","result":[{"value":[1,"1"]},{"value":[1,"2"]}]}}`, 0, "2 series"},
		{"matrix", `{"status":"success","data":{"resultType":"matrix","result":[]}}`, 0, "want a scalar or a vector"},
		{"error", `{"status":"error","errorType":"bad_data","error":"parse error"}`, 0, "bad_data: parse error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(tt.body)) }))
			defer srv.Close()
			got, err := e.queryPrometheus(t.Context(), srv.URL, "q")
			if tt.errHas == "" && (err != nil || got != tt.want) {
				t.Errorf("got %g, %v; want %g", got, err, tt.want)
			}
			if tt.errHas != "" && (err == nil || !strings.Contains(err.Error(), tt.errHas)) {
				t.Errorf("err %v, want %q", err, tt.errHas)
			}
		})
	}
}
