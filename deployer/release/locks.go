package release

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/shipbot/shipbot/deployer/store"
)

// Lock is a person's hold on an environment: while it stands, releases
// there start and move on only for the holder. Locks are kept in the store,
// one per environment, so a restart keeps them.
type Lock struct {
	Environment string    `json:"environment"`
	Holder      string    `json:"holder"` // GitLab username
	Reason      string    `json:"reason"`
	Surface     Surface   `json:"surface"`
	At          time.Time `json:"at"`
}

// String says who holds the lock and why, e.g. `prod2 is locked by mia: "db migration"`.
func (l Lock) String() string {
	s := fmt.Sprintf("%s is locked by %s", l.Environment, l.Holder)
	if l.Reason != "" {
		s += fmt.Sprintf(": %q", l.Reason)
	}
	return s
}

// maxLockReason bounds a lock's reason, which chat and MR replies quote.
const maxLockReason = 500

func (l Lock) validate() error {
	switch {
	case strings.TrimSpace(l.Environment) == "":
		return fmt.Errorf("%w: no environment to lock", ErrInvalid)
	case strings.TrimSpace(l.Holder) == "":
		return fmt.Errorf("%w: no one to hold the lock", ErrInvalid)
	case len(l.Reason) > maxLockReason:
		return fmt.Errorf("%w: the reason is longer than %d bytes", ErrInvalid, maxLockReason)
	}
	return nil
}

// LockEnvironment locks l.Environment for l.Holder. Locking it again as its
// holder replaces the reason; a lock someone else holds is a conflict that
// names them, since only breaking it (Unlock with force) takes it away.
func (e *Stepper) LockEnvironment(ctx context.Context, l Lock) (Lock, error) {
	if err := ctx.Err(); err != nil {
		return Lock{}, err
	}
	l.Reason = strings.TrimSpace(l.Reason)
	if l.At.IsZero() {
		l.At = e.clock.Now()
	}
	if err := l.validate(); err != nil {
		return Lock{}, fmt.Errorf("lock %s: %w", l.Environment, err)
	}
	err := e.store.UpdateLock(l.Environment, func(stored []byte) ([]byte, error) {
		if held, ok, err := decodeLock(stored); err != nil || (ok && !sameUser(held.Holder)(l.Holder)) {
			if err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %s since %s", ErrConflict, held, held.At.UTC().Format(time.RFC3339))
		}
		return json.Marshal(l)
	})
	if err != nil {
		return Lock{}, fmt.Errorf("lock %s: %w", l.Environment, err)
	}
	e.noteOnActive(ctx, l.Environment, l.Holder, l.Surface, "environment "+l.String())
	return l, nil
}

// Unlock removes env's lock. Anyone but the holder needs force, which
// surfaces grant only to those allowed to break a lock; the breaking is
// noted on the environment's active releases. It returns the lock removed.
func (e *Stepper) Unlock(ctx context.Context, env, by string, via Surface, force bool) (Lock, error) {
	if err := ctx.Err(); err != nil {
		return Lock{}, err
	}
	var held Lock
	err := e.store.UpdateLock(env, func(stored []byte) ([]byte, error) {
		l, ok, err := decodeLock(stored)
		switch {
		case err != nil:
			return nil, err
		case !ok:
			return nil, fmt.Errorf("%w: %s is not locked", ErrConflict, env)
		case !force && !sameUser(l.Holder)(by):
			return nil, fmt.Errorf("%w: %s; only %s, or someone allowed to break locks, can unlock it", ErrConflict, l, l.Holder)
		}
		held = l
		return nil, nil
	})
	if err != nil {
		return Lock{}, fmt.Errorf("unlock %s: %w", env, err)
	}
	msg := fmt.Sprintf("environment %s unlocked by %s (was held by %s)", env, by, held.Holder)
	if !sameUser(held.Holder)(by) {
		msg = fmt.Sprintf("environment %s: lock of %s broken by %s", env, held.Holder, by)
	}
	e.noteOnActive(ctx, env, by, via, msg)
	e.log.Info("environment unlocked", "environment", env, "by", by, "surface", via, "holder", held.Holder, "broken", !sameUser(held.Holder)(by))
	return held, nil
}

// EnvironmentLock reads env's lock; ok is false when env is not locked.
func (e *Stepper) EnvironmentLock(ctx context.Context, env string) (Lock, bool, error) {
	if err := ctx.Err(); err != nil {
		return Lock{}, false, err
	}
	return ReadLock(e.store, env)
}

// ReadLock reads env's lock from st, for those who keep no Stepper (the
// runner of plain deploys); ok is false when env is not locked.
func ReadLock(st *store.Store, env string) (Lock, bool, error) {
	raw, err := st.Lock(env)
	if err != nil {
		return Lock{}, false, err
	}
	return decodeLock(raw)
}

// HeldBy reports whether the lock keeps user out: anyone but its holder.
func (l Lock) HeldBy(user string) bool { return !sameUser(l.Holder)(user) }

// Locks lists every environment lock, by environment name.
func (e *Stepper) Locks(ctx context.Context) ([]Lock, error) {
	var out []Lock
	err := e.store.Locks(func(_ string, raw []byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		l, _, err := decodeLock(raw)
		out = append(out, l)
		return err
	})
	return out, err
}

func decodeLock(raw []byte) (Lock, bool, error) {
	if raw == nil {
		return Lock{}, false, nil
	}
	var l Lock
	if err := json.Unmarshal(raw, &l); err != nil {
		return Lock{}, false, fmt.Errorf("decode lock: %w", err)
	}
	return l, true, nil
}

// noteOnActive keeps msg in the history of env's active releases, so that
// a lock taken or broken is on the record of what it held up. Failing to
// note it changes nothing: the log has it.
func (e *Stepper) noteOnActive(ctx context.Context, env, by string, via Surface, msg string) {
	active, err := e.Active(ctx)
	if err != nil {
		e.log.Warn("note lock on releases", "environment", env, "err", err)
		return
	}
	for _, a := range active {
		if a.Environment != env {
			continue
		}
		err := e.store.UpdateRelease(a.ID, func(stored []byte) ([]byte, error) {
			r, err := e.decode(stored)
			if err != nil {
				return nil, err
			}
			r.by, r.via = by, via
			r.note(EntryEvent, msg)
			return json.Marshal(r)
		})
		if err != nil {
			e.log.Warn("note lock on release", "release", a.ID, "err", err)
		}
	}
	e.log.Info(msg, "environment", env, "by", by, "surface", via)
}

// lockAllows refuses an intent on r from anyone but the holder of a lock on
// r's environment. A pause, and what shipbot records itself (stopping a
// superseded release), always pass: both only hold things still.
func (e *Stepper) lockAllows(ctx context.Context, id string, in Intent) error {
	if in.Kind == IntentPause || in.Surface == SurfaceShipbot {
		return nil
	}
	r, err := e.Get(ctx, id)
	if err != nil {
		return err
	}
	if err := e.lockAllowsEnv(ctx, r.Environment, in); err != nil {
		return fmt.Errorf("%s release %s: %w", in, id, err)
	}
	return nil
}
