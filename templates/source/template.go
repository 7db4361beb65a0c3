package source

import (
	"context"
	"fmt"
	"io/fs"

	"github.com/shipbot/shipbot/templates"
)

// Template is a folder of shipbot templates (templates.Load), or a
// template shipped with shipbot.
type Template struct {
	Builtin string // a built-in template's name, e.g. web-service; Dir is not read when set
	Dir     string // the folder in Input.Files
}

var _ Source = Template{}

func (t Template) load(files fs.FS) (*templates.Template, error) {
	if t.Builtin != "" {
		return templates.Builtin(t.Builtin)
	}
	return templates.Load(files, t.Dir)
}

// Render renders the template with in.Params, its replicas set to
// in.Replicas when given.
func (t Template) Render(_ context.Context, in Input) ([]templates.Object, error) {
	if t.Builtin == "" && in.Files == nil {
		return nil, fmt.Errorf("%w: no files to read", ErrInvalid)
	}
	tpl, err := t.load(in.Files)
	if err != nil {
		return nil, err
	}
	p := in.Params
	if in.Replicas != nil {
		p.Replicas = *in.Replicas
	}
	return tpl.Render(p)
}

// Check parses the template files.
func (t Template) Check(files fs.FS) error {
	_, err := t.load(files)
	return err
}
