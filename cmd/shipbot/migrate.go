package main

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/shipbot/shipbot/cmd/shipbot/serve"
	"github.com/shipbot/shipbot/deployer/store"
	"github.com/shipbot/shipbot/deployer/store/kubestore"
)

func storeCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "store", Short: "Work on shipbot's store"}
	cmd.AddCommand(migrateCmd())
	return cmd
}

func migrateCmd() *cobra.Command {
	var from, to string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "migrate --from bbolt:FILE --to kubernetes [--dry-run]",
		Short: "Copy every record of a bbolt store into the cluster (webhook.inbox's namespace), for store.backend kubernetes",
		Long: "Copy every record of a bbolt store into webhook.inbox's cluster and namespace, as Release, Deployment, Preview, Note " +
			"and Record objects, " +
			"then count them back. Stop shipbot first: records written meanwhile are not copied. " +
			"The namespace must hold no store yet. --dry-run counts what would be copied, per bucket, and writes nothing.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return migrate(cmd, from, to, dryRun) },
	}
	cmd.Flags().StringVar(&from, "from", "", "the store to copy: bbolt:FILE")
	cmd.Flags().StringVar(&to, "to", "kubernetes", "where to: kubernetes (webhook.inbox's cluster and namespace)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "count, write nothing")
	return cmd
}

// migrate copies the bbolt store at from ("bbolt:FILE") into webhook.inbox's
// namespace, or with dryRun only counts it.
func migrate(cmd *cobra.Command, from, to string, dryRun bool) error {
	path, ok := strings.CutPrefix(from, "bbolt:")
	if !ok || path == "" {
		return fmt.Errorf("--from %q: want bbolt:FILE", from)
	}
	if to != "kubernetes" {
		return fmt.Errorf("--to %q: want kubernetes", to)
	}
	cfg, err := loadConfig(cmd)
	if err != nil {
		return err
	}
	if cfg.Webhook.Inbox == nil {
		return errors.New("the store goes to webhook.inbox's cluster and namespace; set webhook.inbox in " + cfg.File())
	}
	writes, perBucket, err := readStore(path)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	ns := cfg.Webhook.Inbox.Cluster + "/" + cfg.Webhook.Inbox.Namespace
	for _, b := range slices.Sorted(maps.Keys(perBucket)) {
		fmt.Fprintf(out, "%-16s %d\n", b, perBucket[b])
	}
	if dryRun {
		fmt.Fprintf(out, "dry run: would copy %d records and sequences from %s to %s\n", len(writes), path, ns)
		return nil
	}
	rc, err := serve.InboxRESTConfig(cfg)
	if err != nil {
		return err
	}
	n, err := kubestore.Import(cmd.Context(), rc, cfg.Webhook.Inbox.Namespace, writes)
	if err != nil {
		return err
	}
	if n != len(writes) {
		return fmt.Errorf("copied %d records and sequences to %s, but it holds %d", len(writes), ns, n)
	}
	fmt.Fprintf(out, "copied %d records and sequences from %s to %s; counted %d there\n", len(writes), path, ns, n)
	return nil
}

// readStore reads every record and sequence of the bbolt store at path,
// and counts the records per bucket.
func readStore(path string) ([]store.Write, map[string]int, error) {
	st, err := store.Open(path, store.Options{})
	if err != nil {
		return nil, nil, err
	}
	var writes []store.Write
	perBucket := map[string]int{}
	err = st.Contents(func(w store.Write) error {
		writes = append(writes, w)
		if w.Key != nil {
			perBucket[w.Bucket]++
		}
		return nil
	})
	return writes, perBucket, errors.Join(err, st.Close())
}
