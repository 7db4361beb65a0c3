package gitlab

import (
	"context"

	gl "gitlab.com/gitlab-org/api/client-go"
)

// FreezePeriod is a project's deploy freeze as GitLab keeps it: it starts
// at each time the cron FreezeStart names and ends at the next FreezeEnd,
// both read in CronTimezone.
type FreezePeriod struct {
	ID           int64
	FreezeStart  string // cron, e.g. "0 23 * * 5"
	FreezeEnd    string // cron, e.g. "0 7 * * 1"
	CronTimezone string // IANA name, e.g. "UTC"
}

// FreezePeriods lists a project's deploy freeze periods, all pages.
func (c *Client) FreezePeriods(ctx context.Context, projectID int64) ([]FreezePeriod, error) {
	opt := &gl.ListFreezePeriodsOptions{ListOptions: gl.ListOptions{PerPage: 100}}
	var out []FreezePeriod
	for {
		page, resp, err := c.gl.FreezePeriods.ListFreezePeriods(projectID, opt, gl.WithContext(ctx))
		if err != nil {
			return nil, wrap(err, "list freeze periods of project %d", projectID)
		}
		for _, p := range page {
			out = append(out, FreezePeriod{ID: p.ID, FreezeStart: p.FreezeStart, FreezeEnd: p.FreezeEnd, CronTimezone: p.CronTimezone})
		}
		if resp == nil || resp.NextPage == 0 {
			return out, nil
		}
		opt.Page = resp.NextPage
	}
}
