package source

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	ggcr "github.com/google/go-containerregistry/pkg/registry"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	"helm.sh/helm/v4/pkg/registry"
)

// packaged is testdata/helm/demo as `helm package` writes it.
func packaged(t *testing.T) []byte {
	t.Helper()
	chrt, err := loader.LoadDir("testdata/helm/demo")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	name, err := chartutil.Save(chrt, dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// chartRepo serves a chart repository on loopback: an index.yaml naming
// demo 0.1.0, whose archive is at a relative URL, as `helm repo index`
// writes it. It counts the archive's downloads.
func chartRepo(t *testing.T) (string, *atomic.Int32) {
	t.Helper()
	tgz := packaged(t)
	var gets atomic.Int32
	index := `apiVersion: v1
entries:
  demo:
    - apiVersion: v2
      name: demo
      version: 0.1.0
      appVersion: "1.0"
      urls: [charts/demo-0.1.0.tgz]
    - apiVersion: v2
      name: demo
      version: 0.2.0
      urls: [charts/missing.tgz]
`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/stable/index.yaml":
			io.WriteString(w, index)
		case "/stable/charts/demo-0.1.0.tgz":
			gets.Add(1)
			w.Write(tgz)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/stable", &gets
}

func TestHelmFromChartRepository(t *testing.T) {
	url, gets := chartRepo(t)
	charts := &Charts{}
	h := Helm{Remote: &RemoteChart{Repository: url, Name: "demo", Version: "0.1.0"}, Charts: charts,
		ValuesFiles: []string{"helm/values-prod.yaml"}, Values: []map[string]any{{"greeting": "from the repo"}}}
	for range 2 {
		objs, err := h.Render(t.Context(), input("registry.example.com/shop/web:v2", ptr(2)))
		if err != nil {
			t.Fatal(err)
		}
		d := find(t, objs, "Deployment", "web-demo")
		if got := images(t, d); got[len(got)-1] != "registry.example.com/shop/web:v2" || replicas(d) != 2 {
			t.Errorf("Deployment web-demo runs %v with %d replicas, want the pipeline's image and 2", got, replicas(d))
		}
		if g := find(t, objs, "ConfigMap", "web-demo").Object["data"].(map[string]any)["greeting"]; g != "from the repo" {
			t.Errorf("greeting %v, want the app's value over the chart's", g)
		}
	}
	if n := gets.Load(); n != 1 {
		t.Errorf("the chart was downloaded %d times for two renders, want once", n)
	}

	// A version the index lacks, and one whose archive is missing, name
	// the chart and the version.
	for _, v := range []string{"9.9.9", "0.2.0"} {
		h.Remote = &RemoteChart{Repository: url, Name: "demo", Version: v}
		_, err := h.Render(t.Context(), input("registry.example.com/shop/web:v2", nil))
		wantError(t, err, "demo:"+v)
	}
}

func TestHelmFromOCIRegistry(t *testing.T) {
	srv := httptest.NewServer(ggcr.New(ggcr.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	client, err := registry.NewClient(registry.ClientOptPlainHTTP(), registry.ClientOptWriter(io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Push(packaged(t), host+"/charts/demo:0.1.0"); err != nil {
		t.Fatal(err)
	}
	h := Helm{Remote: &RemoteChart{Name: "oci://" + host + "/charts/demo", Version: "0.1.0", PlainHTTP: true}, Charts: &Charts{}}
	objs, err := h.Render(t.Context(), input("registry.example.com/shop/web:v3", nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := images(t, find(t, objs, "Deployment", "web-demo")); got[len(got)-1] != "registry.example.com/shop/web:v3" {
		t.Errorf("Deployment web-demo runs %v, want the pipeline's image", got)
	}
	h.Remote.Version = "0.3.0"
	_, err = h.Render(t.Context(), input("registry.example.com/shop/web:v3", nil))
	wantError(t, err, "charts/demo:0.3.0")
}
