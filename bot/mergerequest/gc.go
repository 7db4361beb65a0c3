package mergerequest

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/shipbot/shipbot/bot/gitlab"
	"github.com/shipbot/shipbot/deployer"
	"github.com/shipbot/shipbot/deployer/store"
)

// Reconciler checks every live preview against the merge request's state in
// GitLab's API. GitLab skips push hooks for pushes of more than three refs
// and disables hooks that keep failing, so webhooks alone would leak previews.
type Reconciler struct {
	API     GitLab
	Store   *store.Store
	Deploys interface{ Wake() }
	Log     *slog.Logger
	Now     func() time.Time
}

// Run reconciles every interval until ctx ends.
func (r *Reconciler) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := r.Reconcile(ctx); err != nil {
			r.Log.Warn("reconcile previews", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Reconcile marks for removal the previews of merge requests that are
// closed, merged or gone, and refreshes labels and heads of the others.
func (r *Reconciler) Reconcile(ctx context.Context) error {
	live, err := r.Store.Previews(func(p store.Preview) bool { return p.Wanted })
	if err != nil {
		return err
	}
	var errs []error
	changed := false
	for _, p := range live {
		mr, err := r.API.MergeRequest(ctx, p.ProjectID, p.IID)
		state := mr.State
		switch {
		case errors.Is(err, gitlab.ErrNotFound):
			state = deployer.StopDeleted
		case err != nil:
			errs = append(errs, err)
			continue
		}
		c, err := r.apply(p, mr, state)
		changed = changed || c
		errs = append(errs, err)
	}
	if changed {
		r.Deploys.Wake()
	}
	return errors.Join(errs...)
}

func (r *Reconciler) apply(p store.Preview, mr gitlab.MergeRequest, state string) (bool, error) {
	changed := false
	_, err := r.Store.UpdatePreview(p.Key, func(rec *store.Preview) error {
		switch state {
		case "opened", "locked":
			rec.Labels = mr.Labels
			// A webhook may have moved the head while GitLab answered: then
			// GitLab's answer may be the older one, and the next pass decides.
			if mr.HeadSHA != "" && mr.HeadSHA != rec.HeadSHA && rec.HeadSHA == p.HeadSHA {
				rec.HeadSHA, rec.LastActivity = mr.HeadSHA, r.Now()
			}
			return nil
		case deployer.StopMerged, deployer.StopClosed, deployer.StopDeleted:
			if rec.Wanted {
				r.Log.Info("preview's merge request is "+state+" in GitLab; removing it", "preview", rec.Key, "reason", state)
				rec.Wanted, rec.StopReason, rec.MRState, changed = false, state, state, true
			}
		}
		return nil
	})
	return changed, err
}
