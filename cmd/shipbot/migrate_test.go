package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shipbot/shipbot/deployer/store"
)

// examplesWithInbox is docs/examples/shipbot.yaml with webhook.inbox set.
func examplesWithInbox(t *testing.T) string {
	t.Helper()
	t.Setenv("SHIPBOT_GITLAB_TOKEN", "x")
	t.Setenv("SHIPBOT_WEBHOOK_SECRET", "y")
	b, err := os.ReadFile("../../docs/examples/shipbot.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(b), "\nwebhook:\n", "\nwebhook:\n  inbox: {cluster: nonprod, namespace: shipbot}\n", 1)
	text = strings.Replace(text, "maxBodyBytes: 5242880", "maxBodyBytes: 786432", 1)
	path := filepath.Join(t.TempDir(), "shipbot.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// A dry run counts a store's records per bucket and writes nothing.
func TestMigrateDryRunCounts(t *testing.T) {
	cfg := examplesWithInbox(t)
	db := filepath.Join(t.TempDir(), "shipbot.db")
	st, err := store.Open(db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "b", "c"} {
		if _, _, err := st.Accept(context.Background(), store.Delivery{Key: k, Event: "Push Hook", Body: []byte(`{}`), ReceivedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.PutNote("n", []byte("v")); err != nil {
		t.Fatal(err)
	}
	st.Close()
	out, err := run(t, "store", "migrate", "-c", cfg, "--from", "bbolt:"+db, "--to", "kubernetes", "--dry-run")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	// 3 inbox items, 3 delivery keys, 1 note and its time, and the inbox's sequence.
	for _, want := range []string{"inbox            3\n", "delivery-keys    3\n", "notes            1\n", "dry run: would copy 9 records and sequences from " + db + " to nonprod/shipbot\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestMigrateRefusesWhatItCannotDo(t *testing.T) {
	cfg := examplesWithInbox(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--from", "shipbot.db"}, `--from "shipbot.db": want bbolt:FILE`},
		{[]string{"--from", "bbolt:x.db", "--to", "etcd"}, `--to "etcd": want kubernetes`},
		{[]string{"--from", "bbolt:x.db", "-c", "../../docs/examples/shipbot.yaml"}, "set webhook.inbox"},
	} {
		args := append([]string{"store", "migrate", "-c", cfg}, c.args...)
		if _, err := run(t, args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error saying %q", c.args, err, c.want)
		}
	}
}
