package deployer

import (
	"context"

	"github.com/shipbot/shipbot/deployer/release"
	"github.com/shipbot/shipbot/deployer/store"
)

// held says why a pending deployment must wait, or "" when it may start: a
// lock someone other than its user holds on its environment, or a freeze.
// Previews belong to no governed environment and never wait. A deployment
// that waits stays pending, so it starts once the lock or freeze is gone;
// the reason is kept on it and logged once.
func (e *DeployRunner) held(ctx context.Context, d store.Deployment) (string, error) {
	if d.Preview != "" || d.Status != store.StatusPending {
		return "", nil
	}
	l, locked, err := release.ReadLock(e.store, d.Environment)
	if err != nil {
		return "", err
	}
	if locked && l.HeldBy(d.User) {
		return l.String(), nil
	}
	if e.freezes == nil {
		return "", nil
	}
	f, frozen, err := e.freezes.Frozen(ctx, release.Release{Project: d.Project, Environment: d.Environment}, e.now())
	if err != nil || !frozen {
		return "", err
	}
	return f.String(), nil
}

// heldPrefix starts the Reason of a deployment that waits.
const heldPrefix = "held: "

// hold keeps the reason a deployment waits on it, once, and logs it.
func (e *DeployRunner) hold(d store.Deployment, why string) {
	if d.Reason == heldPrefix+why {
		return
	}
	d.Reason = heldPrefix + why
	if err := e.store.PutDeployment(d); err != nil {
		e.log.Error("keep why a deployment waits", "id", d.ID, "err", err)
		return
	}
	e.log.Info("deployment held", "deployment", d.ID, "app", d.App, "env", d.Environment, "user", d.User, "detail", why)
}
