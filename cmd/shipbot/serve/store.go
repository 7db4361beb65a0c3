package serve

import (
	"cmp"
	"context"
	"time"

	"github.com/shipbot/shipbot/bot/chat/dingtalk"
	"github.com/shipbot/shipbot/deployer/store"
)

// retention is the config's store.retention, as the store takes it.
func (m *Main) retention() store.Retention {
	r := m.Config.Store.Retention
	return store.Retention{
		Deliveries: r.Deliveries.Duration, Records: r.Records.Duration, Notes: r.Notes.Duration,
		NotePrefixes: map[string]time.Duration{dingtalk.UsedNotes: r.UsedLinks.Duration},
	}
}

// prune deletes expired records every store.retention.interval until ctx
// ends. Open pruned once already and compacted; the space freed from now
// on is reused by bbolt, and given back at the next start.
func (m *Main) prune(ctx context.Context) {
	// A config built in code rather than parsed has no default.
	t := time.NewTicker(cmp.Or(m.Config.Store.Retention.Interval.Duration, time.Hour))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p, err := m.store.Prune(m.Now(), m.retention())
		switch {
		case err != nil:
			// What the transactions before the failing one deleted stays deleted.
			m.Log.Error("prune the store", "err", err, "deliveries", p.Deliveries, "deployments", p.Deployments, "previews", p.Previews, "notes", p.Notes)
		case p.Total() > 0:
			m.Log.Info("pruned the store", "deliveries", p.Deliveries, "deployments", p.Deployments, "previews", p.Previews, "notes", p.Notes)
		}
	}
}
