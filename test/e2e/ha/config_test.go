package ha

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shipbot/shipbot/bot/api"
	"github.com/shipbot/shipbot/test/cluster"
	"github.com/shipbot/shipbot/test/e2e/proc"
	"github.com/shipbot/shipbot/test/fixtures"
)

// The config file changes under three running replicas, so that dev also
// takes branch trunk. The leader puts it in force (it watches the file's
// directory); the followers, sent SIGHUP, go on following rather than die
// of it; and the replica that leads once the leader is killed, which
// started with the old file, puts the file in force as it is when it comes
// to lead: a trunk pipeline deploys before and after the failover.
func TestAConfigChangeReachesWhicheverReplicaLeads(t *testing.T) {
	set := startReplicas(t, 3)
	lead := set.Leader("")
	for _, s := range set.Procs {
		b, err := os.ReadFile(s.Config)
		if err != nil {
			t.Fatal(err)
		}
		text := strings.Replace(string(b), "branches: ['^dev$']", "branches: ['^(dev|trunk)$']", 1)
		if text == string(b) {
			t.Fatal("the config has no branches: ['^dev$'] to change")
		}
		if err := os.WriteFile(s.Config, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	reloaded := func(addr string) func() error {
		return func() error {
			n, err := metric(addr, "shipbot_config_reloads_total", map[string]string{"result": "success"})
			if err == nil && n != 1 {
				err = fmt.Errorf("%v successful reloads, want 1", n)
			}
			return err
		}
	}
	fixtures.Eventually(t, 10*time.Second, "the leader puts the changed file in force", reloaded(lead))

	for addr, s := range set.Procs {
		if addr != lead {
			s.Signal(syscall.SIGHUP)
		}
	}
	holds(t, 2*time.Second, "every replica lives through SIGHUP", func() error {
		for addr, s := range set.Procs {
			if gone, how := s.Exited(); gone {
				return fmt.Errorf("replica %s exited: %s", addr, how)
			}
		}
		return nil
	})

	trunk := func(addr string, i int) {
		t.Helper()
		body, uuid, err := pipelineOn("trunk", i)
		if err != nil {
			t.Fatal(err)
		}
		fixtures.Eventually(t, 30*time.Second, fmt.Sprintf("trunk pipeline %d acknowledged", i), func() error {
			code, _, err := fixtures.Deliver(t.Context(), addr, secret, "Pipeline Hook", body, "X-Gitlab-Event-UUID", uuid)
			if err == nil && code != http.StatusOK {
				err = fmt.Errorf("answered %d", code)
			}
			return err
		})
		cl := &api.Client{Server: "http://" + addr, Token: apiToken}
		fixtures.Eventually(t, time.Minute, fmt.Sprintf("trunk pipeline %d deployed to dev", i), func() error {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			got, active, err := deploymentsByPipeline(ctx, cl)
			if err == nil && (got[int64(i)] != 1 || active > 0) {
				err = fmt.Errorf("%d records of pipeline %d, %d still active", got[int64(i)], i, active)
			}
			return err
		})
	}
	trunk(set.Other(lead), 1)

	set.Kill(lead)
	next := set.Leader(lead)
	fixtures.Eventually(t, 10*time.Second, "the next leader puts the file as it is now in force", reloaded(next))
	trunk(set.Other(next), 2)
}

// shipbot intake reads its config at start only. SIGHUP, which ops may
// send to every shipbot pod, is logged, and it goes on taking webhooks.
func TestIntakeLivesThroughSIGHUP(t *testing.T) {
	cluster.Require(t, kc)
	addr := proc.FreeAddr(t)
	text := strings.Replace(devConfig(kc.NewNamespace(t), filepath.Join(t.TempDir(), "shipbot.db")), "listen: 127.0.0.1:0\n", "listen: "+addr+"\n", 1)
	text += fmt.Sprintf("webhook: {maxBodyBytes: 786432, inbox: {cluster: local, namespace: %s}}\n", kc.NewNamespace(t))
	path := filepath.Join(t.TempDir(), "intake.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	s := proc.StartCommand(t, proc.Binary(t, kc.Dir()), "intake", path, addr, "intake")
	s.Signal(syscall.SIGHUP)
	time.Sleep(time.Second)
	if gone, how := s.Exited(); gone {
		t.Fatalf("intake exited on SIGHUP: %s", how)
	}
	body, uuid, err := pipelineOn("dev", 1)
	if err != nil {
		t.Fatal(err)
	}
	if code, _, err := fixtures.Deliver(t.Context(), addr, secret, "Pipeline Hook", body, "X-Gitlab-Event-UUID", uuid); err != nil || code != http.StatusOK {
		t.Fatalf("a webhook after SIGHUP: %d, %v; want 200", code, err)
	}
	if tail := s.Tail(20); !strings.Contains(tail, "restart it to apply a change") {
		t.Errorf("the log does not say SIGHUP applies nothing:\n%s", tail)
	}
}
