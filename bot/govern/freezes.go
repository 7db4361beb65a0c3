// Package govern holds the parts of release governance that need GitLab:
// its deploy freeze periods, the builds `/deploy` releases, and merge
// request approvals as a gate. The engine (deployer/release) defines what
// it asks; this package answers from GitLab, so no SDK type reaches it.
package govern

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/shipbot/shipbot/bot/gitlab"
	"github.com/shipbot/shipbot/deployer/release"
)

// FreezeReader is what GitLabFreezes asks of GitLab; *gitlab.Client has it.
type FreezeReader interface {
	ProjectID(ctx context.Context, path string) (int64, error)
	FreezePeriods(ctx context.Context, projectID int64) ([]gitlab.FreezePeriod, error)
}

var _ FreezeReader = (*gitlab.Client)(nil)

// DefaultFreezeTTL is how long a project's freeze periods are reused: a
// held release looks every 30 s, and one call a minute per project is
// plenty for something people change by hand.
const DefaultFreezeTTL = time.Minute

// GitLabFreezes implements release.Freezes from the deploy freeze periods
// of each release's GitLab project. It is safe for concurrent use.
type GitLabFreezes struct {
	GitLab FreezeReader
	TTL    time.Duration    // DefaultFreezeTTL when 0; negative reads GitLab every time
	Now    func() time.Time // for the cache; time.Now when nil

	mu    sync.Mutex
	cache map[string]cachedFreezes
}

type cachedFreezes struct {
	periods []gitlab.FreezePeriod
	until   time.Time
}

var _ release.Freezes = (*GitLabFreezes)(nil)

// Frozen reports whether a freeze period of r's project covers at, and the
// latest end among those that do. A period GitLab holds but shipbot cannot
// read (a bad cron) fails the answer rather than release into it.
func (g *GitLabFreezes) Frozen(ctx context.Context, r release.Release, at time.Time) (release.Freeze, bool, error) {
	if r.Project == "" {
		return release.Freeze{}, false, nil
	}
	periods, err := g.periods(ctx, r.Project)
	if err != nil {
		return release.Freeze{}, false, err
	}
	var out release.Freeze
	frozen := false
	for _, p := range periods {
		until, ok, err := activePeriod(p, at)
		if err != nil {
			return release.Freeze{}, false, fmt.Errorf("GitLab freeze period %d of %s: %w", p.ID, r.Project, err)
		}
		if ok && (!frozen || until.After(out.Until)) {
			out, frozen = release.Freeze{Until: until, Source: "GitLab freeze period",
				Reason: fmt.Sprintf("%s to %s %s", p.FreezeStart, p.FreezeEnd, p.CronTimezone)}, true
		}
	}
	return out, frozen, nil
}

// activePeriod reports whether at lies inside p, and when p ends: inside
// means the next end comes before the next start.
func activePeriod(p gitlab.FreezePeriod, at time.Time) (time.Time, bool, error) {
	start, err := release.ParseCron(p.FreezeStart, p.CronTimezone)
	if err != nil {
		return time.Time{}, false, err
	}
	end, err := release.ParseCron(p.FreezeEnd, p.CronTimezone)
	if err != nil {
		return time.Time{}, false, err
	}
	nextEnd := end.Next(at)
	return nextEnd, !nextEnd.IsZero() && nextEnd.Before(start.Next(at)), nil
}

func (g *GitLabFreezes) periods(ctx context.Context, project string) ([]gitlab.FreezePeriod, error) {
	now := time.Now
	if g.Now != nil {
		now = g.Now
	}
	ttl := g.TTL
	if ttl == 0 {
		ttl = DefaultFreezeTTL
	}
	g.mu.Lock()
	c, ok := g.cache[project]
	g.mu.Unlock()
	if ok && now().Before(c.until) {
		return c.periods, nil
	}
	pid, err := g.GitLab.ProjectID(ctx, project)
	if err != nil {
		return nil, fmt.Errorf("freeze periods of %s: %w", project, err)
	}
	ps, err := g.GitLab.FreezePeriods(ctx, pid)
	if err != nil {
		return nil, fmt.Errorf("freeze periods of %s: %w", project, err)
	}
	if ttl > 0 {
		g.mu.Lock()
		if g.cache == nil {
			g.cache = map[string]cachedFreezes{}
		}
		g.cache[project] = cachedFreezes{periods: ps, until: now().Add(ttl)}
		g.mu.Unlock()
	}
	return ps, nil
}
