package config

import (
	"context"
	"testing"
	"time"

	"github.com/shipbot/shipbot/deployer/release"
)

// Freezes asks the config in force at each question: a reload that adds a
// freeze window holds a release that is already running.
func TestLiveFreezesFollowReload(t *testing.T) {
	open, err := Parse("f.yaml", []byte(freezeConfig("")))
	if err != nil {
		t.Fatal(err)
	}
	frozen, err := Parse("f.yaml", []byte(freezeConfig("      - {cron: \"@daily\", duration: 24h}\n")))
	if err != nil {
		t.Fatal(err)
	}
	live := NewLive(open)
	f := Freezes{Config: live}
	r := release.Release{Environment: "prod"}
	at := time.Date(2026, 3, 7, 12, 0, 0, 0, time.UTC)
	if _, ok, err := f.Frozen(context.Background(), r, at); err != nil || ok {
		t.Fatalf("before the reload: frozen %v, %v; want open", ok, err)
	}
	live.Store(frozen)
	if _, ok, err := f.Frozen(context.Background(), r, at); err != nil || !ok {
		t.Errorf("after a reload adding a daily freeze: frozen %v, %v; want frozen", ok, err)
	}
	if open.Load() != open {
		t.Error("a *Config's Load is not itself")
	}
}
