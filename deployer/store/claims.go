package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"
)

// bucketClaims holds keys that may be used once within a time, each with
// the time its claim ends: a Slack request already acted on, until its
// timestamp leaves Slack's window. Keys are namespaced by their owner, e.g.
// "slack/request/<hash>".
var bucketClaims = []byte("claims")

// Claim records key until until, and reports whether it was free: never
// claimed, or claimed until a time not after now. Of two callers racing
// for one key, exactly one wins. The claim outlives a restart.
func (s *Store) Claim(key string, now, until time.Time) (bool, error) {
	if key == "" {
		return false, fmt.Errorf("claim: empty key")
	}
	won := false
	err := s.update(func(tx *wtx) error {
		b := tx.Bucket(bucketClaims)
		if v := b.Get([]byte(key)); len(v) == 8 && claimEnd(v).After(now) {
			return nil
		}
		won = true
		return b.Put([]byte(key), binary.BigEndian.AppendUint64(nil, uint64(until.UnixNano())))
	})
	return won, err
}

// PruneClaims deletes the claims that ended at or before now, in
// transactions of at most pruneChunk deletes, and says how many it deleted.
func (s *Store) PruneClaims(now time.Time) (int, error) {
	total := 0
	for {
		n, budget := 0, pruneChunk
		err := s.update(func(tx *wtx) error {
			n, budget = 0, pruneChunk
			b := tx.Bucket(bucketClaims)
			var ended [][]byte
			err := walk(b, func(k, v []byte) error {
				if len(v) != 8 || !claimEnd(v).After(now) {
					if !take(&budget, 1) {
						return errBudgetSpent
					}
					ended = append(ended, bytes.Clone(k))
				}
				return nil
			})
			if err != nil {
				return err
			}
			n = len(ended)
			return deleteKeys(b, ended)
		})
		if err != nil {
			return total, err
		}
		total += n
		if budget > 0 { // as Prune: bounded transactions, until one is not full
			return total, nil
		}
	}
}

func claimEnd(v []byte) time.Time { return time.Unix(0, int64(binary.BigEndian.Uint64(v))) }
