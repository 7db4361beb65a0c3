package templates

import (
	"testing"
	"testing/fstest"
)

// validParams is a Params that every template in these tests accepts.
func validParams() Params {
	return Params{
		App:         "web",
		Project:     "group/web",
		Environment: "dev",
		Namespace:   "web-dev",
		Image:       "registry.example.com/group/web:1.2.3",
		Replicas:    2,
		Ports:       []Port{{Name: "http", Port: 8080}},
	}
}

// loadFiles loads files, keyed by name, as a template dir.
func loadFiles(t testing.TB, files map[string]string) *Template {
	t.Helper()
	tmpl, err := Load(mapFS(files), "t")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return tmpl
}

func mapFS(files map[string]string) fstest.MapFS {
	fsys := fstest.MapFS{}
	for name, text := range files {
		fsys["t/"+name] = &fstest.MapFile{Data: []byte(text)}
	}
	return fsys
}

func renderFiles(t testing.TB, files map[string]string, p Params) ([]Object, error) {
	t.Helper()
	return loadFiles(t, files).Render(p)
}
