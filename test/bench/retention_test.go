package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/shipbot/shipbot/deployer/store"
	"github.com/shipbot/shipbot/test/fixtures"
)

// retentionDeliveries is how many webhook deliveries the retention
// benchmark puts through the inbox.
const retentionDeliveries = 5000

// BenchmarkRetention measures the store file around retention: 5,000
// pipeline deliveries go through the inbox (accepted, then completed), a
// week passes, then the store is pruned and opened again as serve opens
// it, which compacts. Two ways to drain: one at a time, as an idle worker
// does, and as a backlog of all 5,000, as after an outage. fsync is off:
// only sizes are measured.
func BenchmarkRetention(b *testing.B) {
	body := fixtures.PipelineSuccess(b, fixtures.Build{
		ProjectID: 42, Project: "shop/web", Ref: "main", SHA: strings.Repeat("c0ffee", 6) + "c0ff", PipelineID: 4242, Username: "dev",
	})
	var rows []retentionRow
	for _, backlog := range []bool{false, true} {
		name := map[bool]string{false: "one-at-a-time", true: "backlog"}[backlog]
		b.Run(name, func(b *testing.B) {
			for range b.N {
				row, err := retention(b.TempDir(), body, backlog)
				if err != nil {
					b.Fatal(err)
				}
				row.name = name
				b.ReportMetric(float64(row.drained), "bytes-drained")
				b.ReportMetric(float64(row.compacted), "bytes-compacted")
				rows = append(rows, row)
			}
		})
	}
	if !b.Failed() {
		fmt.Print(retentionTable(len(body), rows))
	}
}

type retentionRow struct {
	name                        string
	drained, pruned, compacted  int64 // file sizes
	prunedKeys                  int
	pruneTime, openTime, inTime time.Duration
}

func retention(dir string, body []byte, backlog bool) (retentionRow, error) {
	var row retentionRow
	path := filepath.Join(dir, "shipbot.db")
	received := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s, err := store.Open(path, store.Options{NoSync: true})
	if err != nil {
		return row, err
	}
	start := time.Now()
	var seqs []uint64
	for i := range retentionDeliveries {
		d, dup, err := s.Accept(context.Background(), store.Delivery{Key: fmt.Sprintf("delivery-%d", i), Event: "Pipeline Hook", Body: body, ReceivedAt: received})
		if err != nil || dup {
			s.Close()
			return row, fmt.Errorf("accept %d: dup %v, %v", i, dup, err)
		}
		seqs = append(seqs, d.Seq)
		if !backlog {
			seqs, err = drain(s, seqs)
		}
		if err != nil {
			s.Close()
			return row, err
		}
	}
	if _, err := drain(s, seqs); err != nil {
		s.Close()
		return row, err
	}
	row.inTime = time.Since(start)
	if row.drained, err = fileSize(path); err != nil {
		return row, err
	}
	r := store.Retention{Deliveries: 7 * 24 * time.Hour}
	now := received.Add(8 * 24 * time.Hour)
	start = time.Now()
	p, err := s.Prune(now, r)
	row.pruneTime, row.prunedKeys = time.Since(start), p.Deliveries
	if err == nil {
		err = s.Close()
	}
	if err != nil {
		return row, err
	}
	if row.pruned, err = fileSize(path); err != nil {
		return row, err
	}
	start = time.Now()
	s, err = store.Open(path, store.Options{NoSync: true, Retention: &r, Now: func() time.Time { return now }, Compact: true})
	row.openTime = time.Since(start)
	if err != nil {
		return row, err
	}
	if err := s.Close(); err != nil {
		return row, err
	}
	if row.prunedKeys != retentionDeliveries {
		return row, fmt.Errorf("pruned %d delivery keys, want %d", row.prunedKeys, retentionDeliveries)
	}
	row.compacted, err = fileSize(path)
	return row, err
}

func drain(s *store.Store, seqs []uint64) ([]uint64, error) {
	for _, seq := range seqs {
		if _, err := s.Complete(seq, nil); err != nil {
			return nil, err
		}
	}
	return seqs[:0], nil
}

func fileSize(path string) (int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

func retentionTable(bodySize int, rows []retentionRow) string {
	var out strings.Builder
	fmt.Fprintf(&out, "\nstore file around retention: %d pipeline deliveries of %d bytes, pruned 8 days later with deliveries: 7d\n\n", retentionDeliveries, bodySize)
	w := tabwriter.NewWriter(&out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "drain\tin and out\tfile drained\tkeys pruned\tprune\tfile pruned\topen (prune+compact)\tfile compacted\t")
	kib := func(n int64) string { return fmt.Sprintf("%d KiB", n/1024) }
	for _, r := range rows {
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t\n", r.name, r.inTime.Round(time.Millisecond), kib(r.drained), r.prunedKeys,
			r.pruneTime.Round(time.Millisecond), kib(r.pruned), r.openTime.Round(time.Millisecond), kib(r.compacted))
	}
	w.Flush()
	return out.String()
}
