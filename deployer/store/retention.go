package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// bucketNoteTimes holds when each note was last written (UnixNano, big
// endian), so notes can expire without the store reading their values.
var bucketNoteTimes = []byte("note-times")

// Retention says how long the store keeps records nothing needs once they
// are old. A zero duration keeps those records forever.
type Retention struct {
	// Deliveries keeps the key of each processed webhook delivery, which
	// drops GitLab's redeliveries of it.
	Deliveries time.Duration
	// Records keeps finished deployments and stopped previews. The newest
	// finished deployment of each target is kept whatever its age.
	Records time.Duration
	// Notes keeps a surface's note after it was last written.
	Notes time.Duration
	// NotePrefixes keep the notes under a prefix for their own time
	// instead, e.g. one-time links, which must outlive the link.
	NotePrefixes map[string]time.Duration
}

// Pruned counts what Prune deleted.
type Pruned struct {
	Deliveries, Deployments, Previews, Notes int
}

// Total is everything Prune deleted.
func (p Pruned) Total() int { return p.Deliveries + p.Deployments + p.Previews + p.Notes }

func (p Pruned) add(q Pruned) Pruned {
	return Pruned{p.Deliveries + q.Deliveries, p.Deployments + q.Deployments, p.Previews + q.Previews, p.Notes + q.Notes}
}

// pruneChunk bounds the writes of one prune transaction. A store
// journaled in the apiserver (store.backend kubernetes) takes up to 1 MiB
// per transaction, some ten thousand deletes, and a retention shortened
// on a busy store finds more than that at once: in one transaction it
// would be refused, at this prune and every later one.
const pruneChunk = 1000

// errBudgetSpent stops a walk once a prune transaction has its fill.
var errBudgetSpent = errors.New("prune: this transaction's writes are spent")

// Prune deletes what r no longer keeps at now, in transactions of at most
// pruneChunk writes each, until nothing is left to delete. What one
// transaction deleted stays deleted if a later one fails. A note written
// before notes had times is taken as written now.
func (s *Store) Prune(now time.Time, r Retention) (Pruned, error) {
	var total Pruned
	for {
		var p Pruned
		budget, stamped := pruneChunk, 0
		err := s.update(func(tx *wtx) (err error) {
			p, budget = Pruned{}, pruneChunk
			if p.Deliveries, err = pruneDeliveries(tx, now, r.Deliveries, &budget); err != nil {
				return err
			}
			if p.Deployments, err = pruneDeployments(tx, now, r.Records, &budget); err != nil {
				return err
			}
			if p.Previews, err = prunePreviews(tx, now, r.Records, &budget); err != nil {
				return err
			}
			p.Notes, stamped, err = pruneNotes(tx, now, r, &budget)
			return err
		})
		if err != nil {
			return total, err
		}
		total = total.add(p)
		// A walk that stopped for want of budget left 0 or 1 (a note's
		// delete takes 2); with more left, it found all there was. A pass
		// that wrote nothing ends it too, whatever its budget says.
		if budget > 1 || p.Total()+stamped == 0 {
			return total, nil
		}
	}
}

// take spends n of budget's writes, and says whether there were as many.
func take(budget *int, n int) bool {
	if *budget < n {
		return false
	}
	*budget -= n
	return true
}

// walk is b.ForEach, ended early without error once fn returns errBudgetSpent.
func walk(b *wbucket, fn func(k, v []byte) error) error {
	if err := b.ForEach(fn); err != nil && !errors.Is(err, errBudgetSpent) {
		return err
	}
	return nil
}

// deleteKeys deletes keys from b after the walk that found them: bbolt's
// cursor skips entries when its bucket changes under it.
func deleteKeys(b *wbucket, keys [][]byte) error {
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

func pruneDeliveries(tx *wtx, now time.Time, keep time.Duration, budget *int) (int, error) {
	if keep <= 0 {
		return 0, nil
	}
	keys, inbox := tx.Bucket(bucketKeys), tx.Bucket(bucketInbox)
	var old [][]byte
	err := walk(keys, func(k, v []byte) error {
		var rec keyRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("delivery key %s: %w", k, err)
		}
		if now.Sub(rec.ReceivedAt) > keep && inbox.Get(itob(rec.Seq)) == nil {
			if !take(budget, 1) {
				return errBudgetSpent
			}
			old = append(old, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return len(old), deleteKeys(keys, old)
}

func pruneDeployments(tx *wtx, now time.Time, keep time.Duration, budget *int) (int, error) {
	if keep <= 0 {
		return 0, nil
	}
	b := tx.Bucket(bucketDeployments)
	newest := map[string]string{} // target → key of its newest finished deployment
	type finished struct {
		key string
		d   Deployment
	}
	var done []finished
	err := b.ForEach(func(k, v []byte) error {
		var d Deployment
		if err := json.Unmarshal(v, &d); err != nil {
			return fmt.Errorf("deployment %s: %w", k, err)
		}
		if d.Status.Active() {
			return nil
		}
		done = append(done, finished{string(k), d})
		newest[d.Target()] = string(k) // keys are ids, which sort by creation
		return nil
	})
	if err != nil {
		return 0, err
	}
	var old [][]byte
	for _, f := range done {
		ended := f.d.Finished
		if ended.IsZero() {
			ended = f.d.Created
		}
		// Deleted by the key walked, so that a budget spent is a write made.
		if now.Sub(ended) > keep && newest[f.d.Target()] != f.key && take(budget, 1) {
			old = append(old, []byte(f.key))
		}
	}
	return len(old), deleteKeys(b, old)
}

func prunePreviews(tx *wtx, now time.Time, keep time.Duration, budget *int) (int, error) {
	if keep <= 0 {
		return 0, nil
	}
	b := tx.Bucket(bucketPreviews)
	var old [][]byte
	err := walk(b, func(k, v []byte) error {
		var p Preview
		if err := json.Unmarshal(v, &p); err != nil {
			return fmt.Errorf("preview %s: %w", k, err)
		}
		if p.Status == PreviewStopped && !p.Wanted && now.Sub(p.Updated) > keep {
			if !take(budget, 1) {
				return errBudgetSpent
			}
			old = append(old, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return len(old), deleteKeys(b, old)
}

// pruneNotes deletes old notes, and stamps those without a time; a stamp
// is one write of budget, a note's delete two.
func pruneNotes(tx *wtx, now time.Time, r Retention, budget *int) (deleted, stamped int, err error) {
	notes, times := tx.Bucket(bucketNotes), tx.Bucket(bucketNoteTimes)
	var old, unknown [][]byte
	err = walk(notes, func(k, _ []byte) error {
		keep := r.keepNote(string(k))
		raw := times.Get(k)
		switch {
		case raw == nil:
			if !take(budget, 1) {
				return errBudgetSpent
			}
			unknown = append(unknown, bytes.Clone(k))
		case keep > 0 && now.Sub(time.Unix(0, int64(binary.BigEndian.Uint64(raw)))) > keep:
			if !take(budget, 2) { // the note and its time
				return errBudgetSpent
			}
			old = append(old, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	for _, k := range unknown {
		if err := stampNote(times, k, now); err != nil {
			return 0, 0, err
		}
	}
	if err := deleteKeys(times, old); err != nil {
		return 0, 0, err
	}
	return len(old), len(unknown), deleteKeys(notes, old)
}

// keepNote is how long the note under key is kept: its longest matching
// prefix's time, or Notes.
func (r Retention) keepNote(key string) time.Duration {
	keep, longest := r.Notes, -1
	for prefix, d := range r.NotePrefixes {
		if strings.HasPrefix(key, prefix) && len(prefix) > longest {
			keep, longest = d, len(prefix)
		}
	}
	return keep
}

func stampNote(times *wbucket, key []byte, at time.Time) error {
	return times.Put(key, itob(uint64(at.UnixNano())))
}
