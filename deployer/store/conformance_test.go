package store_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/shipbot/shipbot/deployer/store"
	"github.com/shipbot/shipbot/deployer/store/storetest"
)

// boltInbox gives the bbolt store's Pending the suite's signature.
type boltInbox struct{ *store.Store }

func (b boltInbox) Pending(_ context.Context, limit int) ([]store.Delivery, error) {
	return b.Store.Pending(limit)
}

func TestInboxConforms(t *testing.T) {
	storetest.TestInbox(t, func(t *testing.T) storetest.Inbox {
		st, err := store.Open(filepath.Join(t.TempDir(), "shipbot.db"), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return boltInbox{st}
	})
}
