package app

import (
	"context"
	"errors"
	"time"

	"github.com/shipbot/shipbot/deployer"
	"github.com/shipbot/shipbot/deployer/release"
)

// fanout hands each release event to every notifier. One failing notifier
// does not keep the event from the others; the engine logs the joined error.
func fanout(ns []release.Notifier) release.Notifier {
	return release.NotifierFunc(func(ctx context.Context, e release.Event) error {
		var errs []error
		for _, n := range ns {
			if err := n.Notify(ctx, e); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	})
}

// deployFanout does for deploy events what fanout does for releases; nil
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
