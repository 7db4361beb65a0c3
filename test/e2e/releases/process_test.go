package releases

import (
	"testing"

	"github.com/shipbot/shipbot/test/cluster"
	"github.com/shipbot/shipbot/test/e2e/proc"
)

// shipbotBinary is the shipbot binary, built once per test binary into the
// control plane's temporary directory.
func shipbotBinary(t *testing.T) string {
	t.Helper()
	cluster.Require(t, kc)
	return proc.Binary(t, kc.Dir())
}
