package source

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"golang.org/x/sync/singleflight"
	"helm.sh/helm/v4/pkg/chart/loader/archive"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/registry"
	repo "helm.sh/helm/v4/pkg/repo/v1"
	"sigs.k8s.io/yaml"
)

// OCIPrefix starts a chart reference in an OCI registry.
const OCIPrefix = "oci://"

// RemoteChart is a chart in a Helm chart repository (an index.yaml served
// over HTTP) or in an OCI registry, at one version.
type RemoteChart struct {
	// Repository is the chart repository's URL; empty for an OCI chart.
	Repository string
	// Name is the chart's name in the repository, or oci://host/path/name.
	Name string
	// Version is the chart's exact version.
	Version string
	// PlainHTTP talks to an OCI registry without TLS, as helm --plain-http.
	PlainHTTP bool
}

// String names the chart as people write it.
func (r RemoteChart) String() string {
	if r.Repository == "" {
		return r.Name + ":" + r.Version
	}
	return strings.TrimSuffix(r.Repository, "/") + "/" + r.Name + ":" + r.Version
}

// maxIndexBytes bounds a chart repository's index.yaml.
const maxIndexBytes = 32 << 20

// Charts downloads remote charts. A chart version's archive never changes,
// so each is downloaded once and kept; concurrent renders share a download.
// The archive, not the loaded chart, is kept: a render changes the chart it
// is given (Helm drops disabled dependencies from it).
type Charts struct {
	// HTTP fetches chart repositories' indexes and archives;
	// http.DefaultClient when nil.
	HTTP *http.Client

	group singleflight.Group
	mu    sync.Mutex
	cache map[string][]byte
}

// Load returns the chart, loaded from its archive.
func (c *Charts) Load(ctx context.Context, rc RemoteChart) (*chart.Chart, error) {
	if c == nil {
		return nil, fmt.Errorf("helm chart %s: %w: no chart downloader", rc, ErrInvalid)
	}
	key := rc.String()
	c.mu.Lock()
	b, ok := c.cache[key]
	c.mu.Unlock()
	if !ok {
		v, err, _ := c.group.Do(key, func() (any, error) { return c.download(ctx, rc) })
		if err != nil {
			return nil, fmt.Errorf("helm chart %s: %w", rc, err)
		}
		b = v.([]byte)
		c.mu.Lock()
		if c.cache == nil {
			c.cache = map[string][]byte{}
		}
		c.cache[key] = b
		c.mu.Unlock()
	}
	chrt, err := loader.LoadArchive(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("helm chart %s: %w", rc, err)
	}
	return chrt, nil
}

func (c *Charts) download(ctx context.Context, rc RemoteChart) ([]byte, error) {
	if strings.HasPrefix(rc.Name, OCIPrefix) {
		return pullOCI(rc)
	}
	index, err := c.get(ctx, strings.TrimSuffix(rc.Repository, "/")+"/index.yaml", maxIndexBytes)
	if err != nil {
		return nil, fmt.Errorf("chart repository index: %w", err)
	}
	var idx repo.IndexFile
	if err := yaml.Unmarshal(index, &idx); err != nil {
		return nil, fmt.Errorf("chart repository index.yaml: %w", err)
	}
	cv, ok := exactVersion(idx, rc.Name, rc.Version)
	if !ok {
		return nil, fmt.Errorf("the repository's index.yaml has no chart %q at version %q", rc.Name, rc.Version)
	}
	if len(cv.URLs) == 0 {
		return nil, fmt.Errorf("the repository's index.yaml gives no URL for %s %s", rc.Name, rc.Version)
	}
	u, err := repo.ResolveReferenceURL(rc.Repository, cv.URLs[0])
	if err != nil {
		return nil, err
	}
	return c.get(ctx, u, archive.MaxDecompressedChartSize)
}

// exactVersion finds the version asked for, and no other: shipbot pins
// charts, so a deploy never picks up a chart nobody chose.
func exactVersion(idx repo.IndexFile, name, version string) (*repo.ChartVersion, bool) {
	for _, cv := range idx.Entries[name] {
		if cv != nil && cv.Metadata != nil && cv.Version == version {
			return cv, true
		}
	}
	return nil, false
}

// get reads a URL, at most limit bytes.
func (c *Charts) get(ctx context.Context, u string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", req.URL.Redacted(), resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err == nil && int64(len(b)) > limit {
		err = fmt.Errorf("GET %s: larger than %d bytes", req.URL.Redacted(), limit)
	}
	return b, err
}

// pullOCI pulls the chart layer of name:version from its registry.
func pullOCI(rc RemoteChart) ([]byte, error) {
	opts := []registry.ClientOption{registry.ClientOptWriter(io.Discard)}
	if rc.PlainHTTP {
		opts = append(opts, registry.ClientOptPlainHTTP())
	}
	client, err := registry.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	res, err := client.Pull(strings.TrimPrefix(rc.Name, OCIPrefix)+":"+rc.Version, registry.PullOptWithChart(true))
	if err != nil {
		return nil, err
	}
	return res.Chart.Data, nil
}
