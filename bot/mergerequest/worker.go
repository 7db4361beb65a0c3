package mergerequest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"golang.org/x/time/rate"

	"github.com/shipbot/shipbot/bot/gitlabevent"
	"github.com/shipbot/shipbot/deployer/store"
)

// CommandWorker runs the commands of merge request comments apart from the
// inbox. The inbox only records a command, raw as delivered, in the
// transaction that takes its delivery; this worker then runs it through
// Commands, which reads the comment back from GitLab, checks the
// commenter's role and replies. So a slow or hanging GitLab, or a busy
// commenter, never holds up a deploy.
//
// Commands run one at a time, oldest first, each within Timeout and at most
// PerMinute a minute per commenter (bursts of Burst). A command runs at
// most once: it is marked running before it starts, and one found running
// after a restart is answered as interrupted instead of run again.
type CommandWorker struct {
	Commands *Commands
	Store    *store.Store
	// Timeout bounds one command, its GitLab calls included.
	Timeout time.Duration
	// PerMinute and Burst limit how many commands one commenter gives.
	PerMinute int
	Burst     int
	Log       *slog.Logger
	Now       func() time.Time

	wake     chan struct{}
	limiters map[int64]*rate.Limiter // by the payload's user id; only Run's goroutine uses it
}

// NewCommandWorker returns a worker with w's settings, ready to run; its
// clock is time.Now when w.Now is nil, and its limits 30 s, 10 a minute
// and bursts of 5 where unset.
func NewCommandWorker(w CommandWorker) *CommandWorker {
	if w.Now == nil {
		w.Now = time.Now
	}
	w.Timeout = cmp.Or(w.Timeout, 30*time.Second)
	w.PerMinute, w.Burst = cmp.Or(w.PerMinute, 10), cmp.Or(w.Burst, 5)
	w.wake = make(chan struct{}, 1)
	w.limiters = map[int64]*rate.Limiter{}
	return &w
}

// Record implements inbox.Notes: the changes that record the command of
// comment n, which came in delivery d, in d's own transaction; nil when n
// is no command. It calls nothing.
func (w *CommandWorker) Record(d store.Delivery, n *gitlabevent.Note) func(*store.Tx) error {
	if !Wants(n) {
		return nil
	}
	at := d.ReceivedAt
	if at.IsZero() {
		at = w.Now()
	}
	return func(tx *store.Tx) error {
		_, err := tx.AddCommand(store.Command{Kind: d.Event, Body: d.Body, DeliveryKey: d.Key, RecordedAt: at})
		return err
	}
}

// Wake tells the worker a command is waiting.
func (w *CommandWorker) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run runs recorded commands until ctx ends, first answering those a
// previous run was interrupted in. A command in hand when ctx ends is
// stopped, and answered as interrupted at the next start.
func (w *CommandWorker) Run(ctx context.Context) error {
	w.Interrupted(ctx)
	for {
		if _, err := w.RunRecorded(ctx); err != nil {
			w.Log.Error("run commands", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-w.wake:
		case <-time.After(5 * time.Second):
		}
	}
}

// RunRecorded runs the commands recorded so far, oldest first, and says
// how many it ran; tests call it to drive the worker by hand.
func (w *CommandWorker) RunRecorded(ctx context.Context) (int, error) {
	ran := 0
	for ctx.Err() == nil {
		cmds, err := w.Store.Commands(store.CommandRecorded, batch)
		if err != nil || len(cmds) == 0 {
			return ran, err
		}
		for _, c := range cmds {
			if ctx.Err() != nil {
				break
			}
			if w.run(ctx, c.Seq) {
				ran++
			}
		}
	}
	return ran, nil
}

// batch is how many commands are read per pass.
const batch = 32

// replyGrace bounds the reply that says a command ran out of time, or was
// interrupted: GitLab may still be slow.
const replyGrace = 10 * time.Second

// run runs command seq, unless it is no longer waiting, and reports
// whether it did.
func (w *CommandWorker) run(ctx context.Context, seq uint64) bool {
	c, started, err := w.Store.StartCommand(seq, w.Now())
	if err != nil || !started {
		if err != nil {
			w.Log.Error("start command", "command", seq, "err", err)
		}
		return false
	}
	log := w.Log.With("command", c.Seq, "delivery", c.DeliveryKey)
	n, err := noteOf(c)
	if err != nil {
		log.Error("command dropped", "err", err)
		w.finish(log, c.Seq, nil)
		return true
	}
	log = log.With("project", n.Project.Path, "mr", n.MergeRequest.IID, "note", n.ID)
	cctx, cancel := context.WithTimeout(ctx, w.Timeout)
	defer cancel()
	if wait, ok := w.allow(n.User.ID, c.RecordedAt); !ok {
		log.Info("command refused: too many from one person", "user", n.User.Username, "wait", wait)
		w.finish(log, c.Seq, nil)
		w.Commands.conclude(cctx, n, false, w.tooMany(n, wait), log)
		return true
	}
	changes, after := w.Commands.Handle(cctx, n)
	committed := w.finish(log, c.Seq, changes)
	if after != nil {
		after(committed)
	}
	if errors.Is(cctx.Err(), context.DeadlineExceeded) {
		log.Warn("command ran out of time", "timeout", w.Timeout)
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), replyGrace)
		defer cancel()
		w.Commands.conclude(rctx, n, false, fmt.Sprintf("❌ shipbot gave up on this command after %s: GitLab did not answer in time. "+
			"Anything it recorded before then stands; check with `/status` before you repeat it.", w.Timeout), log)
	}
	return true
}

// finish forgets command seq in the transaction that applies its changes,
// and returns that transaction's error; a command whose changes failed is
// answered with the error, and forgotten all the same.
func (w *CommandWorker) finish(log *slog.Logger, seq uint64, changes func(*store.Tx) error) error {
	_, err := w.Store.Update(func(tx *store.Tx) error {
		if changes != nil {
			if err := changes(tx); err != nil {
				return err
			}
		}
		return tx.FinishCommand(seq)
	})
	if err != nil && changes != nil {
		_, err2 := w.Store.Update(func(tx *store.Tx) error { return tx.FinishCommand(seq) })
		if err2 != nil {
			log.Error("forget command", "err", err2)
		}
	}
	return err
}

// Interrupted answers and forgets the commands that were running when
// shipbot stopped: they may have done part of their work, so running them
// again could do it twice.
func (w *CommandWorker) Interrupted(ctx context.Context) {
	running, err := w.Store.Commands(store.CommandRunning, math.MaxInt)
	if err != nil {
		w.Log.Error("read interrupted commands", "err", err)
		return
	}
	for _, c := range running {
		log := w.Log.With("command", c.Seq, "delivery", c.DeliveryKey)
		log.Warn("command interrupted by a stop; not run again")
		w.finish(log, c.Seq, nil)
		n, err := noteOf(c)
		if err != nil {
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, replyGrace)
		w.Commands.conclude(rctx, n, false, "❌ shipbot stopped while it ran this command, and does not run it again so that it never runs twice. "+
			"Check with `/status`, and repeat it if it is still wanted.", log)
		cancel()
	}
}

// allow takes one of user's commands at t from their budget, or says how
// long until the next one would be taken.
func (w *CommandWorker) allow(user int64, t time.Time) (time.Duration, bool) {
	lim, ok := w.limiters[user]
	if !ok {
		if len(w.limiters) >= 1024 {
			w.prune(t)
		}
		lim = rate.NewLimiter(rate.Limit(float64(w.PerMinute)/60), w.Burst)
		w.limiters[user] = lim
	}
	r := lim.ReserveN(t, 1)
	if d := r.DelayFrom(t); d > 0 {
		r.CancelAt(t)
		return d, false
	}
	return 0, true
}

// prune forgets the commenters whose budget is full again.
func (w *CommandWorker) prune(t time.Time) {
	for user, lim := range w.limiters {
		if lim.TokensAt(t) >= float64(w.Burst) {
			delete(w.limiters, user)
		}
	}
}

func (w *CommandWorker) tooMany(n *gitlabevent.Note, wait time.Duration) string {
	return fmt.Sprintf("❌ @%s, shipbot takes at most %d commands a minute from one person (%d at once), and you are over that: "+
		"this one was not run. Repeat it in %s or later.", n.User.Username, w.PerMinute, w.Burst, (wait + time.Second - 1).Truncate(time.Second))
}

// noteOf decodes the comment a command was recorded from.
func noteOf(c store.Command) (*gitlabevent.Note, error) {
	ev, err := gitlabevent.Decode(c.Kind, c.Body)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", c.Kind, err)
	}
	n, ok := ev.(*gitlabevent.Note)
	if !ok || n.MergeRequest == nil {
		return nil, fmt.Errorf("a %s is not a merge request comment", c.Kind)
	}
	return n, nil
}
