package serve

import (
	"context"
	"errors"
	"time"

	"github.com/shipbot/shipbot/deployer"
	"github.com/shipbot/shipbot/deployer/release"
)

// deployFanout hands each deploy event to every notifier; nil
// when there is no one to tell.
func deployFanout(ns []deployer.Notifier) deployer.Notifier {
	if len(ns) == 0 {
		return nil
	}
	if len(ns) == 1 {
		return ns[0]
	}
	return deployer.NotifierFunc(func(ctx context.Context, e deployer.Event) error {
		var errs []error
		for _, n := range ns {
			if err := n.Notify(ctx, e); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	})
}

type clockFunc func() time.Time

func (f clockFunc) Now() time.Time { return f() }

func clock(now func() time.Time) release.Clock { return clockFunc(now) }
