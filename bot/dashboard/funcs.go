package dashboard

import (
	"html/template"
	"time"
)

// funcs are the few helpers the templates need; everything else is
// derived in Go, where it is tested.
var funcs = template.FuncMap{
	// when writes a time in UTC to the second, the same on every reader's screen.
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format("2006-01-02 15:04:05")
	},
	"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
}
