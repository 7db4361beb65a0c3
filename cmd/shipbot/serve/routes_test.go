package serve

import (
	"io"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shipbot/shipbot/deployer/config"
)

// TestServerBoundsClients checks the server Run serves with: a client that
// trickles its headers or body must not hold a connection forever.
func TestServerBoundsClients(t *testing.T) {
	m := &Main{
		Config:   &config.Config{},
		Log:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		registry: prometheus.NewRegistry(),
		surfaces: &surfaces{},
	}
	e, err := m.routes()
	if err != nil {
		t.Fatal(err)
	}
	s := e.Server
	if s.ReadHeaderTimeout <= 0 || s.ReadTimeout <= 0 || s.IdleTimeout <= 0 {
		t.Errorf("server timeouts: header %s, read %s, idle %s; want all set", s.ReadHeaderTimeout, s.ReadTimeout, s.IdleTimeout)
	}
}
