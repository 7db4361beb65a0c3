package templates

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig/v3"
	"sigs.k8s.io/yaml"
)

// maxOutput bounds what one file or one include may render: far above any real
// manifest (etcd refuses objects over about 1.5 MiB), low enough that a runaway
// loop fails instead of exhausting shipbot's memory.
const maxOutput = 4 << 20

// maxIncludeDepth stops runaway include recursion before it overflows the
// goroutine stack, which Go cannot recover from.
const maxIncludeDepth = 100

// maxSeqArg bounds the integer arguments of sprig's list builders, whose
// loops otherwise allocate without limit or overflow and never end.
const maxSeqArg = 1 << 20

// errOutputTooLarge is returned once a render passes maxOutput.
var errOutputTooLarge = fmt.Errorf("rendered output exceeds %d bytes", maxOutput)

// denied are sprig functions that read the environment or network, or give a
// different answer on each call: a render must depend on Params alone, or
// every deploy would diff and roll the pods.
var denied = []string{
	"env", "expandenv", "getHostByName",
	"now", "ago", "date", "dateInZone", "date_in_zone", "dateModify", "date_modify",
	"htmlDate", "htmlDateInZone",
	"toDate", "mustToDate", // parse in the machine's local time zone
	"randAlpha", "randAlphaNum", "randAscii", "randNumeric", "randBytes", "randInt", "shuffle", "uuidv4",
	"bcrypt", "htpasswd", "encryptAES",
	"genPrivateKey", "genCA", "genCAWithKey", "genSelfSignedCert", "genSelfSignedCertWithKey",
	"genSignedCert", "genSignedCertWithKey",
}

// funcMap is sprig's hermetic set, list builders bounded, plus Helm's toYaml, required and include.
func funcMap() template.FuncMap {
	f := sprig.HermeticTxtFuncMap()
	for _, name := range denied {
		delete(f, name)
	}
	f["toYaml"] = toYaml
	f["required"] = required
	f["include"] = func(string, any) (string, error) {
		return "", errors.New("include is only available while rendering")
	}
	f["repeat"] = repeat
	f["until"] = bounded1(f["until"].(func(int) []int))
	f["untilStep"] = bounded3(f["untilStep"].(func(int, int, int) []int))
	f["seq"] = seq(f["seq"].(func(...int) string))
	return f
}

// bindInclude gives set an include that runs templates of that same set and
// counts its own depth, so each Render needs its own clone.
func bindInclude(set *template.Template) {
	depth := 0
	set.Funcs(template.FuncMap{"include": func(name string, data any) (string, error) {
		if depth >= maxIncludeDepth {
			return "", fmt.Errorf("include %q: nested more than %d deep", name, maxIncludeDepth)
		}
		depth++
		defer func() { depth-- }()
		var buf cappedBuffer
		if err := set.ExecuteTemplate(&buf, name, data); err != nil {
			return "", err
		}
		return buf.String(), nil
	}})
}

// toYaml is Helm's: no trailing newline, so `toYaml . | nindent 4` lines up.
// Unlike Helm's it fails instead of printing nothing, since a silently empty
// block deploys something other than what was written.
func toYaml(v any) (string, error) {
	b, err := yaml.Marshal(v)
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(string(b), "\n"), nil
}

// required fails the render with msg when v is nil or an empty string.
func required(msg string, v any) (any, error) {
	if v == nil {
		return nil, errors.New(msg)
	}
	if s, ok := v.(string); ok && s == "" {
		return nil, errors.New(msg)
	}
	return v, nil
}

func repeat(count int, s string) (string, error) {
	if count < 0 || (len(s) > 0 && count > maxOutput/len(s)) {
		return "", fmt.Errorf("repeat: %d copies of %d bytes is too large", count, len(s))
	}
	return strings.Repeat(s, count), nil
}

func checkSeqArgs(name string, args ...int) error {
	for _, a := range args {
		if a > maxSeqArg || a < -maxSeqArg {
			return fmt.Errorf("%s: argument %d is outside ±%d", name, a, maxSeqArg)
		}
	}
	return nil
}

func bounded1(until func(int) []int) func(int) ([]int, error) {
	return func(n int) ([]int, error) {
		if err := checkSeqArgs("until", n); err != nil {
			return nil, err
		}
		return until(n), nil
	}
}

func bounded3(untilStep func(int, int, int) []int) func(int, int, int) ([]int, error) {
	return func(start, stop, step int) ([]int, error) {
		if err := checkSeqArgs("untilStep", start, stop, step); err != nil {
			return nil, err
		}
		return untilStep(start, stop, step), nil
	}
}

func seq(seq func(...int) string) func(...int) (string, error) {
	return func(args ...int) (string, error) {
		if err := checkSeqArgs("seq", args...); err != nil {
			return "", err
		}
		return seq(args...), nil
	}
}

// cappedBuffer refuses writes past maxOutput; text/template aborts the
// execution on the first failed write.
type cappedBuffer struct{ bytes.Buffer }

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > maxOutput {
		return 0, errOutputTooLarge
	}
	return b.Buffer.Write(p)
}
