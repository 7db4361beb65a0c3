package signin

import (
	"bytes"
	"html/template"
	"net/http"

	"github.com/labstack/echo/v4"
)

// writePage answers with a short HTML page: sign-in's own outcomes, never
// a token or a code.
func writePage(c echo.Context, status int, title, message string) error {
	setHeaders(c.Response().Header())
	var b bytes.Buffer
	if err := pageTemplate.Execute(&b, struct{ Title, Message string }{title, message}); err != nil {
		return c.String(http.StatusInternalServerError, "internal error\n")
	}
	return c.HTMLBlob(status, b.Bytes())
}

// setHeaders keeps sign-in pages and redirects out of caches and frames,
// and the code and state in their URLs out of Referer headers.
func setHeaders(h http.Header) {
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'")
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{{.Title}} · shipbot</title>
<style>
body { font: 16px/1.5 system-ui, sans-serif; margin: 0; background: #f6f7f9; color: #1f2328; }
main { max-width: 36rem; margin: 2rem auto; padding: 1.5rem; background: #fff; border-radius: 8px; border-top: 6px solid #cf222e; }
h1 { font-size: 1.3rem; margin-top: 0; }
</style>
</head>
<body>
<main>
<h1>{{.Title}}</h1>
<p>{{.Message}}</p>
</main>
</body>
</html>
`))
