package govern_test

import (
	"testing"

	"github.com/shipbot/shipbot/test/cluster"
)

var testCluster *cluster.Cluster

func TestMain(m *testing.M) { cluster.Main(m, cluster.Options{}, &testCluster) }
