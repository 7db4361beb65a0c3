package main

import (
	"strings"
	"testing"
)

func TestLockCommands(t *testing.T) {
	r := newAPIRig(t)
	rel := r.create(t, "web", "prod2")
	r.pause(t, rel.ID)

	out, _, err := r.command(t, newLockCmd, map[string]string{"USER": "mia"}, "prod2", "db migration")
	if err != nil || out != "prod2 is locked by mia: \"db migration\"\n" {
		t.Fatalf("lock: %v %q", err, out)
	}
	out, _, err = r.command(t, newLocksCmd, nil)
	if err != nil || !strings.Contains(out, "prod2  mia     2026-03-01 10:10:00  cli  db migration") {
		t.Errorf("locks: %v\n%s", err, out)
	}
	// alice's continue is refused, with the holder and the reason.
	_, _, err = r.releasesEnv(t, nil, "continue", rel.ID)
	if err == nil || !strings.Contains(err.Error(), `prod2 is locked by mia: "db migration"; only mia can act`) {
		t.Errorf("continue under lock: %v", err)
	}
	if _, _, err = r.command(t, newUnlockCmd, nil, "prod2"); err == nil || !strings.Contains(err.Error(), "only mia") {
		t.Errorf("unlock by alice without --force: %v", err)
	}
	out, _, err = r.command(t, newUnlockCmd, nil, "prod2", "--force")
	if err != nil || out != "unlocked prod2 (was held by mia)\n" {
		t.Errorf("forced unlock: %v %q", err, out)
	}
	if _, _, err = r.releasesEnv(t, nil, "continue", rel.ID); err != nil {
		t.Errorf("continue after unlock: %v", err)
	}
}

func TestDeployCommandReachesTheAPI(t *testing.T) {
	r := newAPIRig(t) // an API without GitLab: deploying is off there
	_, _, err := r.command(t, newDeployCmd, nil, "v1.3.0", "--to", "prod2", "--project", "shop/web")
	if err == nil || !strings.Contains(err.Error(), "deploying a version is off") {
		t.Errorf("deploy: %v", err)
	}
	if _, _, err := r.command(t, newDeployCmd, nil, "v1.3.0", "--project", "shop/web"); err == nil || !strings.Contains(err.Error(), `"to" not set`) {
		t.Errorf("deploy without --to: %v", err)
	}
}
