package fakegitlab

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// params are a request's parameters the way Grape sees them: the query
// string merged with a JSON or form body (the SDK sends JSON).
type params map[string]any

func readParams(r *http.Request) (params, bool) {
	p := params{}
	for k, v := range r.URL.Query() {
		p[k] = v[0]
	}
	if r.Body == nil || r.Method == http.MethodGet {
		return p, true
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/json":
		var body map[string]any // a "null" body leaves it nil
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil && !errors.Is(err, io.EOF) {
			return nil, false
		}
		for k, v := range body {
			p[k] = v
		}
	case "application/x-www-form-urlencoded", "multipart/form-data":
		if err := r.ParseForm(); err != nil {
			return nil, false
		}
		for k, v := range r.PostForm {
			p[k] = v[0]
		}
	}
	return p, true
}

// str reads a string parameter; numbers and booleans are coerced as Grape does.
func (p params) str(key string) (string, bool) {
	switch v := p[key].(type) {
	case string:
		return v, true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	case bool:
		return strconv.FormatBool(v), true
	default:
		return "", false
	}
}

// boolean reads a Boolean parameter; ok is false when it is absent or not a boolean.
func (p params) boolean(key string) (val, ok bool) {
	switch v := p[key].(type) {
	case bool:
		return v, true
	case string:
		b, err := strconv.ParseBool(v)
		return b, err == nil
	default:
		return false, false
	}
}

// missing answers Grape's 400 for absent required parameters and reports whether it did.
func (p params) missing(w http.ResponseWriter, keys ...string) bool {
	var msgs []string
	for _, k := range keys {
		if _, ok := p[k]; !ok || p[k] == nil {
			msgs = append(msgs, k+" is missing")
		}
	}
	if len(msgs) == 0 {
		return false
	}
	paramError(w, strings.Join(msgs, ", "))
	return true
}

// oneOf answers Grape's 400 when key's value is not among values and reports whether it did.
func (p params) oneOf(w http.ResponseWriter, key string, values ...string) bool {
	v, _ := p.str(key)
	for _, ok := range values {
		if v == ok {
			return false
		}
	}
	paramError(w, key+" does not have a valid value")
	return true
}

// badRequest answers a body that could not be parsed.
func badRequest(w http.ResponseWriter) {
	apiError(w, http.StatusBadRequest, "400 Bad request - could not parse the body")
}
