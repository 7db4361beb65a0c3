package dashboard

import (
	"cmp"
	"fmt"
	"strings"
	"time"

	"github.com/shipbot/shipbot/deployer/release"
	"github.com/shipbot/shipbot/templates"
)

// Release is the detail page of one release.
type Release struct {
	release.Release
	Summary  string
	Class    string
	Active   bool
	Progress Progress
	Stages   []StageRow
	Timeline []TimelineEntry
}

// StageRow is one stage and how far the release got with it.
type StageRow struct {
	N        int
	Target   int
	Label    string // what the stage does: "10 %", "header x-canary=true", "mirror 20 %"
	Continue release.ContinueMode
	Gates    string
	State    string // done, current or next
}

// TimelineEntry is one line of the release's history.
type TimelineEntry struct {
	At      time.Time
	Actor   string
	Surface string
	Kind    release.EntryKind
	Phase   release.Phase
	Stage   string
	Message string
}

// Detail derives the release page from the release at now. It does no I/O.
func Detail(r release.Release, now time.Time) Release {
	out := Release{
		Release: r, Summary: release.Describe(r, now), Class: phaseClass(r.Phase),
		Active: !r.Phase.Terminal(), Progress: progress(r, now),
	}
	out.Params = templates.Params{} // never shown: env and config values may be secrets
	for i, s := range r.Stages {
		st := "next"
		switch {
		case i < r.Stage:
			st = "done"
		case i == r.Stage && out.Active:
			st = "current"
		}
		out.Stages = append(out.Stages, StageRow{N: i + 1, Target: s.Target, Label: s.Label(), Continue: s.Continue, Gates: gates(s), State: st})
	}
	for _, e := range r.History {
		out.Timeline = append(out.Timeline, TimelineEntry{
			At: e.At, Actor: e.Actor, Surface: cmp.Or(string(e.Surface), "-"), Kind: e.Kind, Phase: e.Phase,
			Stage: fmt.Sprintf("%d/%d", min(e.Stage+1, len(r.Stages)), len(r.Stages)), Message: e.Message,
		})
	}
	return out
}

func gates(s release.Stage) string {
	var names []string
	for _, g := range s.Before {
		names = append(names, "before "+g.Name)
	}
	for _, g := range s.After {
		names = append(names, "after "+g.Name)
	}
	return strings.Join(names, ", ")
}
