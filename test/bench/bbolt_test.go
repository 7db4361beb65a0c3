package bench

import (
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

var rawBucket = []byte("raw")

// rawBatch is the ceiling the intake is judged against: the level's senders
// each put a value the size of the webhook body with DB.Batch into a fresh
// bbolt file with fsync on, which is store.Accept's write without the HTTP,
// the decode, the dedupe lookup and the JSON encoding.
func rawBatch(ctx context.Context, path string, l level, value []byte) (result, error) {
	ctx, cancel := context.WithTimeout(ctx, levelTimeout)
	defer cancel()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		return result{}, err
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucket(rawBucket)
		return err
	})
	if err != nil {
		return result{}, err
	}
	res, err := l.run(ctx, func(_ context.Context, key string) error {
		return db.Batch(func(tx *bolt.Tx) error { return tx.Bucket(rawBucket).Put([]byte(key), value) })
	})
	if err != nil {
		return result{}, err
	}
	return res, checkRaw(db, l.total())
}

func checkRaw(db *bolt.DB, want int) error {
	return db.View(func(tx *bolt.Tx) error {
		if n := tx.Bucket(rawBucket).Stats().KeyN; n != want {
			return fmt.Errorf("bbolt holds %d values, %d were written", n, want)
		}
		return nil
	})
}
