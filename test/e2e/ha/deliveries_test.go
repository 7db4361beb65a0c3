package ha

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shipbot/shipbot/bot/api"
	"github.com/shipbot/shipbot/test/fixtures"
)

// run delivers pipelines from..to-1 with n concurrent senders, and says
// on the channel, once all are acknowledged, what was not.
func (s *sender) run(ctx context.Context, from, to, n int) <-chan error {
	work := make(chan int)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var all []error
	for range n {
		wg.Go(func() {
			for i := range work {
				if err := s.deliver(ctx, i, 50*time.Millisecond); err != nil {
					mu.Lock()
					all = append(all, err)
					mu.Unlock()
				}
			}
		})
	}
	go func() {
		for i := from; i < to; i++ {
			work <- i
		}
		close(work)
		wg.Wait()
		errs <- errors.Join(all...)
	}()
	return errs
}

// 2,000 pipeline webhooks go to three replicas, round robin, 16 at a time;
// the leader is killed (kill -9) once 600 are acknowledged. A sender
// retries what a replica did not acknowledge at the next one, with the
// same event UUID, as GitLab would, and 200 acknowledged deliveries are
// sent again afterwards. Every acknowledged delivery ends as exactly one
// deployment record: none lost with the leader, none doubled.
func TestEveryAcknowledgedWebhookIsProcessedOnceAcrossAFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("2,000 webhooks and a failover")
	}
	const total, killAfter = 2000, 600
	set := startReplicas(t, 3)
	lead := set.Leader("")
	s := newSender(set)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()

	start := time.Now()
	done := s.run(ctx, 1, total+1, 16)
	fixtures.Eventually(t, 2*time.Minute, fmt.Sprintf("%d deliveries acknowledged", killAfter), func() error {
		if n := s.acked.Load(); n < killAfter {
			return fmt.Errorf("%d acknowledged", n)
		}
		return nil
	})
	set.Kill(lead)
	killed, ackedAtKill := time.Now(), s.acked.Load()
	lead = set.Leader(lead)
	t.Logf("leader killed after %d acknowledgements; the next held the lease %s later", ackedAtKill, time.Since(killed).Round(time.Millisecond))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	t.Logf("%d deliveries acknowledged in %s; %d tries were not acknowledged and sent again (answers by status, 0 for none: %v)",
		s.acked.Load(), time.Since(start).Round(time.Millisecond), s.failures.Load(), s.answered())

	// Redeliveries of acknowledged ones, to the replicas still alive.
	s.to(lead, set.Other(lead))
	s.failures.Store(0)
	for i := 7; i <= total; i += total / 200 {
		if err := s.deliver(ctx, i, 50*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.failures.Load(); n != 0 {
		t.Errorf("%d redeliveries were not acknowledged at once", n)
	}

	cl := &api.Client{Server: "http://" + set.Other(lead), Token: apiToken}
	var got map[int64]int
	fixtures.Eventually(t, 3*time.Minute, "a finished deployment record for every delivery", func() error {
		var active int
		var err error
		if got, active, err = deploymentsByPipeline(ctx, cl); err != nil {
			return err
		}
		if len(got) < total || active > 0 {
			return fmt.Errorf("records for %d of %d pipelines, %d still active", len(got), total, active)
		}
		return nil
	})
	t.Logf("all %d processed %s after the first was sent", total, time.Since(start).Round(time.Millisecond))
	holds(t, 2*time.Second, "no record comes late", func() error {
		later, _, err := deploymentsByPipeline(ctx, cl)
		if err == nil && !maps.Equal(later, got) {
			err = fmt.Errorf("the records changed: %d pipelines, had %d", len(later), len(got))
		}
		return err
	})
	if wrong := exactlyOnce(got, total); len(wrong) > 0 {
		t.Fatalf("%d of %d deliveries not processed exactly once:\n%s", len(wrong), total, strings.Join(wrong[:min(20, len(wrong))], "\n"))
	}
}
